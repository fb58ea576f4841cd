"""The call list and call detail in the Django admin.

Thin on purpose: what a user may see comes from ``logs.read`` (scoped by ``accounts.scoping``)
(``visible_calls`` and the scoped choice lists), the CSV columns from
``logs.resources``. ``scope_account`` is the one hook an account-scoped admin
site (the portal) overrides.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ORDER_VAR, SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from import_export.admin import ExportMixin

from accounts.admin_lists import CheckedChangeList, CheckedListMixin, quoted
from accounts.models import Account
from accounts.scoping import reads_every_account
from logs.admin_filters import (
    AccountFilter,
    CallTypeFilter,
    GroupFilter,
    KeyNameFilter,
    ModelFilter,
    StatusFilter,
    TimeRangeFilter,
)
from logs.audit import finish_export_record, record_access
from logs.models import AccessRecord, CallPayload, CallRecord, FoldStatus, PruneRun
from logs.read.filters import CallFilters, filter_calls
from logs.read.scope import visible_calls
from logs.read.seek import PageSeek, seek_page
from logs.read.slow import SLOW_WINDOW_DAYS, slow_call_thresholds
from logs.read.stats_sources import RawCallStats, ScopedCallStats
from logs.read.totals import call_totals, kept_calls_filters, scoped_totals
from logs.resources import CallRecordResource, stream_csv
from logs.rollups.fold import fold_lag
from logs.stats import (
    EXPLANATION,
    INTERVAL_LABELS,
    INTERVAL_VAR,
    build_usage_stats,
    selected_time_range,
)

LONG_DURATION_MS = 10_000
REASON_CHARS = 40  # of the error reason in the list (all of it on hover)
NEARBY_WINDOW = timedelta(minutes=30)
# Payload parts longer than this are folded on the detail page (a preview, then
# "Show all N lines"): many lines, or one long prompt on few lines.
FOLD_LINES = 40
FOLD_CHARS = 4_000
PREVIEW_LINES = 12
PREVIEW_LINE_CHARS = 240


def format_duration(ms: int | None) -> str:
    """Milliseconds always; seconds beside them once they stop being readable."""
    if ms is None:
        return "—"
    if ms >= LONG_DURATION_MS:
        return f"{ms:,} ms ({ms / 1000:.1f} s)"
    return f"{ms:,} ms"


def format_speed(tokens_per_second: float | None) -> str:
    return "—" if tokens_per_second is None else f"{tokens_per_second:,.1f} tok/s"


def utc_iso(moment) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def slow_explanation(model: str, threshold_ms: float) -> str:
    days = SLOW_WINDOW_DAYS
    return (
        f"Slow for {model}: slower than 95% of the {model} calls you can see in the last "
        f"{days} days (p95 ≈ {threshold_ms:,.0f} ms)."
    )


def is_slow(call: CallRecord, threshold_ms: float | None) -> bool:
    return (
        threshold_ms is not None
        and call.duration_ms is not None
        and call.duration_ms > threshold_ms
    )


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
        self.can_show_all = False
        self.multi_page = False
        self.paginator = None


@admin.register(CallRecord)
class CallRecordAdmin(CheckedListMixin, ExportMixin, admin.ModelAdmin):
    list_display = (
        "time",
        "account",
        "key_name",
        "group",
        "call_type",
        "model",
        "status",
        "duration",
        "speed",
        "tokens",
        "usage",
        "cost",
    )
    list_display_links = ("time",)
    list_filter = (
        TimeRangeFilter,
        AccountFilter,
        ModelFilter,
        KeyNameFilter,
        GroupFilter,
        CallTypeFilter,
        StatusFilter,
    )
    list_select_related = ("account", "api_key", "group")
    date_hierarchy = "created_at"
    search_fields = ("=request_id",)
    search_help_text = "Find a call by its exact request id."
    list_per_page = 100
    list_max_show_all = 1000
    # The full count runs COUNT(*) over the whole scope on every page.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    # Only orders an index serves (newest first, or oldest first).
    sortable_by = ("time",)
    actions = None
    change_list_template = "admin/logs/callrecord/change_list.html"
    # Our change list template renders the Export CSV item next to "Usage stats";
    # import-export's wrapper templates would hide object tools without add permission.
    import_export_change_list_template = None
    detail_template = "admin/logs/callrecord/detail.html"
    stats_template = "admin/logs/callrecord/stats.html"
    export_refused_template = "admin/logs/callrecord/export_refused.html"

    access_surface = AccessRecord.Surface.ADMIN

    resource_classes = [CallRecordResource]

    # --- scope ---------------------------------------------------------------

    def scope_account(self, request) -> Account | None:
        """The one account this admin site shows, or None for every visible account."""
        return None

    def get_queryset(self, request):
        calls = visible_calls(request.user, account=self.scope_account(request))
        return calls.select_related(*self.list_select_related)

    def get_search_results(self, request, queryset, search_term):
        """The call whose request id is exactly the search term (trimmed).
        Django's search would split the term into words and unquote them,
        finding rows the totals (from rollups, for the whole term) do not count."""
        term = search_term.strip()
        if not term:
            return queryset, False
        return filter_calls(queryset, CallFilters(request_id=term)), False

    # --- read only -------------------------------------------------------------

    def has_view_permission(self, request, obj=None) -> bool:
        # The selectors' own rule for reading every account, not Django's default
        # (view or change permission): the list, the API and the exports agree.
        return reads_every_account(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_import_permission(self, request) -> bool:
        return False

    def has_export_permission(self, request) -> bool:
        # Exporting is reading: whoever may see the list may download it, nobody else.
        return self.has_view_permission(request)

    # --- list columns ----------------------------------------------------------

    @admin.display(description="Time", ordering="created_at")
    def time(self, call: CallRecord):
        local = timezone.localtime(call.created_at)
        utc = utc_iso(call.created_at)
        return format_html(
            '<time datetime="{}" title="{} UTC">{}</time>',
            utc,
            utc,
            local.strftime("%Y-%m-%d %H:%M:%S"),
        )

    @admin.display(description="Key name")
    def key_name(self, call: CallRecord) -> str:
        return call.api_key.name

    @admin.display(description="Status")
    def status(self, call: CallRecord):
        if not call.is_error:
            return format_html('<span class="call-ok">{}</span>', call.status_code)
        return format_html(
            '<span class="call-error" title="{}">{} <span class="call-reason">{}</span></span>',
            call.error_reason,
            call.status_code,
            Truncator(call.error_reason).chars(REASON_CHARS),
        )

    @admin.display(description="Duration")
    def duration(self, call: CallRecord):
        ms = call.duration_ms
        if ms is None:
            return format_duration(ms)
        if ms >= LONG_DURATION_MS:
            text = format_html(
                '{} ms <small class="call-seconds">({} s)</small>', f"{ms:,}", f"{ms / 1000:.1f}"
            )
        else:
            text = format_duration(ms)
        # Set by changelist_view from the model's recent p95 (slow_call_thresholds).
        threshold = getattr(call, "slow_threshold_ms", None)
        if not is_slow(call, threshold):
            return text
        return format_html(
            '{} <span class="call-badge call-slow" title="{}">slow</span>',
            text,
            slow_explanation(call.model, threshold),
        )

    @admin.display(description="Output speed")
    def speed(self, call: CallRecord) -> str:
        return format_speed(call.output_tokens_per_second)

    @admin.display(description="Tokens (in / out)")
    def tokens(self, call: CallRecord):
        return format_html(
            '{} <small class="call-split">({} / {})</small>',
            f"{call.total_tokens:,}",
            f"{call.input_tokens:,}",
            f"{call.output_tokens:,}",
        )

    # --- views -----------------------------------------------------------------

    def get_urls(self):
        stats = path(
            "stats/",
            self.admin_site.admin_view(self.stats_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_stats",
        )
        return [stats, *super().get_urls()]

    def get_changelist(self, request, **kwargs):
        if getattr(request, "call_rows_not_needed", False):
            return CallFiltersChangeList
        return CallChangeList

    def filters_changelist(self, request, *, without: tuple[str, ...] = ()):
        """The call list's filters, scope and checks for ``request``, without
        its rows; ``without``: parameters the page reads itself (the list
        would refuse them)."""
        list_request = copy.copy(request)
        list_request.GET = request.GET.copy()
        for name in without:
            list_request.GET.pop(name, None)
        list_request.call_rows_not_needed = True
        return self.get_changelist_instance(list_request)

    def stats_view(self, request):
        """Usage stats for exactly the calls the list shows with the same filters.

        The sidebar filters, the date drill-down and their messages behave as
        on the list (``filters_changelist``); bad input shows its messages
        and no numbers.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        intervals = request.GET.getlist(INTERVAL_VAR)
        requested_interval = intervals[-1] if len(intervals) == 1 else ""
        cl = self.filters_changelist(request, without=(INTERVAL_VAR,))
        for problem in cl.problems:
            messages.add_message(request, problem.level, problem.text)
        if len(intervals) > 1:
            messages.warning(
                request,
                f"{quoted(INTERVAL_VAR)} takes one value, and the address gives "
                f"{len(intervals)}, so the interval is the default one.",
            )

        start, end = selected_time_range(cl)
        call_filters = changelist_call_filters(cl)
        if call_filters is None:  # refused input: the list shows nothing, and so do the stats
            source = RawCallStats(cl.queryset)
        else:
            source = ScopedCallStats(
                request.user, account=self.scope_account(request), filters=call_filters
            )
        stats = build_usage_stats(
            source,
            requested_interval=requested_interval,
            start=start,
            end=end,
            keys_with_account=self.scope_account(request) is None,
        )
        for text in stats.messages:
            messages.warning(request, text)
        if requested_interval == stats.interval:
            # Keep a chosen interval when a sidebar filter or the drill-down changes.
            cl.filter_params[INTERVAL_VAR] = [stats.interval]

        changelist_url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
        )
        for ranked in (
            *stats.top_models_by_calls,
            *stats.top_models_by_cost,
            *stats.top_keys_by_calls,
            *stats.top_keys_by_cost,
        ):
            ranked.url = cl.get_query_string(ranked.query)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "cl": cl,
            "title": "Usage stats",
            "subtitle": None,
            "stats": stats,
            "explanation": EXPLANATION,
            "show_accounts": self.scope_account(request) is None,
            "timezone_name": timezone.get_current_timezone_name(),
            "interval_choices": [
                {
                    "value": value,
                    "label": label,
                    "url": cl.get_query_string({INTERVAL_VAR: value}),
                    "selected": value == stats.interval,
                }
                for value, label in INTERVAL_LABELS.items()
            ],
            "index_url": reverse(f"{self.admin_site.name}:index"),
            "changelist_url": changelist_url,
            "changelist_filtered_url": changelist_url + cl.get_query_string(remove=[INTERVAL_VAR]),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.stats_template, context)

    def changelist_view(self, request, extra_context=None):
        # CheckedListMixin shows the messages about the query string.
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            totals = getattr(changelist, "totals", None)
            response.context_data["totals"] = totals or call_totals(changelist.queryset)
            self.mark_slow_calls(request, changelist.result_list)
        return response

    def mark_slow_calls(self, request, calls) -> None:
        """Give each call on the page its model's slow threshold (``duration`` reads
        it). The thresholds are computed once per page and kept on the request."""
        if not calls:
            return
        request.slow_thresholds_ms = slow_call_thresholds(
            request.user,
            account=self.scope_account(request),
            models={call.model for call in calls},
        )
        for call in calls:
            call.slow_threshold_ms = request.slow_thresholds_ms.get(call.model)

    def export_action(self, request):
        """The Export CSV button's view (django-import-export's URL, button and
        permission), streamed: import-export builds the whole file in memory
        first, which a million-row export cannot afford. The cells are the
        resource's (``logs.resources``), the same as the API's export.

        Filters are checked before anything is sent: once a CSV's headers are
        out, no error can reach the person. Refused input is answered with a
        page of its own (400) showing the list's messages, and nothing else:
        no file, no access record, and no message left for the next page.
        """
        if not self.has_export_permission(request):
            raise PermissionDenied
        cl = self.filters_changelist(request)
        if cl.refused():
            return self.export_refused(request, cl)
        access = record_access(
            user=request.user,
            action=AccessRecord.Action.EXPORT,
            surface=self.access_surface,
            # Only what the list accepted: known parameters, checked values.
            filters=dict(cl.params),
        )
        response = StreamingHttpResponse(
            stream_csv(cl.queryset, on_done=lambda rows: finish_export_record(access, rows)),
            content_type="text/csv; charset=utf-8",
        )
        filename = f"calls-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def export_refused(self, request, cl: CallFiltersChangeList) -> TemplateResponse:
        for problem in cl.problems:
            messages.add_message(request, problem.level, problem.text)
        changelist_url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Nothing was exported",
            "subtitle": None,
            "index_url": reverse(f"{self.admin_site.name}:index"),
            "changelist_url": changelist_url,
            "changelist_filtered_url": changelist_url + cl.get_query_string(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.export_refused_template, context, status=400)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A read-only page with everything about one call.

        The object comes from the scoped queryset, so a call the user may not
        see answers exactly as an id that does not exist.
        """
        call = self.get_object(request, unquote(object_id))
        if call is None or not self.has_view_permission(request, call):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        record_access(
            user=request.user,
            action=AccessRecord.Action.VIEW_CALL,
            surface=self.access_surface,
            call=call,
        )
        threshold = slow_call_thresholds(
            request.user, account=self.scope_account(request), models={call.model}
        ).get(call.model)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Call {call.request_id}",
            "subtitle": None,
            "call": call,
            "local_time": timezone.localtime(call.created_at),
            "utc_time": utc_iso(call.created_at),
            "duration": format_duration(call.duration_ms),
            "ttft": format_duration(call.ttft_ms),
            "speed": format_speed(call.output_tokens_per_second),
            "slow_explanation": (
                slow_explanation(call.model, threshold) if is_slow(call, threshold) else None
            ),
            "generation_ms": (
                call.duration_ms - call.ttft_ms if call.ttft_ms is not None else None
            ),
            "parts": payload_parts(getattr(call, "payload", None)),
            "nearby_url": self.nearby_url(request, call),
            "show_internal": self.scope_account(request) is None,
            "index_url": reverse(f"{self.admin_site.name}:index"),
            "changelist_url": reverse(
                f"{self.admin_site.name}:logs_callrecord_changelist",
                current_app=self.admin_site.name,
            ),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.detail_template, context)

    def nearby_url(self, request, call: CallRecord) -> str:
        params = {
            "key_name": call.api_key.name,
            "start": timezone.localtime(call.created_at - NEARBY_WINDOW).strftime("%Y-%m-%dT%H:%M"),
            "end": timezone.localtime(call.created_at + NEARBY_WINDOW).strftime("%Y-%m-%dT%H:%M"),
        }
        if self.scope_account(request) is None:
            params["account"] = call.account_id
        changelist = reverse(f"{self.admin_site.name}:logs_callrecord_changelist")
        return f"{changelist}?{urlencode(params)}"


PART_TITLES = {
    "request_params": "Request parameters",
    "request_headers": "Request headers",
    "request_body": "Request body",
    "response": "Response",
    "error_detail": "Error detail",
}


def payload_parts(payload: CallPayload | None) -> list[dict]:
    """Each stored part, pretty-printed when it is whole JSON, as stored when cut.

    A long part (``FOLD_LINES`` lines or ``FOLD_CHARS`` characters) is folded:
    the page shows its first lines as a preview and the whole on demand.
    """
    parts = []
    for name, title in PART_TITLES.items():
        text = getattr(payload, name, "") if payload else ""
        truncated = bool(payload and getattr(payload, f"{name}_truncated"))
        pretty = text
        is_json = False
        if text and not truncated:
            try:
                pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
                is_json = True
            except ValueError:
                pretty = text
        lines = pretty.split("\n") if pretty else []
        folded = len(lines) > FOLD_LINES or len(pretty) > FOLD_CHARS
        preview = "\n".join(
            line if len(line) <= PREVIEW_LINE_CHARS else line[:PREVIEW_LINE_CHARS] + "…"
            for line in lines[:PREVIEW_LINES]
        )
        parts.append(
            {
                "name": name,
                "title": title,
                "text": pretty,
                "truncated": truncated,
                "original_bytes": getattr(payload, f"{name}_original_bytes", None)
                if payload
                else None,
                "stored_bytes": len(text.encode()),
                "lines": len(lines),
                "is_json": is_json,
                "folded": folded,
                "preview": preview if folded else "",
            }
        )
    return parts


@admin.register(AccessRecord)
class AccessRecordAdmin(CheckedListMixin, admin.ModelAdmin):
    """Who read customers' calls. Superusers only; nobody can change it."""

    list_display = ("at", "username", "action", "surface", "request_id", "row_count")
    list_filter = ("action", "surface")
    search_fields = ("=username", "=request_id")
    date_hierarchy = "at"
    show_full_result_count = False
    actions = None

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PruneRun)
class PruneRunAdmin(CheckedListMixin, admin.ModelAdmin):
    """When calls were pruned and up to when: why a call list starts where it
    does while usage stats go further back. Written only by ``prune_calls``."""

    list_display = ("ran_at", "cutoff", "calls_deleted", "partitions_dropped")
    date_hierarchy = "ran_at"
    actions = None

    # Whoever may read the call list may see why it begins where it does.
    def has_view_permission(self, request, obj=None) -> bool:
        return reads_every_account(request.user)

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(FoldStatus)
class FoldStatusAdmin(admin.ModelAdmin):
    """How far behind folding pending rollup deltas is. Totals and stats are
    exact either way; a long backlog only makes them slower."""

    list_display = (
        "waiting",
        "last_fold_at",
        "last_fold_deltas",
        "last_fold_ms",
        "folds",
        "deltas_folded",
    )
    list_display_links = None
    actions = None

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.has_perm("logs.view_callrecord")

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Waiting to be folded")
    def waiting(self, status: FoldStatus) -> str:
        lag = fold_lag()
        if not lag["pending_deltas"]:
            return "nothing"
        return (
            f"{lag['pending_deltas']:,} deltas, the oldest for "
            f"{lag['oldest_pending_seconds']:,.1f} s"
        )


class PortalCallRecordAdmin(CallRecordAdmin):
    """The same list, filters, totals, detail and export, for one account at a time."""

    list_display = tuple(name for name in CallRecordAdmin.list_display if name != "account")
    access_surface = AccessRecord.Surface.PORTAL

    def scope_account(self, request) -> Account | None:
        return self.admin_site.current_account(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self.scope_account(request) is not None

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def get_queryset(self, request):
        if self.scope_account(request) is None:
            return CallRecord.objects.none()
        return super().get_queryset(request)
