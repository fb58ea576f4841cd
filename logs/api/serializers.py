"""Shapes of the calls API. Read-only: calls are written by the ingest service."""

import json
from functools import cached_property
from operator import attrgetter
from typing import Any

from rest_framework import serializers

from logs.models import CallPayload, CallRecord, CallType
from logs.read.stats import STATS_GROUP_BY, STATS_INTERVALS, StatsRow


class PlannedRepresentation:
    """DRF's ``Serializer.to_representation`` with the per-field work done once.

    DRF looks up each field's source and dispatches through
    ``Field.get_attribute`` for every field of every row: for a page of 100
    calls that is most of the response's time. Here each field's attribute
    getter and converter are found once per serializer; the output is the
    same (tests/api/test_calls_api.py compares the two). Fields with a custom
    ``get_attribute`` or source ``*`` keep DRF's own path.
    """

    # What instances are (a ModelSerializer's Meta.model unless set here).
    represented_class: type | None = None

    @cached_property
    def _representation_plan(self) -> list[tuple[str, Any, Any]]:
        represented = self.represented_class or self.Meta.model
        plan = []
        for field in self._readable_fields:
            plain = (
                type(field).get_attribute is serializers.Field.get_attribute
                and field.source != "*"
                # DRF calls a method source; attrgetter would hand back the method.
                and not callable(getattr(represented, field.source_attrs[0], None))
            )
            getter = attrgetter(".".join(field.source_attrs)) if plain else field.get_attribute
            plan.append((field.field_name, getter, field.to_representation))
        return plan

    def to_representation(self, instance):
        row = {}
        for name, getter, represent in self._representation_plan:
            value = getter(instance)
            row[name] = None if value is None else represent(value)
        return row


class CallSerializer(PlannedRepresentation, serializers.ModelSerializer):
    """A call as it appears in a list: every list field, no payload bodies."""

    account = serializers.IntegerField(source="account_id", read_only=True)
    account_name = serializers.CharField(source="account.name", read_only=True)
    key_name = serializers.CharField(source="api_key.name", read_only=True)
    key_prefix = serializers.CharField(source="api_key.prefix", read_only=True)
    group = serializers.CharField(source="group.name", read_only=True)
    stream = serializers.BooleanField(source="is_stream", read_only=True)
    status = serializers.CharField(source="status_class", read_only=True)
    usage = serializers.DecimalField(max_digits=20, decimal_places=6, read_only=True)
    cost = serializers.DecimalField(max_digits=20, decimal_places=8, read_only=True)
    output_tokens_per_second = serializers.FloatField(read_only=True, allow_null=True)
    tags = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The call's tags, as sent."
    )
    cost_basis = serializers.JSONField(
        read_only=True,
        allow_null=True,
        help_text="How the cost was computed from the price list (tokens and price per kind, "
        "group ratio, exact amount); null when the gateway reported it.",
    )

    class Meta:
        model = CallRecord
        fields = (
            "id",
            "request_id",
            "created_at",
            "account",
            "account_name",
            "key_name",
            "key_prefix",
            "group",
            "call_type",
            "model",
            "endpoint",
            "stream",
            "status_code",
            "status",
            "error_reason",
            "duration_ms",
            "ttft_ms",
            "output_tokens_per_second",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "cached_input_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "usage",
            "cost",
            "client_ip",
            "end_user",
            "tags",
            "cost_basis",
        )
        read_only_fields = fields


class StaffCallSerializer(CallSerializer):
    """Staff also see internal details such as the upstream that served the call."""

    class Meta(CallSerializer.Meta):
        fields = (*CallSerializer.Meta.fields, "upstream")
        read_only_fields = fields


class PayloadPartSerializer(serializers.Serializer):
    content = serializers.JSONField(allow_null=True, help_text="The stored (redacted) JSON.")
    truncated = serializers.BooleanField()
    original_bytes = serializers.IntegerField(allow_null=True)


def payload_part(payload: CallPayload | None, name: str) -> dict:
    text = getattr(payload, name, "") if payload is not None else ""
    truncated = bool(payload is not None and getattr(payload, f"{name}_truncated"))
    content = None
    if text:
        # A part cut at the size cap is no longer valid JSON: give it as text.
        content = text if truncated else json.loads(text)
    return {
        "content": content,
        "truncated": truncated,
        "original_bytes": getattr(payload, f"{name}_original_bytes", None)
        if payload is not None
        else None,
    }


class CallDetailMixin(serializers.Serializer):
    request_params = serializers.SerializerMethodField()
    request_headers = serializers.SerializerMethodField()
    request_body = serializers.SerializerMethodField()
    response = serializers.SerializerMethodField()
    error_detail = serializers.SerializerMethodField()

    def _part(self, call, name):
        return payload_part(getattr(call, "payload", None), name)

    def get_request_params(self, call) -> PayloadPartSerializer:
        return self._part(call, "request_params")

    def get_request_headers(self, call) -> PayloadPartSerializer:
        return self._part(call, "request_headers")

    def get_request_body(self, call) -> PayloadPartSerializer:
        return self._part(call, "request_body")

    def get_response(self, call) -> PayloadPartSerializer:
        return self._part(call, "response")

    def get_error_detail(self, call) -> PayloadPartSerializer:
        return self._part(call, "error_detail")


PAYLOAD_FIELDS = ("request_params", "request_headers", "request_body", "response", "error_detail")


class CallDetailSerializer(CallDetailMixin, CallSerializer):
    class Meta(CallSerializer.Meta):
        fields = (*CallSerializer.Meta.fields, *PAYLOAD_FIELDS)
        read_only_fields = fields


class StaffCallDetailSerializer(CallDetailMixin, StaffCallSerializer):
    class Meta(StaffCallSerializer.Meta):
        fields = (*StaffCallSerializer.Meta.fields, *PAYLOAD_FIELDS)
        read_only_fields = fields


# --- stats -----------------------------------------------------------------------


class StatsQuerySerializer(serializers.Serializer):
    interval = serializers.ChoiceField(choices=STATS_INTERVALS, default="day")
    group_by = serializers.ChoiceField(choices=tuple(STATS_GROUP_BY), required=False)


class StatsRowSerializer(PlannedRepresentation, serializers.Serializer):
    # A 30-day answer per hour and model is ~15,000 rows.
    represented_class = StatsRow

    bucket = serializers.DateTimeField(allow_null=True)
    key = serializers.CharField(allow_null=True, help_text="The group_by value, if grouped.")
    calls = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cached_input_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()
    cached_input_share = serializers.FloatField(
        allow_null=True, help_text="Cached input tokens over input tokens."
    )
    cache_savings = serializers.DecimalField(
        max_digits=24,
        decimal_places=8,
        help_text="USD the prompt cache saved, by the price list in force at each call's time.",
    )
    usage = serializers.DecimalField(max_digits=24, decimal_places=6)
    cost = serializers.DecimalField(max_digits=24, decimal_places=8)
    average_duration_ms = serializers.FloatField(allow_null=True)
    p50_duration_ms = serializers.SerializerMethodField()
    p95_duration_ms = serializers.SerializerMethodField()
    output_tokens_per_second = serializers.FloatField(allow_null=True)

    def get_p50_duration_ms(self, row) -> float | None:
        return row.duration_percentile(0.5)

    def get_p95_duration_ms(self, row) -> float | None:
        return row.duration_percentile(0.95)


class StatsResponseSerializer(serializers.Serializer):
    time_zone = serializers.CharField(
        help_text="The zone hours and days are counted in: the site's TIME_ZONE, for every caller."
    )
    interval = serializers.ChoiceField(choices=STATS_INTERVALS)
    group_by = serializers.ChoiceField(choices=tuple(STATS_GROUP_BY), allow_null=True)
    totals = StatsRowSerializer()
    results = StatsRowSerializer(many=True)


# --- ingest ----------------------------------------------------------------------


class IngestResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Calls written by this request.")
    already_present = serializers.IntegerField(
        help_text="Records whose request_id was already stored with the same content."
    )


class IngestErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(allow_null=True)
    field = serializers.CharField()
    message = serializers.CharField()


class IngestFailureSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = IngestErrorSerializer(many=True)


class IngestRecordSerializer(serializers.Serializer):
    """Documents one record for the schema; validation is the ingest service's."""

    request_id = serializers.CharField(max_length=128)
    created_at = serializers.DateTimeField()
    api_key = serializers.CharField(help_text="The key's public prefix.")
    group = serializers.CharField(required=False)
    call_type = serializers.ChoiceField(choices=CallType.choices)
    model = serializers.CharField(max_length=128)
    endpoint = serializers.CharField(required=False)
    stream = serializers.BooleanField(required=False)
    status_code = serializers.IntegerField(min_value=100, max_value=599)
    error_reason = serializers.CharField(required=False)
    duration_ms = serializers.IntegerField(min_value=0)
    ttft_ms = serializers.IntegerField(min_value=0, required=False)
    input_tokens = serializers.IntegerField(min_value=0)
    output_tokens = serializers.IntegerField(min_value=0)
    total_tokens = serializers.IntegerField(min_value=0, required=False)
    cached_input_tokens = serializers.IntegerField(
        min_value=0, required=False, help_text="Read from the prompt cache; part of input_tokens."
    )
    cache_write_tokens = serializers.IntegerField(
        min_value=0, required=False, help_text="Written to the prompt cache; part of input_tokens."
    )
    reasoning_tokens = serializers.IntegerField(
        min_value=0, required=False, help_text="Part of output_tokens."
    )
    usage = serializers.DecimalField(max_digits=18, decimal_places=6)
    cost = serializers.DecimalField(
        max_digits=18,
        decimal_places=8,
        required=False,
        help_text="In USD. Absent: computed from the price list in force at created_at.",
    )
    client_ip = serializers.IPAddressField(required=False)
    upstream = serializers.CharField(required=False)
    end_user = serializers.CharField(
        max_length=128, required=False, help_text="The customer's own end-user id."
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=20, required=False
    )
    request = serializers.JSONField(required=False)
    response = serializers.JSONField(required=False)
    error = serializers.JSONField(required=False)


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "behind"])
    pending_deltas = serializers.IntegerField(help_text="Rollup deltas waiting to be folded.")
    oldest_pending_seconds = serializers.FloatField(
        help_text="How long the oldest of them has waited (0 when none wait)."
    )
    last_fold_at = serializers.DateTimeField(allow_null=True)
    last_fold_deltas = serializers.IntegerField()
    last_fold_ms = serializers.IntegerField()
