"""CSV export of calls (django-import-export).

The columns and the formula escaping live here and nowhere else, so every
export (staff admin, portal, API) writes the same file.
"""

from datetime import UTC
from typing import Any

from import_export import fields, resources, widgets

from logs.models import CallRecord

# A spreadsheet runs a cell that starts with one of these as a formula
# (CSV injection); a leading apostrophe makes it plain text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


class CallRecordResource(resources.ModelResource):
    """One row per call; every column a person filtering calls would want."""

    time = fields.Field(column_name="time (UTC)")
    account = fields.Field(attribute="account__name", column_name="account")
    key_name = fields.Field(attribute="api_key__name", column_name="key name")
    key_prefix = fields.Field(attribute="api_key__prefix", column_name="key prefix")
    group = fields.Field(attribute="group__name", column_name="group")
    status = fields.Field(attribute="status_code", column_name="status")
    stream = fields.Field(column_name="stream")
    request_id = fields.Field(attribute="request_id", column_name="request id")
    call_type = fields.Field(attribute="call_type", column_name="call type")
    error_reason = fields.Field(attribute="error_reason", column_name="error reason")
    duration_ms = fields.Field(attribute="duration_ms", column_name="duration (ms)")
    ttft_ms = fields.Field(attribute="ttft_ms", column_name="time to first token (ms)")
    input_tokens = fields.Field(attribute="input_tokens", column_name="input tokens")
    output_tokens = fields.Field(attribute="output_tokens", column_name="output tokens")
    total_tokens = fields.Field(attribute="total_tokens", column_name="total tokens")
    # Stored as scaled integers; export them as the exact decimals they are.
    usage = fields.Field(attribute="usage", column_name="usage", widget=widgets.DecimalWidget())
    cost = fields.Field(attribute="cost", column_name="cost", widget=widgets.DecimalWidget())

    class Meta:
        model = CallRecord
        fields = (
            "id",
            "request_id",
            "time",
            "account",
            "key_name",
            "key_prefix",
            "group",
            "call_type",
            "model",
            "endpoint",
            "stream",
            "status",
            "error_reason",
            "duration_ms",
            "ttft_ms",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "usage",
            "cost",
        )
        export_order = fields
        # Calls arrive through the ingest service only.
        skip_unchanged = True

    def dehydrate_time(self, call: CallRecord) -> str:
        return call.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")

    def dehydrate_stream(self, call: CallRecord) -> str:
        return "yes" if call.is_stream else "no"

    def export_field(self, field, instance, **kwargs):
        return escape_formula(super().export_field(field, instance, **kwargs))
