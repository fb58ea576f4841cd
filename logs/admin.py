"""The call list and call detail in the Django admin.

Thin on purpose: what a user may see comes from ``logs.selectors``
(``visible_calls`` and the scoped choice lists), the CSV columns from
``logs.resources``. ``scope_account`` is the one hook an account-scoped admin
site (the portal) overrides.
"""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from import_export.admin import ExportMixin
from import_export.formats.base_formats import CSV

from accounts.models import Account
from logs.admin_filters import (
    AccountFilter,
    CallTypeFilter,
    GroupFilter,
    KeyNameFilter,
    ModelFilter,
    StatusFilter,
    TimeRangeFilter,
)
from logs.models import AccessRecord, CallPayload, CallRecord
from logs.resources import CallRecordResource
from logs.selectors import call_totals, visible_calls
from logs.services import record_access

LONG_DURATION_MS = 10_000
NEARBY_WINDOW = timedelta(minutes=30)


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


@admin.register(CallRecord)
class CallRecordAdmin(ExportMixin, admin.ModelAdmin):
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
    detail_template = "admin/logs/callrecord/detail.html"

    access_surface = AccessRecord.Surface.ADMIN

    resource_classes = [CallRecordResource]
    formats = [CSV]
    skip_export_form = True

    # --- scope ---------------------------------------------------------------

    def scope_account(self, request) -> Account | None:
        """The one account this admin site shows, or None for every visible account."""
        return None

    def get_queryset(self, request):
        calls = visible_calls(request.user, account=self.scope_account(request))
        return calls.select_related(*self.list_select_related)

    # --- read only -------------------------------------------------------------

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_import_permission(self, request) -> bool:
        return False

    # --- list columns ----------------------------------------------------------

    @admin.display(description="Time", ordering="created_at")
    def time(self, call: CallRecord):
        local = timezone.localtime(call.created_at)
        return format_html(
            '<time datetime="{}" title="{} UTC">{}</time>',
            utc_iso(call.created_at),
            utc_iso(call.created_at),
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
            '<span class="call-error" title="{}">{} {}</span>',
            call.error_reason,
            call.status_code,
            call.error_reason[:40],
        )

    @admin.display(description="Duration")
    def duration(self, call: CallRecord) -> str:
        return format_duration(call.duration_ms)

    @admin.display(description="Output speed")
    def speed(self, call: CallRecord) -> str:
        return format_speed(call.output_tokens_per_second)

    @admin.display(description="Tokens (in / out)")
    def tokens(self, call: CallRecord):
        return format_html(
            "{} <small>({} / {})</small>",
            f"{call.total_tokens:,}",
            f"{call.input_tokens:,}",
            f"{call.output_tokens:,}",
        )

    # --- views -----------------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            response.context_data["totals"] = call_totals(changelist.queryset)
        return response

    def get_data_for_export(self, request, queryset, **kwargs):
        dataset = super().get_data_for_export(request, queryset, **kwargs)
        record_access(
            user=request.user,
            action=AccessRecord.Action.EXPORT,
            surface=self.access_surface,
            filters=request.GET.dict(),
            row_count=len(dataset),
        )
        return dataset

    def get_export_filename(self, request, queryset, file_format) -> str:
        return f"calls-{timezone.localtime():%Y%m%d-%H%M%S}.{file_format.get_extension()}"

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
    """Each stored part, pretty-printed when it is whole JSON, as stored when cut."""
    parts = []
    for name, title in PART_TITLES.items():
        text = getattr(payload, name, "") if payload else ""
        truncated = bool(payload and getattr(payload, f"{name}_truncated"))
        pretty = text
        if text and not truncated:
            try:
                pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            except ValueError:
                pretty = text
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
                "lines": pretty.count("\n") + 1 if pretty else 0,
            }
        )
    return parts


@admin.register(AccessRecord)
class AccessRecordAdmin(admin.ModelAdmin):
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
