"""The call list's ChangeList: counts and totals from rollups, deep pages by a
time boundary, rows by an index-only scan first."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from django.contrib import messages
from django.contrib.admin.views.main import ORDER_VAR, SEARCH_VAR
from django.utils import timezone

from accounts.admin_lists import CheckedChangeList, Problem
from logs.admin.filters import SelectsCalls, TimeRangeFilter
from logs.models import CallRecord
from logs.periods import RECENT_PRESETS, recent_start
from logs.read.filters import CallFilters
from logs.read.seek import PageSeek, seek_page
from logs.read.slow import slow_call_thresholds
from logs.read.totals import kept_calls_filters, scoped_totals

# What a row of the list reads: the call, and only the names of its account,
# key and group (their other columns would be read and converted for nothing).
LIST_ROW_FIELDS = (
    *(field.name for field in CallRecord._meta.concrete_fields),
    "account__name",
    "api_key__name",
    "group__name",
)


class CallChangeList(CheckedChangeList):
    """Django's ChangeList without the queries that scan the calls table.

    The stock admin counts every matching row on every page (0.5 s and more
    at ten million calls). Here the count is the exact number of calls from
    the hourly rollups, which know every filter the list accepts: a
    parameter that is not one of them is refused (``CheckedChangeList``), so
    the totals, the page count and the deep-page seek always describe the
    rows shown. Every parameter takes one value: several of one filter would
    each need their own totals and seek.
    """

    list_parameters = frozenset({SEARCH_VAR, ORDER_VAR})
    one_value_each = True
    # A sort by a measure (duration, tokens, usage, cost) reads every matching
    # call from the covering index (which carries the measures: no table
    # read) and keeps the top of them: at ten million calls a month the
    # 385,000 of a day took 120-155 ms of PostgreSQL alone (docs/benchmarks.md,
    # "investigating"), so a page that sorts stays under 0.1 s up to about
    # this many; more, and the list stays newest first and offers the widest
    # recent span that can be sorted.
    SORT_MAX_CALLS = 150_000
    # The spans offered instead, widest first (keys of RECENT_PRESETS).
    SORT_OFFERS = ("24h", "1h", "15m")
    sort_refused_url: str | None = None
    sort_refused_label: str | None = None

    def get_query_string(self, new_params=None, remove=None):
        """Django's, but ``remove`` takes away a parameter by its whole name
        (or a field path ending in ``__``), not every name it begins: the
        time range's "end" must not take "endpoint" with it, nor the status
        filter's "status" the "status_code"."""
        names = [name for name in remove or () if not name.endswith("__")]
        prefixes = [name for name in remove or () if name.endswith("__")]
        kept = {
            key: value
            for key, value in self.filter_params.items()
            if key not in names and not any(key.startswith(prefix) for prefix in prefixes)
        }
        saved, self.filter_params = self.filter_params, kept
        try:
            return super().get_query_string(new_params, None)
        finally:
            self.filter_params = saved

    @property
    def clear_search_qs(self) -> str:
        """The search's own "clear" link: the filters and the order stay."""
        return self.get_query_string(remove=[SEARCH_VAR])

    def get_filters(self, request):
        filters = super().get_filters(request)
        self.explain_a_range_outside_the_drill_down(filters[0])
        return filters

    def explain_a_range_outside_the_drill_down(self, specs) -> None:
        """A time range and a drill-down day that do not overlap select no
        call: say why, rather than show an empty list without a word."""
        ranges = [spec for spec in specs if isinstance(spec, TimeRangeFilter) and not spec.error]
        if self.date_range is None or not ranges:
            return
        start, end = ranges[0].start, ranges[0].end
        drill_start, drill_end = self.date_range
        if (start is None or start < drill_end) and (end is None or end > drill_start):
            return
        local = timezone.localtime
        first_day = local(drill_start).date()
        last_day = local(drill_end - timedelta(microseconds=1)).date()
        days = f"{first_day}" if first_day == last_day else f"{first_day} to {last_day}"
        text = (
            f"The time range ({'…' if start is None else f'{local(start):%Y-%m-%d %H:%M}'} to "
            f"{'…' if end is None else f'{local(end):%Y-%m-%d %H:%M}'}) and the date chosen "
            f"above the list ({days}) do not overlap, so no calls match: clear one of them."
        )
        if all(notice.text != text for notice in self.notices):
            self.notices.append(Problem(messages.WARNING, text))

    def get_results(self, request):
        self.call_filters = changelist_call_filters(self)
        self.totals = None
        count = 0  # refused input: nothing is shown
        if self.call_filters is not None:
            # Rollups keep the usage of pruned calls; a list counts what it can show.
            self.call_filters = kept_calls_filters(self.call_filters)
            self.totals = scoped_totals(
                request.user,
                account=self.model_admin.scope_account(request),
                filters=self.call_filters,
            )
            count = self.totals.calls
            self.refuse_a_sort_too_wide_to_be_quick(request, count)
        paginator = self.model_admin.get_paginator(request, self.queryset, self.list_per_page)
        paginator.count = count  # a cached_property: setting it skips COUNT(*)
        self.result_count = count
        self.show_full_result_count = False
        self.full_result_count = None
        self.can_show_all = False
        self.multi_page = count > self.list_per_page
        self.paginator = paginator
        # Past either end: the nearest page, and a message (check_page_number).
        page = paginator.get_page(max(self.page_num, 1))
        self.page_num = page.number
        self.check_page_number(request)
        self.result_list = (
            self.page_of_calls(self.seek((page.number - 1) * self.list_per_page, request))
            if count
            else []
        )
        # {model: p95 ms} of the page's models: the Duration column marks slower calls.
        self.slow_thresholds_ms = (
            slow_call_thresholds(
                request.user,
                account=self.model_admin.scope_account(request),
                models={call.model for call in self.result_list},
            )
            if self.result_list
            else {}
        )

    def refuse_a_sort_too_wide_to_be_quick(self, request, count: int) -> None:
        """Back to newest first, with a message offering the widest recent span
        whose calls can be sorted quickly, when a sort by a measure would sort
        more calls than it can quickly."""
        if ORDER_VAR not in self.params or self.newest_first() is not None:
            return
        if count <= self.SORT_MAX_CALLS:
            return
        preset = self.sortable_recent_span(request)
        label = RECENT_PRESETS[preset][1].lower()
        self.sort_refused_url = self.get_query_string(
            {"last": preset}, remove=["start", "end", "last", "p"]
        )
        self.sort_refused_label = label
        self.notices.append(
            Problem(
                messages.WARNING,
                f"{count:,} calls are too many to sort by this column quickly (at most "
                f"{self.SORT_MAX_CALLS:,}), so they are shown newest first: narrow the time "
                f"range, for instance to the {label} (the link below the totals).",
            )
        )
        del self.params[ORDER_VAR]
        self.filter_params.pop(ORDER_VAR, None)
        self.queryset = self.queryset.order_by("-created_at", "-pk")

    def sortable_recent_span(self, request) -> str:
        """The widest of SORT_OFFERS whose calls (with the other filters) are few
        enough to sort quickly, counted from the rollups; the narrowest if none is."""
        now = timezone.now()
        for preset in self.SORT_OFFERS:
            recent = replace(self.call_filters, start=recent_start(preset, now), end=None)
            totals = scoped_totals(
                request.user, account=self.model_admin.scope_account(request), filters=recent
            )
            if totals.calls <= self.SORT_MAX_CALLS:
                return preset
        return self.SORT_OFFERS[-1]

    def seek(self, offset: int, request) -> PageSeek:
        """A deep page's start as a time boundary, when rollups count the filters."""
        newest_first = self.newest_first()
        if self.call_filters is None or newest_first is None:
            return PageSeek(boundary=None, offset=offset)
        return seek_page(
            request.user,
            account=self.model_admin.scope_account(request),
            filters=self.call_filters,
            offset=offset,
            newest_first=newest_first,
        )

    def newest_first(self) -> bool | None:
        """The list's direction in time; None if it is not ordered by time first."""
        ordering = self.queryset.query.order_by
        first = str(ordering[0]) if ordering else ""
        if first.lstrip("-") != "created_at":
            return None
        return first.startswith("-")

    def page_of_calls(self, seek: PageSeek) -> list[CallRecord]:
        """The calls of one page, found first by (id, time) alone and then read.

        On PostgreSQL the first query is an index-only scan of a covering index
        (``CallRecord.Meta.indexes``), whatever the filters, starting at the
        seek's time boundary so a deep page walks only its own day; only the
        page's own rows are then read from the table, with their time range so
        only their partitions are searched.
        """
        calls = self.queryset
        if seek.boundary is not None:
            side = "lt" if self.newest_first() else "gte"
            calls = calls.filter(**{f"created_at__{side}": seek.boundary})
        offset = seek.offset
        keys = list(calls.values_list("pk", "created_at")[offset : offset + self.list_per_page])
        if not keys:
            return []
        times = [created_at for _, created_at in keys]
        rows = (
            self.queryset.order_by()
            .only(*LIST_ROW_FIELDS)
            .filter(
                pk__in=[pk for pk, _ in keys],
                created_at__gte=min(times),
                created_at__lte=max(times),
            )
        )
        by_pk = {call.pk: call for call in rows}
        return [by_pk[pk] for pk, _ in keys if pk in by_pk]


def changelist_call_filters(cl: CallChangeList) -> CallFilters | None:
    """The sidebar filters, date drill-down and search of a call list as one
    CallFilters, or None when some input is refused (the list then shows nothing)."""
    if cl.refused():
        return None
    merged: dict = {}
    for spec in cl.filter_specs:
        if not isinstance(spec, SelectsCalls):
            raise TypeError(f"{type(spec).__name__} does not say which calls it selects")
        merged.update({k: v for k, v in spec.call_filters().items() if v is not None})
    if cl.date_range is not None:
        start, end = cl.date_range
        merged["start"] = max(filter(None, (merged.get("start"), start)))
        merged["end"] = min(filter(None, (merged.get("end"), end)))
    if cl.query.strip():
        merged["request_id"] = cl.query.strip()
    return CallFilters(**merged)


class CallFiltersChangeList(CallChangeList):
    """The call list's filters, scope and checks, without its page of rows:
    the stats page and the export read ``queryset`` and never need the count
    or the rows."""

    def get_results(self, request):
        self.result_count = None
        self.full_result_count = None
        self.show_full_result_count = False
        self.show_admin_actions = False
        self.result_list = []
        self.slow_thresholds_ms = {}
        self.can_show_all = False
        self.multi_page = False
        self.paginator = None
