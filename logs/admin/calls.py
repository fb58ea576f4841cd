"""The call list and call detail in the Django admin.

Thin on purpose: what a user may see comes from ``logs.read`` (scoped by ``accounts.scoping``)
(``visible_calls`` and the scoped choice lists), the CSV columns from
``logs.read.export``. ``scope_account`` is the one hook an account-scoped admin
site (the portal) overrides.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db.models import Q
from django.http import HttpResponseRedirect, QueryDict, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator, capfirst
from import_export.admin import ExportMixin

from accounts.admin_lists import CheckedListMixin, ReadOnlyAdminMixin, quoted
from accounts.models import Account
from accounts.scoping import reads_every_account
from logs.admin.changelist import CallChangeList, CallFiltersChangeList, changelist_call_filters
from logs.admin.detail import CostExplanation, payload_parts
from logs.admin.export import CallRecordResource
from logs.admin.filters import (
    AccountFilter,
    CallTypeFilter,
    DetailsFilter,
    EndUserFilter,
    GroupFilter,
    KeyNameFilter,
    ModelFilter,
    StatusFilter,
    StreamedFilter,
    TagFilter,
    TimeRangeFilter,
)
from logs.admin.formatting import (
    LONG_DURATION_MS,
    compact,
    exact,
    format_duration,
    format_speed,
    share,
    token_parts_summary,
    utc_iso,
)
from logs.admin.stats_page import (
    EXPLANATION,
    INTERVAL_LABELS,
    INTERVAL_VAR,
    build_usage_stats,
    selected_time_range,
)
from logs.audit import finish_export_record, record_access
from logs.models import AccessRecord, CallRecord
from logs.read.export import stream_csv
from logs.read.filters import CallFilters, filter_calls
from logs.read.scope import visible_calls
from logs.read.slow import SLOW_WINDOW_DAYS, slow_call_thresholds
from logs.read.stats_sources import RawCallStats, ScopedCallStats
from logs.read.totals import call_totals

REASON_CHARS = 40  # of the error reason in the list (all of it on hover)


NEARBY_WINDOW = timedelta(minutes=30)


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


@admin.register(CallRecord)
class CallRecordAdmin(ReadOnlyAdminMixin, CheckedListMixin, ExportMixin, admin.ModelAdmin):
    list_display = (
        "time",
        "request",
        "account",
        "key_name",
        "group",
        "call_type",
        "model",
        "status",
        "duration",
        "speed",
        "tokens",
        "usage_amount",
        "cost_amount",
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
        # Token accounting: the customer's own labels.
        TagFilter,
        EndUserFilter,
        StreamedFilter,
        DetailsFilter,
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
    # Newest or oldest first (an index serves them), and slowest, most tokens,
    # most usage or costliest first among the filtered calls, as long as there
    # are few enough of them to sort quickly (CallChangeList.SORT_MAX_CALLS).
    sortable_by = ("time", "duration", "tokens", "usage_amount", "cost_amount")
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
        # Date and time on two lines where the column is narrow (a space between them).
        return format_html(
            '<time datetime="{}" title="{} UTC"><span class="call-date">{}</span> {}</time>',
            utc,
            utc,
            local.strftime("%Y-%m-%d"),
            local.strftime("%H:%M:%S"),
        )

    @admin.display(description="Id")
    def request(self, call: CallRecord):
        """A button copying the request id (calls.js shows it; without
        JavaScript the id is on the call's page)."""
        return format_html(
            '<button type="button" class="copy-id" data-copy-text="{}" title="Copy request id {}" '
            'aria-label="Copy request id {}" hidden>Copy</button>',
            call.request_id,
            call.request_id,
            call.request_id,
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

    @admin.display(description="Duration", ordering="-duration_ms")
    def duration(self, call: CallRecord, changelist: CallChangeList | None = None):
        ms = call.duration_ms
        if ms is None:
            return format_duration(ms)
        if ms >= LONG_DURATION_MS:
            text = format_html(
                '{} ms <small class="call-seconds">({} s)</small>', f"{ms:,}", f"{ms / 1000:.1f}"
            )
        else:
            text = format_duration(ms)
        # The model's recent p95 (slow_call_thresholds), read once for the page.
        threshold = changelist.slow_thresholds_ms.get(call.model) if changelist else None
        if not is_slow(call, threshold):
            return text
        return format_html(
            '{} <span class="call-badge call-slow" title="{}">slow</span>',
            text,
            slow_explanation(call.model, threshold),
        )

    duration.reads_changelist = True  # call_result_list hands it the page's changelist

    @admin.display(description="Output speed")
    def speed(self, call: CallRecord) -> str:
        return format_speed(call.output_tokens_per_second)

    @admin.display(description="Tokens (in / out)", ordering="-total_tokens")
    def tokens(self, call: CallRecord):
        cell = format_html(
            '<span title="{} tokens: {} in, {} out">{} <small class="call-split">({} / {})</small>'
            "</span>",
            f"{call.total_tokens:,}",
            f"{call.input_tokens:,}",
            f"{call.output_tokens:,}",
            compact(call.total_tokens),
            compact(call.input_tokens),
            compact(call.output_tokens),
        )
        details = token_parts_summary(call)
        if not details:
            return cell
        # The cached share on a line of its own under the split: no wider column.
        cached = (
            f"{share(call.cached_input_tokens, call.input_tokens)} cached"
            if call.cached_input_tokens
            else "cache, reasoning"
        )
        return format_html(
            '{} <small class="call-split call-token-parts" title="{}">{}</small>',
            cell,
            details,
            cached,
        )

    @admin.display(description="Usage", ordering="-usage")
    def usage_amount(self, call: CallRecord):
        return format_html('<span title="{}">{}</span>', exact(call.usage), compact(call.usage))

    @admin.display(description="Cost (USD)", ordering="-cost")
    def cost_amount(self, call: CallRecord):
        return format_html('<span title="{}">{}</span>', exact(call.cost), compact(call.cost))

    # --- views -----------------------------------------------------------------

    def get_urls(self):
        stats = path(
            "stats/",
            self.admin_site.admin_view(self.stats_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_stats",
        )
        return [stats, *super().get_urls()]

    def get_changelist(self, request, **kwargs):
        """The list with its rows on the list's own page; only its filters,
        scope and checks on the pages that read those (stats, export)."""
        match = request.resolver_match
        if match is not None and match.url_name in self.rowless_url_names():
            return CallFiltersChangeList
        return CallChangeList

    def rowless_url_names(self) -> set[str]:
        """The pages built on the call list's filters that show none of its rows."""
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        # A call's page reads the list's filters for its previous and next call.
        return {f"{prefix}_stats", f"{prefix}_export", f"{prefix}_change"}

    def filters_changelist(self, request, *, without: tuple[str, ...] = ()):
        """The call list's filters, scope and checks for ``request`` (a stats
        or export request), without its rows; ``without``: parameters the
        page reads itself (the list would refuse them)."""
        list_request = copy.copy(request)
        list_request.GET = request.GET.copy()
        for name in without:
            list_request.GET.pop(name, None)
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
        return response

    def export_action(self, request):
        """The Export CSV button's view (django-import-export's URL, button and
        permission), streamed: import-export builds the whole file in memory
        first, which a million-row export cannot afford. The cells are the
        export's (``logs.read.export``), the same as the API's export.

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
            return self.no_such_call(request, object_id)
        record_access(
            user=request.user,
            action=AccessRecord.Action.VIEW_CALL,
            surface=self.access_surface,
            call=call,
        )
        threshold = slow_call_thresholds(
            request.user, account=self.scope_account(request), models={call.model}
        ).get(call.model)
        changelist_url = reverse(
            f"{self.admin_site.name}:logs_callrecord_changelist",
            current_app=self.admin_site.name,
        )
        preserved = request.GET.get("_changelist_filters", "")
        previous_call, next_call = self.neighbours(request, call, preserved)
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
            "cached_share": share(call.cached_input_tokens, call.input_tokens),
            "cost_explanation": CostExplanation.of(call),
            "end_user_url": self.label_url(request, "end_user", call.end_user),
            "tag_links": [(tag, self.label_url(request, "tag", tag)) for tag in call.tags],
            "show_internal": self.scope_account(request) is None,
            "index_url": reverse(f"{self.admin_site.name}:index"),
            # The list as it was left: its filters, order and page.
            "changelist_url": changelist_url + (f"?{preserved}" if preserved else ""),
            "previous_url": self.call_url(previous_call, preserved),
            "next_url": self.call_url(next_call, preserved),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.detail_template, context)

    def neighbours(
        self, request, call: CallRecord, preserved: str
    ) -> tuple[CallRecord | None, CallRecord | None]:
        """The calls just above and just below ``call`` in the list it was
        opened from (``preserved``: that list's query string), within the same
        filters and order; none where the filters are refused."""
        list_request = copy.copy(request)
        list_request.GET = QueryDict(preserved)
        try:
            cl = self.filters_changelist(list_request, without=("p",))
        except (IncorrectLookupParameters, SuspiciousOperation):
            return None, None
        if cl.refused():
            return None, None
        calls = cl.queryset.order_by()
        at, pk = call.created_at, call.pk
        newer = (
            calls.filter(Q(created_at__gt=at) | Q(created_at=at, pk__gt=pk))
            .order_by("created_at", "pk")
            .first()
        )
        older = (
            calls.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
            .order_by("-created_at", "-pk")
            .first()
        )
        return (older, newer) if cl.newest_first() is False else (newer, older)

    def call_url(self, call: CallRecord | None, preserved: str) -> str | None:
        if call is None:
            return None
        url = reverse(
            f"{self.admin_site.name}:logs_callrecord_change",
            args=(call.pk,),
            current_app=self.admin_site.name,
        )
        return f"{url}?{urlencode({'_changelist_filters': preserved})}" if preserved else url

    def no_such_call(self, request, object_id: str):
        """What Django's admin answers for an id that does not exist: a message
        on the index page. A call the user may not see answers the same."""
        self.message_user(
            request,
            f"{capfirst(self.opts.verbose_name)} with ID “{unquote(object_id)}” doesn’t exist. "  # noqa: RUF001 (Django's own words)
            "Perhaps it was deleted?",
            messages.WARNING,
        )
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:index"))

    def label_url(self, request, name: str, value: str) -> str:
        """The list of calls with this tag or end user (the visible accounts')."""
        changelist = reverse(f"{self.admin_site.name}:logs_callrecord_changelist")
        return f"{changelist}?{urlencode({name: value})}"

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
