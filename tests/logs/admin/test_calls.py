"""The staff back office at /admin/logs/callrecord/: list, filters, totals, detail, CSV export,
access records, read-only-ness, and the API key admin.

Every test reads what support staff see: HTTP status, the rows of the list (from the
change list's result list and from the HTML), the messages, the totals, the CSV cells.
The calls are ingested at fixed times on 2026-03-10 (UTC) so the filters can be checked
against an independent oracle (plain Python over the stored calls).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.template.defaultfilters import filesizeformat
from django.test import Client
from django.urls import NoReverseMatch, reverse

from accounts.models import Account, ApiKey, Group
from logs.admin.formatting import readable
from logs.models import AccessRecord, CallRecord
from logs.read.export import CSV_HEADERS, FORMULA_TRIGGERS
from tests.factories import (
    OMIT,
    AccountFactory,
    ApiKeyFactory,
    StaffUserFactory,
    UserFactory,
    ingest,
    make_call,
    owner_of,
    record_dict,
)
from tests.pages import (
    column_headers,
    csv_rows,
    detail_fields,
    exact_totals_on_page,
    links,
    messages_on_page,
    page,
    payload_parts,
    result_rows,
    totals_on_page,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/logs/callrecord/"
EXPORT = "/admin/logs/callrecord/export/"


def t(hour: int, minute: int = 0, second: int = 0, *, day: int = 10, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


# label: (key, overrides). "t1"/"t2" match every filter of COMBINED; each "d_*" decoy
# fails exactly one of them (named by DECOYS below).
SPECS: dict[str, tuple[str, dict]] = {
    "t1": ("a_prod", {"created_at": t(10), "usage": "0.5", "cost": "0.00012"}),
    "t2": (
        "a_prod",
        {
            "created_at": t(10, 45),
            "usage": "1234.123456",
            "cost": "0.00000012",
            "input_tokens": 1000,
            "output_tokens": 2000,
            "duration_ms": 12345,
            "ttft_ms": 2345,
        },
    ),
    "d_model": (
        "a_prod",
        {"created_at": t(10, 5), "model": "gpt-4o", "usage": "2.5", "cost": "0.0031"},
    ),
    "d_key": (
        "a_batch",
        {"created_at": t(10, 10), "group": "default", "usage": "0.000001", "cost": "0.00000001"},
    ),
    "d_group": ("a_prod", {"created_at": t(10, 20), "group": "vip", "usage": "0.3", "cost": "0.1"}),
    "d_type": (
        "a_prod",
        {
            "created_at": t(10, 25),
            "call_type": "embedding",
            "output_tokens": 0,
            "ttft_ms": OMIT,
            "usage": "0.02",
            "cost": "0.000002",
        },
    ),
    "d_status": (
        "a_prod",
        {
            "created_at": t(10, 30),
            "status_code": 429,
            "error_reason": "rate_limit_exceeded",
            "output_tokens": 0,
            "usage": "0",
            "cost": "0",
        },
    ),
    # B's key has the same name as A's: only the account filter keeps it out.
    "d_account": ("b_prod", {"created_at": t(10, 35), "usage": "7.77", "cost": "0.0777"}),
    "d_start": ("a_prod", {"created_at": t(9, 59, 59), "usage": "0.1", "cost": "0.00000003"}),
    "d_end": ("a_prod", {"created_at": t(11), "usage": "0.2", "cost": "0.00000005"}),
    "s5xx": (
        "b_batch",
        {
            "created_at": t(9, day=11),
            "model": "claude-3-5-sonnet",
            "call_type": "completion",
            "status_code": 502,
            "error_reason": "upstream_unavailable",
            "usage": "1.125",
            "cost": "0.0031",
        },
    ),
    "feb": (
        "b_batch",
        {
            "created_at": t(12, day=20, month=2),
            "model": "claude-3-5-sonnet",
            "call_type": "image",
            "usage": "4",
            "cost": "0.04",
        },
    ),
    "old": (
        "a_prod",
        {
            "created_at": datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
            "usage": "0.9",
            "cost": "0.009",
        },
    ),
}


@dataclass
class World:
    a: Account
    b: Account
    default: Group
    vip: Group
    keys: dict[str, ApiKey]
    calls: dict[str, CallRecord]

    def by_label(self, labels) -> list[CallRecord]:
        return newest_first(self.calls[label] for label in labels)

    def where(self, predicate: Callable[[CallRecord], bool]) -> list[CallRecord]:
        return newest_first(call for call in self.calls.values() if predicate(call))


def newest_first(calls) -> list[CallRecord]:
    return sorted(calls, key=lambda call: (call.created_at, call.pk), reverse=True)


def ids(calls) -> list[str]:
    return [call.request_id for call in calls]


@pytest.fixture
def world(db, default_group, vip_group) -> World:
    a = AccountFactory(name="Acme Robotics", slug="acme")
    b = AccountFactory(name="Globex", slug="globex")
    keys = {
        "a_prod": ApiKeyFactory(account=a, name="acme-prod", group=default_group),
        "a_batch": ApiKeyFactory(account=a, name="acme-batch", group=vip_group),
        "b_prod": ApiKeyFactory(account=b, name="acme-prod", group=default_group),
        "b_batch": ApiKeyFactory(account=b, name="globex-batch", group=vip_group),
    }
    records = {
        label: record_dict(keys[key], request_id=f"req-{label}", **overrides)
        for label, (key, overrides) in SPECS.items()
    }
    result = ingest(*records.values())
    assert result.created == len(SPECS)
    stored = {
        call.request_id: call for call in CallRecord.objects.select_related("api_key", "group")
    }
    calls = {label: stored[f"req-{label}"] for label in SPECS}
    return World(a=a, b=b, default=default_group, vip=vip_group, keys=keys, calls=calls)


def get_list(client: Client, params: dict | None = None):
    response = client.get(CHANGELIST, params or {})
    assert response.status_code == 200
    return response


def listed(response) -> list[str]:
    """Request ids of the rows on the page, checked against the HTML rows."""
    calls = list(response.context["cl"].result_list)
    assert len(result_rows(response)) == len(calls)
    return ids(calls)


# --- the list ---------------------------------------------------------------------------


def test_the_list_shows_every_call_newest_first_with_its_columns(staff_client, world):
    response = get_list(staff_client)

    assert listed(response) == ids(world.where(lambda call: True))
    assert column_headers(response) == [
        ("time", "Time"),
        ("request", "Id"),
        ("account", "Account"),
        ("key_name", "Key name"),
        ("group", "Group"),
        ("call_type", "Call type"),
        ("model", "Model"),
        ("status", "Status"),
        ("duration", "Duration"),
        ("speed", "Output speed"),
        ("tokens", "Tokens (in / out)"),
        ("usage_amount", "Usage"),
        ("cost_amount", "Cost (USD)"),
    ]
    rows = {row["time"]: row for row in result_rows(response)}
    assert rows["2026-03-10 10:45:00"] == {
        "time": "2026-03-10 10:45:00",
        "request": "Copy",
        "account": "Acme Robotics",
        "key_name": "acme-prod",
        "group": "default",
        "call_type": "Chat",
        "model": "gpt-4o-mini",
        "status": "200",
        "duration": "12,345 ms (12.3 s)",
        "speed": "200.0 tok/s",
        "tokens": "3,000 (1,000 / 2,000)",
        # For reading: separators and the decimals that matter (exact on hover).
        "usage_amount": "1,234.12",
        "cost_amount": "0.00000012",
    }
    page_html = page(response)
    assert 'title="1234.123456">1,234.12<' in page_html
    assert rows["2026-03-11 09:00:00"]["status"] == "502 upstream_unavailable"
    assert rows["2026-03-11 09:00:00"]["account"] == "Globex"
    assert rows["2026-03-10 10:30:00"]["status"] == "429 rate_limit_exceeded"
    assert rows["2026-03-10 10:25:00"]["speed"] == "—"
    assert rows["2026-03-10 10:25:00"]["call_type"] == "Embeddings"
    assert 'title="2026-03-10T10:45:00.000Z UTC"' in page(response)


def test_times_are_shown_in_the_configured_zone_with_utc_on_hover(staff_client, world, settings):
    settings.TIME_ZONE = "Asia/Tokyo"

    response = get_list(staff_client, {"q": "req-t2"})

    assert [row["time"] for row in result_rows(response)] == ["2026-03-10 19:45:00"]
    assert 'title="2026-03-10T10:45:00.000Z UTC"' in page(response)


def _ts(call):
    return call.created_at


# (params, which calls match) — the oracle is plain Python over the stored calls.
SINGLE_FILTERS: list[tuple[str, dict, Callable[[World, CallRecord], bool]]] = [
    ("start", {"start": "2026-03-10T10:00"}, lambda w, c: _ts(c) >= t(10)),
    ("start-seconds", {"start": "2026-03-10T09:59:59"}, lambda w, c: _ts(c) >= t(9, 59, 59)),
    ("start-date", {"start": "2026-03-11"}, lambda w, c: _ts(c) >= t(0, day=11)),
    ("end", {"end": "2026-03-10T11:00"}, lambda w, c: _ts(c) < t(11)),
    # A date alone as the end includes that whole day.
    ("end-date", {"end": "2026-03-10"}, lambda w, c: _ts(c) < t(0, day=11)),
    (
        "start-and-end-the-same-date",
        {"start": "2026-03-10", "end": "2026-03-10"},
        lambda w, c: t(0) <= _ts(c) < t(0, day=11),
    ),
    (
        "start-and-end",
        {"start": "2026-03-10T10:00", "end": "2026-03-10T11:00"},
        lambda w, c: t(10) <= _ts(c) < t(11),
    ),
    (
        "start-and-end-with-zone",
        {"start": "2026-03-10T11:00:00+01:00", "end": "2026-03-10T10:30:00Z"},
        lambda w, c: t(10) <= _ts(c) < t(10, 30),
    ),
    ("account", {"account": "A"}, lambda w, c: c.account_id == w.a.pk),
    ("account-b", {"account": "B"}, lambda w, c: c.account_id == w.b.pk),
    ("model", {"model": "gpt-4o"}, lambda w, c: c.model == "gpt-4o"),
    ("model-2", {"model": "claude-3-5-sonnet"}, lambda w, c: c.model == "claude-3-5-sonnet"),
    ("key-name", {"key_name": "acme-prod"}, lambda w, c: c.api_key.name == "acme-prod"),
    ("key-name-2", {"key_name": "acme-batch"}, lambda w, c: c.api_key.name == "acme-batch"),
    ("group", {"group": "vip"}, lambda w, c: c.group.name == "vip"),
    ("group-default", {"group": "default"}, lambda w, c: c.group.name == "default"),
    ("call-type", {"call_type": "embedding"}, lambda w, c: c.call_type == "embedding"),
    ("call-type-image", {"call_type": "image"}, lambda w, c: c.call_type == "image"),
    ("success", {"status": "success"}, lambda w, c: c.status_code < 400),
    ("client-error", {"status": "client_error"}, lambda w, c: 400 <= c.status_code < 500),
    ("server-error", {"status": "server_error"}, lambda w, c: c.status_code >= 500),
    ("year", {"created_at__year": "2025"}, lambda w, c: _ts(c).year == 2025),
    (
        "month",
        {"created_at__year": "2026", "created_at__month": "2"},
        lambda w, c: (_ts(c).year, _ts(c).month) == (2026, 2),
    ),
    (
        "day",
        {"created_at__year": "2026", "created_at__month": "3", "created_at__day": "11"},
        lambda w, c: _ts(c).date() == t(0, day=11).date(),
    ),
    ("request-id", {"q": "req-d_group"}, lambda w, c: c.request_id == "req-d_group"),
    ("request-id-is-exact", {"q": "req-t"}, lambda w, c: False),
]


def resolve(world: World, params: dict) -> dict:
    """Put the accounts' real ids in for the placeholders "A" and "B"."""
    accounts = {"A": world.a.pk, "B": world.b.pk}
    return {
        name: accounts.get(value, value) if name == "account" else value
        for name, value in params.items()
    }


@pytest.mark.parametrize(
    ("params", "matches"),
    [pytest.param(params, matches, id=name) for name, params, matches in SINGLE_FILTERS],
)
def test_each_filter_alone_shows_exactly_the_matching_calls(staff_client, world, params, matches):
    expected = world.where(lambda call: matches(world, call))
    assert len(expected) < len(world.calls)  # every filter leaves something out

    response = get_list(staff_client, resolve(world, params))

    assert listed(response) == ids(expected)
    assert messages_on_page(response) == []


COMBINED = {
    "start": "2026-03-10T10:00",
    "end": "2026-03-10T11:00",
    "account": "A",
    "model": "gpt-4o-mini",
    "key_name": "acme-prod",
    "group": "default",
    "call_type": "chat",
    "status": "success",
    "created_at__year": "2026",
    "created_at__month": "3",
    "created_at__day": "10",
}
# The decoy that only the named filter keeps out.
DECOYS = {
    "start": "d_start",
    "end": "d_end",
    "account": "d_account",
    "model": "d_model",
    "key_name": "d_key",
    "group": "d_group",
    "call_type": "d_type",
    "status": "d_status",
}


def test_all_filters_combined_show_exactly_the_calls_matching_all(staff_client, world):
    response = get_list(staff_client, resolve(world, COMBINED))

    assert listed(response) == ["req-t2", "req-t1"]


def test_all_filters_and_the_request_id_search_combined(staff_client, world):
    response = get_list(staff_client, resolve(world, {**COMBINED, "q": "req-t1"}))

    assert listed(response) == ["req-t1"]


@pytest.mark.parametrize("dropped", sorted(DECOYS))
def test_each_filter_of_the_combination_does_its_part(staff_client, world, dropped):
    params = {name: value for name, value in COMBINED.items() if name != dropped}

    response = get_list(staff_client, resolve(world, params))

    assert listed(response) == ids(world.by_label(["t1", "t2", DECOYS[dropped]]))


def test_a_time_range_without_a_zone_is_read_in_the_configured_zone(staff_client, world, settings):
    settings.TIME_ZONE = "Europe/Berlin"  # UTC+1 in March

    response = get_list(staff_client, {"start": "2026-03-10T11:00", "end": "2026-03-10T12:00"})

    assert listed(response) == ids(world.where(lambda call: t(10) <= call.created_at < t(11)))


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        # 25 October 2026: Berlin's clocks go from 03:00 CEST back to 02:00 CET.
        ("2026-10-25T02:30", "is ambiguous in Europe/Berlin"),
        # 29 March 2026: they go from 02:00 CET on to 03:00 CEST.
        ("2026-03-29T02:30", "does not exist in Europe/Berlin"),
    ],
    ids=["repeated hour", "skipped hour"],
)
def test_a_time_a_dst_change_repeats_or_skips_asks_for_its_offset(
    staff_client, settings, typed, problem
):
    """Without an offset such a time is two instants an hour apart, or none:
    reading it as either would drop or add up to an hour of calls unseen."""
    settings.TIME_ZONE = "Europe/Berlin"
    key = ApiKeyFactory(name="dst-key")
    day = datetime.fromisoformat(typed).replace(tzinfo=UTC).replace(hour=0, minute=0)
    made = [
        make_call(key, request_id=f"req-dst-{minute}", created_at=day + timedelta(minutes=minute))
        for minute in (15, 45, 75, 105)  # 00:15, 00:45, 01:15, 01:45 UTC
    ]

    for params in ({"end": typed}, {"start": typed}, {"start": "2026-01-01", "end": typed}):
        response = get_list(staff_client, params)
        name = "end" if "end" in params else "start"
        (message,) = messages_on_page(response)
        assert message[0] == "error"
        assert message[1].startswith(f"Time range {name}: “{typed}” {problem}")
        assert "+01:00" in message[1] and "+02:00" in message[1]
        assert listed(response) == []

    # With the offset it names one instant, and the list ends there.
    for offset, utc_end in (("+02:00", timedelta(minutes=30)), ("+01:00", timedelta(minutes=90))):
        response = get_list(staff_client, {"end": typed + offset})
        assert messages_on_page(response) == []
        assert listed(response) == ids(
            newest_first(c for c in made if c.created_at < day + utc_end)
        )


BAD_INPUT = [
    ("malformed-start", {"start": "yesterday"}, "error", "Time range start"),
    ("malformed-end", {"end": "2026-13-45T99:00"}, "error", "Time range end"),
    (
        "end-before-start",
        {"start": "2026-03-10T11:00", "end": "2026-03-10T10:00"},
        "error",
        "end must be after the start",
    ),
    (
        "end-equals-start",
        {"start": "2026-03-10T10:00", "end": "2026-03-10T10:00"},
        "error",
        "end must be after the start",
    ),
    ("unknown-model", {"model": "never-ingested-model"}, "warning", "Model “never-ingested-model”"),
    ("unknown-key-name", {"key_name": "no-such-key"}, "warning", "Key name “no-such-key”"),
    ("unknown-group", {"group": "no-such-group"}, "warning", "Group “no-such-group”"),
    ("unknown-account", {"account": "987654321"}, "warning", "Account “987654321”"),
    ("non-numeric-account", {"account": "acme"}, "warning", "Account “acme”"),
    ("unknown-call-type", {"call_type": "telepathy"}, "warning", "Call type “telepathy”"),
    ("unknown-status", {"status": "teapot"}, "warning", "Status “teapot”"),
]


@pytest.mark.parametrize(
    ("params", "level", "text"),
    [pytest.param(params, level, text, id=name) for name, params, level, text in BAD_INPUT],
)
def test_bad_filter_input_shows_a_message_and_no_rows(staff_client, world, params, level, text):
    response = staff_client.get(CHANGELIST, params)

    assert response.status_code == 200
    shown = messages_on_page(response)
    assert [message_level for message_level, _ in shown] == [level]
    assert text in shown[0][1]
    assert listed(response) == []
    assert response.context["totals"].calls == 0
    assert totals_on_page(response)["calls"] == "0"


@pytest.mark.parametrize(
    "params", [pytest.param(params, id=name) for name, params, _, _ in BAD_INPUT]
)
def test_bad_filter_input_next_to_good_filters_still_shows_no_rows(staff_client, world, params):
    response = staff_client.get(CHANGELIST, {"status": "success", "account": world.a.pk, **params})

    assert response.status_code == 200
    assert listed(response) == []


# --- totals -----------------------------------------------------------------------------


TOTALS_CASES = [
    ("everything", {}, lambda w, c: True),
    ("model", {"model": "gpt-4o-mini"}, lambda w, c: c.model == "gpt-4o-mini"),
    ("client-errors", {"status": "client_error"}, lambda w, c: 400 <= c.status_code < 500),
    ("errors-of-b", {"account": "B", "status": "server_error"}, lambda w, c: c.status_code >= 500),
    (
        "time-range-of-a",
        {"account": "A", "start": "2026-03-10T10:00", "end": "2026-03-10T11:00"},
        lambda w, c: c.account_id == w.a.pk and t(10) <= c.created_at < t(11),
    ),
    ("combined", COMBINED, lambda w, c: c.request_id in ("req-t1", "req-t2")),
    ("nothing", {"q": "req-none"}, lambda w, c: False),
]


@pytest.mark.parametrize(
    ("params", "matches"),
    [pytest.param(params, matches, id=name) for name, params, matches in TOTALS_CASES],
)
def test_totals_are_the_exact_sums_of_the_filtered_rows(staff_client, world, params, matches):
    expected = world.where(lambda call: matches(world, call))

    response = get_list(staff_client, resolve(world, params))

    assert listed(response) == ids(expected)
    totals = response.context["totals"]
    assert totals.calls == len(expected)
    assert totals.errors == sum(1 for call in expected if call.status_code >= 400)
    assert totals.input_tokens == sum(call.input_tokens for call in expected)
    assert totals.output_tokens == sum(call.output_tokens for call in expected)
    assert totals.total_tokens == sum(call.total_tokens for call in expected)
    assert totals.duration_ms_sum == sum(call.duration_ms for call in expected)
    usage = sum((Decimal(SPECS[c.request_id[4:]][1]["usage"]) for c in expected), Decimal(0))
    cost = sum((Decimal(SPECS[c.request_id[4:]][1]["cost"]) for c in expected), Decimal(0))
    assert isinstance(totals.usage, Decimal)
    assert isinstance(totals.cost, Decimal)
    assert totals.usage == usage
    assert totals.cost == cost
    shown = totals_on_page(response)
    assert shown["calls"] == f"{len(expected):,}"
    # Shown for reading, exact on hover (and in the CSV and the API).
    assert shown["usage"] == readable(usage)
    assert shown["cost"] == readable(cost)
    exact = exact_totals_on_page(response)
    assert Decimal(exact["usage"]) == usage
    assert Decimal(exact["cost"]) == cost


def test_totals_of_many_small_decimals_do_not_drift(staff_client, world):
    key = world.keys["a_batch"]
    ingest(
        *(
            record_dict(
                key, created_at=t(15, n), model="drift-check", usage="0.1", cost="0.00000001"
            )
            for n in range(30)
        )
    )

    response = get_list(staff_client, {"model": "drift-check"})

    assert response.context["totals"].usage == Decimal("3")
    assert response.context["totals"].cost == Decimal("0.0000003")
    assert Decimal(exact_totals_on_page(response)["usage"]) == Decimal("3")
    assert totals_on_page(response)["cost"] == "0.0000003"


# --- filter choices ---------------------------------------------------------------------


def filter_choices(response, parameter: str) -> list[str]:
    for spec in response.context["cl"].filter_specs:
        if getattr(spec, "parameter_name", None) == parameter:
            return [str(value) for value, _ in spec.lookup_choices]
    raise AssertionError(f"no filter {parameter!r}")


def test_filter_choices_come_from_what_was_ingested(staff_client, world):
    response = get_list(staff_client)

    assert filter_choices(response, "model") == ["claude-3-5-sonnet", "gpt-4o", "gpt-4o-mini"]
    assert filter_choices(response, "key_name") == ["acme-batch", "acme-prod", "globex-batch"]
    assert filter_choices(response, "group") == ["default", "vip"]
    assert filter_choices(response, "account") == [str(world.a.pk), str(world.b.pk)]
    shown = links(response)
    for name in ("claude-3-5-sonnet", "gpt-4o", "gpt-4o-mini", "acme-batch", "globex-batch"):
        assert any(text == name for text, _ in shown), name
    assert ("Globex", f"?account={world.b.pk}") in shown

    make_call(world.keys["b_batch"], model="mistral-large", created_at=t(16))
    assert "mistral-large" in filter_choices(get_list(staff_client), "model")


def test_a_model_name_appears_in_no_choice_before_it_is_ingested(staff_client, world):
    ApiKeyFactory(account=world.b, name="unused-key", group=world.vip)

    response = get_list(staff_client)

    assert "unused-key" in filter_choices(response, "key_name")
    assert "mistral-large" not in filter_choices(response, "model")


# --- the detail page --------------------------------------------------------------------

PLANTED_KEY = "sk-plantedSECRETvalue0123456789abcdef"
PLANTED_WORDS = ("hunter2-planted-password", "planted-session-cookie", "planted-error-token")


def rich_call(world: World, **overrides) -> CallRecord:
    fields = {
        "request_id": "req-detail-01",
        "created_at": datetime(2026, 3, 10, 14, 0, 30, 218000, tzinfo=UTC),
        "model": "gpt-4o",
        "stream": True,
        "status_code": 429,
        "error_reason": "rate_limit_exceeded",
        "duration_ms": 2380,
        "ttft_ms": 380,
        "input_tokens": 812,
        "output_tokens": 143,
        "usage": "477.5",
        "cost": "0.0002076",
        "upstream": "azure-eastus-2",
        "request": {
            "params": {"model": "gpt-4o", "temperature": 0.2, "max_tokens": 512},
            "headers": {
                "Authorization": f"Bearer {PLANTED_KEY}",
                "Cookie": PLANTED_WORDS[1],
                "User-Agent": "openai-python/1.54",
            },
            "body": {
                "messages": [{"role": "user", "content": f"my key is {PLANTED_KEY}, thanks"}],
                "password": PLANTED_WORDS[0],
            },
        },
        "response": {"choices": [{"message": {"role": "assistant", "content": "Ünïcode ok"}}]},
        "error": {"type": "rate_limit_exceeded", "message": "Slow down", "token": PLANTED_WORDS[2]},
    }
    fields.update(overrides)
    return make_call(world.keys["a_prod"], **fields)


def detail_url(call_id) -> str:
    return f"/admin/logs/callrecord/{call_id}/change/"


def test_the_detail_page_shows_everything_about_a_call(staff_client, world):
    call = rich_call(world)
    key = world.keys["a_prod"]

    response = staff_client.get(detail_url(call.pk))

    assert response.status_code == 200
    html = page(response)
    assert "data-request-id>req-detail-01</code>" in html
    fields = detail_fields(response)
    assert fields["input_tokens"] == "812"
    assert fields["output_tokens"] == "143"
    assert fields["total_tokens"] == "955"
    assert fields["duration"] == "2,380 ms"
    assert fields["ttft"] == "380 ms"
    assert fields["speed"] == "71.5 tok/s"  # 143 tokens in the 2,000 ms after the first
    assert fields["status_code"] == "429"
    assert fields["error_reason"] == "rate_limit_exceeded"
    assert fields["key"] == f"acme-prod {key.prefix}…"
    assert fields["group"] == "default"
    assert fields["account"] == "Acme Robotics"
    assert fields["model"] == "gpt-4o"
    assert fields["call_type"] == "Chat"
    assert fields["usage"] == "477.500000"
    assert fields["cost"] == "0.00020760"
    assert fields["upstream"] == "azure-eastus-2"
    assert "2026-03-10T14:00:30.218Z" in html


def test_the_detail_page_pretty_prints_the_redacted_payload(staff_client, world):
    call = rich_call(world)

    response = staff_client.get(detail_url(call.pk))

    parts = payload_parts(response)
    assert parts["request_params"] == json.dumps(
        {"model": "gpt-4o", "temperature": 0.2, "max_tokens": 512}, indent=2
    )
    assert parts["request_headers"] == json.dumps(
        {"Authorization": "[REDACTED]", "Cookie": "[REDACTED]", "User-Agent": "openai-python/1.54"},
        indent=2,
    )
    assert parts["request_body"] == json.dumps(
        {
            "messages": [{"role": "user", "content": "my key is [REDACTED], thanks"}],
            "password": "[REDACTED]",
        },
        indent=2,
    )
    assert parts["response"] == json.dumps(
        {"choices": [{"message": {"role": "assistant", "content": "Ünïcode ok"}}]},
        indent=2,
        ensure_ascii=False,
    )
    assert parts["error_detail"] == json.dumps(
        {"type": "rate_limit_exceeded", "message": "Slow down", "token": "[REDACTED]"}, indent=2
    )
    html = page(response)
    for secret in (PLANTED_KEY, PLANTED_KEY[3:], *PLANTED_WORDS):
        assert secret not in html


def test_a_call_without_payload_says_none_recorded(staff_client, world):
    call = make_call(
        world.keys["a_prod"], request=OMIT, response=OMIT, created_at=t(13), request_id="req-bare"
    )

    response = staff_client.get(detail_url(call.pk))

    assert response.status_code == 200
    assert payload_parts(response) == {}
    assert page(response).count("None recorded.") == 5


def test_the_detail_links_to_the_same_keys_calls_around_that_time(staff_client, world):
    call = rich_call(world)
    key = world.keys["a_prod"]
    near = make_call(key, request_id="req-near", created_at=call.created_at + timedelta(minutes=20))
    make_call(key, request_id="req-far", created_at=call.created_at + timedelta(minutes=40))
    make_call(world.keys["a_batch"], request_id="req-other-key", created_at=call.created_at)
    make_call(world.keys["b_prod"], request_id="req-same-name-b", created_at=call.created_at)

    response = staff_client.get(detail_url(call.pk))
    [href] = [href for text, href in links(response) if text.startswith("This key's calls")]
    nearby = staff_client.get(href)

    assert nearby.status_code == 200
    assert messages_on_page(nearby) == []
    assert listed(nearby) == [near.request_id, call.request_id]


def test_a_truncated_part_says_it_was_cut_and_shows_the_original_size(
    staff_client, world, settings
):
    settings.USAGELOGS_PAYLOAD_MAX_BYTES = 100
    response_part = {"text": "x" * 500}
    stored_text = json.dumps(response_part, separators=(",", ":"))  # as ingest stores it
    original = len(stored_text.encode())
    call = make_call(world.keys["a_prod"], created_at=t(13), response=response_part)

    response = staff_client.get(detail_url(call.pk))

    html = page(response)
    assert html.count("Cut to ") == 1
    assert f"Cut to {filesizeformat(100)} of {filesizeformat(original)} when stored." in html
    assert payload_parts(response)["response"] == stored_text[:100]


@pytest.mark.parametrize("missing", ["987654321", "not-a-number"])
def test_a_nonexistent_call_redirects_like_the_admin_does(staff_client, world, missing):
    response = staff_client.get(detail_url(missing))

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    followed = staff_client.get(response["Location"])
    [(level, text)] = messages_on_page(followed)
    assert level == "warning"
    assert text == f"Call with ID “{missing}” doesn\u2019t exist. Perhaps it was deleted?"
    assert not AccessRecord.objects.exists()


# --- read only --------------------------------------------------------------------------


def test_calls_cannot_be_added(staff_client, superuser_client, world):
    for client in (staff_client, superuser_client):
        assert client.get("/admin/logs/callrecord/add/").status_code == 403
        assert client.post("/admin/logs/callrecord/add/", {"model": "x"}).status_code == 403
    assert CallRecord.objects.count() == len(SPECS)
    listing = get_list(superuser_client)
    assert "/admin/logs/callrecord/add/" not in page(listing)
    assert not listing.context["has_add_permission"]


def test_posting_to_a_call_changes_nothing(superuser_client, world):
    call = world.calls["t1"]
    before = CallRecord.objects.filter(pk=call.pk).values().get()

    response = superuser_client.post(
        detail_url(call.pk),
        {"model": "hacked", "status_code": "500", "usage": "999", "request_id": "req-hacked"},
    )

    assert response.status_code in (200, 403)
    assert CallRecord.objects.filter(pk=call.pk).values().get() == before
    assert not CallRecord.objects.filter(model="hacked").exists()


def test_calls_cannot_be_deleted(staff_client, superuser_client, world):
    call = world.calls["t1"]
    url = f"/admin/logs/callrecord/{call.pk}/delete/"
    for client in (staff_client, superuser_client):
        assert client.get(url).status_code == 403
        assert client.post(url, {"post": "yes"}).status_code == 403
        # and there is no bulk delete action on the list
        response = client.post(
            CHANGELIST, {"action": "delete_selected", "_selected_action": [call.pk], "post": "yes"}
        )
        assert response.status_code in (200, 302, 403)
    assert CallRecord.objects.filter(pk=call.pk).exists()
    assert CallRecord.objects.count() == len(SPECS)


def test_calls_cannot_be_imported_through_the_admin(superuser_client, world):
    for name in ("admin:logs_callrecord_import", "admin:logs_callrecord_process_import"):
        with pytest.raises(NoReverseMatch):
            reverse(name)

    response = superuser_client.get("/admin/logs/callrecord/import/", follow=True)

    assert response.redirect_chain, "an import page answered"
    assert b'type="file"' not in response.content
    assert "import/" not in page(get_list(superuser_client))


# --- CSV export -------------------------------------------------------------------------


def export(client: Client, params: dict | None = None):
    response = client.get(EXPORT, params or {})
    assert response.status_code == 200
    return response


EXPORT_CASES = [
    ("everything", {}),
    ("model", {"model": "gpt-4o-mini"}),
    ("client-errors", {"status": "client_error"}),
    ("account-b", {"account": "B"}),
    ("time-range", {"start": "2026-03-10T10:00", "end": "2026-03-10T11:00"}),
    ("day", {"created_at__year": "2026", "created_at__month": "3", "created_at__day": "10"}),
    ("request-id", {"q": "req-d_type"}),
    ("combined", COMBINED),
]


@pytest.mark.parametrize("params", [pytest.param(params, id=name) for name, params in EXPORT_CASES])
def test_export_downloads_exactly_the_rows_the_list_shows(staff_client, world, params):
    params = resolve(world, params)
    shown = listed(staff_client.get(CHANGELIST, params))

    response = export(staff_client, params)

    assert response["Content-Type"].startswith("text/csv")
    assert re.fullmatch(
        r'attachment; filename="calls-\d{8}-\d{6}\.csv"', response["Content-Disposition"]
    )
    rows = csv_rows(response)
    assert rows[0] == CSV_HEADERS
    assert [row[1] for row in rows[1:]] == shown
    assert all(len(row) == len(CSV_HEADERS) for row in rows)


def test_export_of_a_filter_is_not_the_whole_table(staff_client, world):
    rows = csv_rows(export(staff_client, resolve(world, COMBINED)))

    assert [row[1] for row in rows[1:]] == ["req-t2", "req-t1"]


def expected_cells(call: CallRecord, **cells) -> list[str]:
    key = call.api_key
    row = {
        "id": str(call.pk),
        "request id": call.request_id,
        "time (UTC)": "",
        "account": call.account.name,
        "key name": key.name,
        "key prefix": key.prefix,
        "group": call.group.name,
        "call type": call.call_type,
        "model": call.model,
        "endpoint": "/v1/chat/completions",
        "stream": "no",
        "status": str(call.status_code),
        "error reason": call.error_reason,
        "duration (ms)": str(call.duration_ms),
        "time to first token (ms)": "" if call.ttft_ms is None else str(call.ttft_ms),
        "input tokens": str(call.input_tokens),
        "output tokens": str(call.output_tokens),
        "total tokens": str(call.total_tokens),
        "cached input tokens": str(call.cached_input_tokens),
        "cache write tokens": str(call.cache_write_tokens),
        "reasoning tokens": str(call.reasoning_tokens),
        "usage": "",
        "cost": "",
        "end user": call.end_user,
        "tags": json.dumps(call.tags, ensure_ascii=False) if call.tags else "",
    }
    row.update(cells)
    assert list(row) == CSV_HEADERS
    return list(row.values())


def exported_by_request_id(response) -> dict[str, list[str]]:
    return {row[1]: row for row in csv_rows(response)[1:]}


def test_export_cells_are_exact(staff_client, world):
    make_call(
        world.keys["b_batch"],
        request_id="req-offset",
        created_at=datetime(2026, 3, 10, 12, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2))),
        stream=True,
        endpoint="/v1/embeddings",
        usage="999999999.999999",
        cost="999999.99999999",
        ttft_ms=OMIT,
    )

    rows = exported_by_request_id(export(staff_client))

    assert rows["req-t1"] == expected_cells(
        world.calls["t1"],
        **{"time (UTC)": "2026-03-10T10:00:00Z", "usage": "0.500000", "cost": "0.00012000"},
    )
    # (a zero cost is checked with the other small amounts below)
    assert (
        rows["req-d_status"][:19]
        == expected_cells(
            world.calls["d_status"], **{"time (UTC)": "2026-03-10T10:30:00Z", "usage": "0.000000"}
        )[:19]
    )
    assert rows["req-d_status"][11:13] == ["429", "rate_limit_exceeded"]
    assert rows["req-d_type"][14] == ""  # no time to first token
    assert rows["req-d_account"][3:5] == ["Globex", "acme-prod"]
    offset = CallRecord.objects.select_related("api_key", "group", "account").get(
        request_id="req-offset"
    )
    assert rows["req-offset"] == expected_cells(
        offset,
        **{
            "time (UTC)": "2026-03-10T10:00:00.250000Z",
            "endpoint": "/v1/embeddings",
            "stream": "yes",
            "usage": "999999999.999999",
            "cost": "999999.99999999",
        },
    )


def test_export_writes_tiny_amounts_as_plain_decimals(staff_client, world):
    """A cost below a millionth (or zero) is written with its eight places, not as 1.2E-7."""
    rows = exported_by_request_id(export(staff_client))
    money = slice(CSV_HEADERS.index("usage"), CSV_HEADERS.index("cost") + 1)

    assert rows["req-d_status"][money] == ["0.000000", "0.00000000"]
    assert rows["req-t2"][money] == ["1234.123456", "0.00000012"]
    assert rows["req-d_key"][money] == ["0.000001", "0.00000001"]
    assert rows["req-d_start"][CSV_HEADERS.index("cost")] == "0.00000003"


@pytest.mark.parametrize("trigger", ["=", "+", "-", "@"])
def test_a_model_or_error_reason_starting_a_formula_is_escaped(staff_client, world, trigger):
    model = f'{trigger}HYPERLINK("https://evil.example","x")'
    reason = f"{trigger}cmd|' /C calc'!A0"
    make_call(
        world.keys["a_prod"],
        request_id="req-formula",
        created_at=t(13),
        model=model,
        status_code=400,
        error_reason=reason,
    )

    row = exported_by_request_id(export(staff_client))["req-formula"]

    assert row[8] == "'" + model
    assert row[12] == "'" + reason


@pytest.mark.parametrize(
    "trigger", FORMULA_TRIGGERS, ids=["eq", "plus", "minus", "at", "tab", "cr"]
)
def test_a_key_or_account_name_starting_a_formula_is_escaped(staff_client, world, trigger):
    account = AccountFactory(name=f"{trigger}Evil Corp", slug="evil")
    key = ApiKeyFactory(account=account, name=f"{trigger}SUM(1,2)", group=world.default)
    make_call(key, request_id="req-formula-name", created_at=t(13))

    row = exported_by_request_id(export(staff_client))["req-formula-name"]

    assert row[3] == f"'{trigger}Evil Corp"
    assert row[4] == f"'{trigger}SUM(1,2)"


@pytest.mark.parametrize("trigger", ["\t", "\r"], ids=["tab", "cr"])
def test_a_tab_or_cr_before_a_model_name_never_starts_a_cell(staff_client, world, trigger):
    make_call(
        world.keys["a_prod"],
        request_id="req-ws",
        created_at=t(13),
        model=f"{trigger}=SUM(1,2)",
        status_code=400,
        error_reason=f"{trigger}@reason",
    )

    row = exported_by_request_id(export(staff_client))["req-ws"]

    assert not row[8].startswith(FORMULA_TRIGGERS)
    assert not row[12].startswith(FORMULA_TRIGGERS)
    assert row[8].endswith("=SUM(1,2)")
    assert row[12].endswith("@reason")


def test_an_equals_sign_inside_a_value_is_left_alone(staff_client, world):
    key = ApiKeyFactory(account=world.a, name="prod=main", group=world.default)
    make_call(
        key,
        request_id="req-inner",
        created_at=t(13),
        model="gpt=4o+mini@eu-west",
        status_code=400,
        error_reason="quota=0 - retry later",
    )

    row = exported_by_request_id(export(staff_client))["req-inner"]

    assert row[4] == "prod=main"
    assert row[8] == "gpt=4o+mini@eu-west"
    assert row[12] == "quota=0 - retry later"


@pytest.mark.parametrize(
    ("params", "level", "text"),
    [pytest.param(params, level, text, id=name) for name, params, level, text in BAD_INPUT],
)
def test_an_export_with_bad_filter_input_sends_no_file_but_the_lists_message(
    staff_client, world, params, level, text
):
    response = staff_client.get(EXPORT, params)

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    shown = messages_on_page(response)
    assert [message_level for message_level, _ in shown] == [level]
    assert text in shown[0][1]
    assert "Nothing was exported" in page(response)
    assert not AccessRecord.objects.exists()


# --- access records ---------------------------------------------------------------------


def test_opening_a_call_leaves_an_access_record(staff_client, staff_user, world):
    call = world.calls["d_status"]
    get_list(staff_client)
    assert not AccessRecord.objects.exists()  # the list shows no payload

    staff_client.get(detail_url(call.pk))

    record = AccessRecord.objects.get()
    assert record.user == staff_user
    assert record.username == "support"
    assert record.action == AccessRecord.Action.VIEW_CALL
    assert record.surface == AccessRecord.Surface.ADMIN
    assert record.call_id == call.pk
    assert record.request_id == "req-d_status"
    assert record.row_count is None


def test_an_export_leaves_an_access_record_with_its_filters_and_size(
    staff_client, staff_user, world
):
    params = {"model": "gpt-4o-mini", "status": "success", "account": str(world.a.pk)}

    rows = csv_rows(export(staff_client, params))

    record = AccessRecord.objects.get()
    assert record.user == staff_user
    assert record.username == "support"
    assert record.action == AccessRecord.Action.EXPORT
    assert record.surface == AccessRecord.Surface.ADMIN
    assert record.filters == params
    expected = world.where(
        lambda c: c.account_id == world.a.pk and c.model == "gpt-4o-mini" and c.status_code < 400
    )
    assert [row[1] for row in rows[1:]] == ids(expected)
    assert record.row_count == len(expected) == 8
    assert record.call_id is None


def test_access_records_are_for_superusers_only(staff_client, world):
    staff_client.get(detail_url(world.calls["t1"].pk))
    record = AccessRecord.objects.get()

    assert staff_client.get("/admin/logs/accessrecord/").status_code == 403
    assert staff_client.get(f"/admin/logs/accessrecord/{record.pk}/change/").status_code in (
        302,
        403,
    )
    index = staff_client.get("/admin/")
    assert index.status_code == 200
    assert "/admin/logs/accessrecord/" not in page(index)
    assert "/admin/logs/callrecord/" in page(index)


def test_superusers_read_access_records_but_cannot_change_them(
    superuser_client, staff_client, world
):
    staff_client.get(detail_url(world.calls["t1"].pk))
    record = AccessRecord.objects.get()
    before = AccessRecord.objects.filter(pk=record.pk).values().get()

    listing = superuser_client.get("/admin/logs/accessrecord/")
    assert listing.status_code == 200
    assert [row["username"] for row in result_rows(listing)] == ["support"]
    assert superuser_client.get(f"/admin/logs/accessrecord/{record.pk}/change/").status_code == 200

    assert superuser_client.get("/admin/logs/accessrecord/add/").status_code == 403
    changed = superuser_client.post(
        f"/admin/logs/accessrecord/{record.pk}/change/", {"username": "nobody", "action": "export"}
    )
    assert changed.status_code == 403
    deleted = superuser_client.post(
        f"/admin/logs/accessrecord/{record.pk}/delete/", {"post": "yes"}
    )
    assert deleted.status_code == 403
    assert AccessRecord.objects.filter(pk=record.pk).values().get() == before
    assert AccessRecord.objects.count() == 1


# --- who may open the back office ---------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "owner", "plain", "inactive-staff"])
def test_only_active_staff_can_open_the_back_office(client, world, who):
    if who == "owner":
        client.force_login(owner_of(world.a))
    elif who == "plain":
        client.force_login(UserFactory())
    elif who == "inactive-staff":
        client.force_login(StaffUserFactory(is_active=False))
    urls = [
        "/admin/",
        CHANGELIST,
        EXPORT,
        detail_url(world.calls["t1"].pk),
        "/admin/accounts/apikey/",
    ]

    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/"), url
    assert not AccessRecord.objects.exists()


def test_staff_without_the_view_permission_cannot_list_or_export_calls(client, world):
    client.force_login(StaffUserFactory(permissions=["accounts.view_account"]))

    assert client.get(CHANGELIST).status_code == 403
    response = client.get(EXPORT)

    assert response.status_code == 403
    assert b"req-t1" not in response.content
    assert not AccessRecord.objects.exists()


def test_staff_see_every_account(staff_client, world):
    rows = result_rows(get_list(staff_client))

    assert {row["account"] for row in rows} == {"Acme Robotics", "Globex"}


# --- API keys ---------------------------------------------------------------------------


def table_rows(model) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")
        return cursor.fetchall()


def test_a_key_added_in_the_admin_is_shown_once_and_stored_as_prefix_and_hash(
    superuser_client, world
):
    response = superuser_client.post(
        "/admin/accounts/apikey/add/",
        {"account": world.a.pk, "name": "new-from-admin", "group": world.vip.pk, "_save": "Save"},
        follow=True,
    )

    assert response.status_code == 200
    shown = [text for _, text in messages_on_page(response)]
    [secret] = [
        match.group(1) for text in shown if (match := re.search(r"The new key is (\S+) ", text))
    ]
    key = ApiKey.objects.get(account=world.a, name="new-from-admin")
    assert secret.startswith("sk-")
    assert len(secret) > ApiKey.PREFIX_LENGTH
    assert key.prefix == secret[: ApiKey.PREFIX_LENGTH]
    assert key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert key.group == world.vip
    for model in (ApiKey, LogEntry):
        for row in table_rows(model):
            assert all(secret not in str(value) for value in row), model

    listing = superuser_client.get("/admin/accounts/apikey/")
    assert listing.status_code == 200
    assert key.prefix in page(listing)
    assert secret not in page(listing)
    change = superuser_client.get(f"/admin/accounts/apikey/{key.pk}/change/")
    assert change.status_code == 200
    assert secret not in page(change)
    assert key.prefix in page(change)


def test_the_key_list_never_shows_a_full_key(superuser_client, world):
    listing = superuser_client.get("/admin/accounts/apikey/")

    assert listing.status_code == 200
    html = page(listing)
    for key in world.keys.values():
        assert key.prefix in html
        assert key.secret not in html
        assert key.secret_hash not in html


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"model": "gpt-4o-mini", "status": "client_error"},
        {"created_at__year": "2026", "created_at__month": "3", "created_at__day": "10"},
    ],
)
def test_the_fast_rows_are_the_html_djangos_own_result_list_draws(staff_client, world, params):
    """The list's rows come from call_result_list; Django's items_for_result
    must give the same cells for the same page (links with the preserved
    filters, classes, escaping, empty values, slow marks)."""
    from django.contrib.admin.templatetags.admin_list import items_for_result

    from logs.templatetags.call_admin import call_rows

    odd = rich_call(world, error_reason='<b>"quoted" & odd</b>', status_code=400)
    response = get_list(staff_client, params)
    cl = response.context["cl"]
    assert cl.result_list

    ours = [str(row) for row in call_rows(cl)]
    djangos = ["".join(items_for_result(cl, call, None)) for call in cl.result_list]

    assert ours == djangos
    if odd in cl.result_list:
        assert "&lt;b&gt;&quot;quoted&quot; &amp; odd&lt;/b&gt;" in "".join(ours)
