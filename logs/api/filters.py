"""Query-string filters of the calls API, validated by django-filter.

The FilterSet only parses and checks input (a bad value is a 400 naming the
parameter); the filtering itself is ``logs.read.filters.filter_calls``, the same
code the admin uses.
"""

from collections.abc import Collection

from django import forms
from django.utils import timezone
from django_filters import rest_framework as filters
from rest_framework.exceptions import ValidationError

from logs.models import CallType
from logs.periods import RECENT_PRESETS, recent_start
from logs.read.filters import (
    INVESTIGATION_READERS,
    STATUS_CHOICES,
    CallFilters,
    filter_calls,
    filter_moment,
    read_filter_value,
)


class CallFilterForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        for name in ("start", "end"):
            moment = cleaned.get(name)
            if moment is None:
                continue
            try:
                cleaned[name] = filter_moment(moment)
            except ValueError as exc:
                self.add_error(name, str(exc))
        last = cleaned.get("last")
        if last:
            if cleaned.get("start") or cleaned.get("end"):
                self.add_error("last", "counts back from now, so it takes no start or end")
            else:
                cleaned["start"] = recent_start(last, timezone.now())
        for name in INVESTIGATION_READERS:
            raw = self.data.get(name, "")
            try:
                cleaned[name] = read_filter_value(name, raw)
            except ValueError as exc:
                self.add_error(name, str(exc))
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end <= start:
            self.add_error("end", "must be after start")
        return cleaned


def check_query_parameters(query_params, known: Collection[str]) -> None:
    """A 400 naming every parameter the endpoint does not read, and every one
    given more than once: either would otherwise be dropped without a word
    (an unfiltered answer), or one value used and the others not."""
    errors = {}
    for name, values in query_params.lists():
        if name not in known:
            errors[name] = ["is not a parameter of this endpoint"]
        elif len(values) > 1:
            errors[name] = [f"takes one value, and the request gives {len(values)}"]
    if errors:
        raise ValidationError(errors)


class IdFilter(filters.Filter):
    """A database id: a whole number that fits the id column (not a decimal)."""

    field_class = forms.IntegerField


def _no_op(queryset, name, value):
    return queryset


class CallFilterSet(filters.FilterSet):
    start = filters.IsoDateTimeFilter(
        method=_no_op,
        help_text="ISO 8601 date and time; calls at or after it (no zone: the server's TIME_ZONE).",
    )
    end = filters.IsoDateTimeFilter(
        method=_no_op, help_text="ISO 8601 date and time; calls strictly before it."
    )
    model = filters.CharFilter(method=_no_op, help_text="Exact model name.")
    key_name = filters.CharFilter(method=_no_op, help_text="Exact API key name.")
    group = filters.CharFilter(method=_no_op, help_text="Pricing group name.")
    call_type = filters.ChoiceFilter(method=_no_op, choices=CallType.choices)
    status = filters.ChoiceFilter(method=_no_op, choices=STATUS_CHOICES)
    last = filters.ChoiceFilter(
        method=_no_op,
        choices=[(value, label) for value, (_, label) in RECENT_PRESETS.items()],
        help_text="A recent span counted back from now (instead of start and end).",
    )
    # Read by CallFilterForm.clean with the admin's readers (logs.read.filters).
    status_code = filters.CharFilter(method=_no_op, help_text="Exact HTTP status code, 100-599.")
    slower_than_ms = filters.CharFilter(
        method=_no_op, help_text="Calls whose duration is above this many milliseconds."
    )
    cost_above = filters.CharFilter(method=_no_op, help_text="Calls costing more (USD).")
    client_ip = filters.CharFilter(method=_no_op, help_text="The client's IPv4 or IPv6 address.")
    endpoint = filters.CharFilter(method=_no_op, help_text="Exact endpoint path.")
    streamed = filters.ChoiceFilter(
        method=_no_op, choices=[("yes", "yes"), ("no", "no")], help_text="Streamed or not."
    )
    request_id = filters.CharFilter(method=_no_op, help_text="Exact request id.")
    account = IdFilter(
        method=_no_op,
        help_text="Account id (support staff see any; others only their own).",
        min_value=1,
        max_value=2**63 - 1,
    )
    # Token accounting: the customer's own labels.
    tag = filters.CharFilter(method=_no_op, help_text="Calls carrying this tag.")
    end_user = filters.CharFilter(method=_no_op, help_text="Exact end-user id.")

    class Meta:
        form = CallFilterForm
        fields: list[str] = []

    def to_call_filters(self) -> CallFilters:
        data = self.form.cleaned_data
        return CallFilters(
            start=data.get("start"),
            end=data.get("end"),
            model=data.get("model") or None,
            key_name=data.get("key_name") or None,
            group=data.get("group") or None,
            call_type=data.get("call_type") or None,
            status=data.get("status") or None,
            request_id=data.get("request_id") or None,
            account_id=int(data["account"]) if data.get("account") is not None else None,
            tag=data.get("tag") or None,
            end_user=data.get("end_user") or None,
            **{name: data.get(name) for name in INVESTIGATION_READERS},
        )

    def filter_queryset(self, queryset):
        return filter_calls(queryset, self.to_call_filters())
