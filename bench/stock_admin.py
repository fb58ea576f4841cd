"""What a stock Django admin of the calls table would be: the baseline.

``stock_site`` ("stockadmin") has a plain ``ModelAdmin`` with the same columns
as ``logs.admin.CallRecordAdmin`` where those are fields or simple foreign-key
traversals, the closest stock list filters, ``date_hierarchy`` and a search
on request id; everything else is Django's default (Django's change list
template, full result count, ``select_related()`` of every foreign key,
facets allowed, …).

``stock_export_site`` ("stockexport") is the same admin with
django-import-export's ``ExportMixin`` and its defaults: the default
``ModelResource`` of every field, every format, the export form. It lives on
its own site so the list comparison uses a ModelAdmin without any mixin.
"""

from django.contrib import admin
from import_export.admin import ExportMixin

from logs.models import CallRecord


class StockCallRecordAdmin(admin.ModelAdmin):
    # time, account, key name, group, call type, model, status, duration,
    # (speed is computed: no field), tokens, usage, cost
    list_display = (
        "created_at",
        "account",
        "api_key__name",
        "group",
        "call_type",
        "model",
        "status_code",
        "duration_ms",
        "total_tokens",
        "usage",
        "cost",
    )
    list_filter = ("account", "api_key", "group", "call_type", "model", "status_code")
    date_hierarchy = "created_at"
    search_fields = ("request_id",)
    # Django's own template: the project overrides admin/logs/callrecord/change_list.html
    # for its admin (with links to views this admin does not have).
    change_list_template = "admin/change_list.html"


class StockExportCallRecordAdmin(ExportMixin, StockCallRecordAdmin):
    pass


stock_site = admin.AdminSite(name="stockadmin")
stock_site.register(CallRecord, StockCallRecordAdmin)

stock_export_site = admin.AdminSite(name="stockexport")
stock_export_site.register(CallRecord, StockExportCallRecordAdmin)
