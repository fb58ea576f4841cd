"""The ingest service, as a gateway (or import_calls) sees it.

A refused batch writes nothing at all and says which record and which field
is wrong; an accepted one is stored exactly, redacted and capped; a replay of
the same record is harmless.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection, connections, transaction
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import revoke_api_key
from logs.ingest import service as ingest_service
from logs.ingest.errors import IngestError, RecordError
from logs.ingest.service import ingest_calls
from logs.models import AccountModel, CallPayload, CallRecord, HourlyCallRollup, PendingRollupDelta
from logs.read.totals import call_totals
from logs.retention.partitions import ensure_partitions, month_of, partition_name, partitions
from tests.clock import at_instants
from tests.factories import (
    OMIT,
    ApiKeyFactory,
    CallRecordFactory,
    GroupFactory,
    fold_rollups,
    make_call,
    make_calls,
    record_dict,
)

pytestmark = pytest.mark.django_db

# The fields a record cannot do without: as docs/ingest-format.md lists them, and
# the cost, which is refused by name when absent unless the price list gives it.
REQUIRED = (
    "request_id",
    "created_at",
    "api_key",
    "call_type",
    "model",
    "status_code",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "usage",
    "cost",
)


# --- helpers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What ingest may write: the row count of every table of the logs app
    (calls, payloads, models and groups seen, rollups, …), the rollups'
    contents and each key's last use."""

    counts: dict[str, int]
    rollups: list[dict]
    pending: list[dict]
    last_used: dict[int, datetime | None]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(
            counts={
                model._meta.label: model.objects.count()
                for model in apps.get_app_config("logs").get_models()
            },
            rollups=list(HourlyCallRollup.objects.order_by("pk").values()),
            pending=list(PendingRollupDelta.objects.order_by("pk").values()),
            last_used=dict(ApiKey.objects.values_list("pk", "last_used_at")),
        )


def test_the_snapshot_sees_everything_an_ingest_writes(api_key):
    # Guard for ``refused``: "nothing written" is only as good as what it compares.
    before = Snapshot.take()

    make_call(api_key)

    after = Snapshot.take()
    changed = {label for label, count in after.counts.items() if count != before.counts[label]}
    assert {
        "logs.CallRecord",
        "logs.CallPayload",
        "logs.AccountModel",
        "logs.PendingRollupDelta",
    } <= changed
    assert after.pending != before.pending

    fold_rollups()  # what a refused batch must not have left to fold either

    folded = Snapshot.take()
    assert folded.rollups != before.rollups
    assert folded.last_used[api_key.pk] != before.last_used[api_key.pk]


def refused(records) -> list[RecordError]:
    """Ingest ``records``, expect a refusal that wrote nothing; return its errors."""
    before = Snapshot.take()
    with pytest.raises(IngestError) as caught:
        ingest_calls(records)
    assert Snapshot.take() == before, "a refused batch must write nothing"
    assert caught.value.errors, "a refusal must say what is wrong"
    return caught.value.errors


def where(errors: list[RecordError]) -> set[tuple[int | None, str]]:
    return {(error.index, error.field) for error in errors}


def refused_one(api_key, /, **overrides) -> list[RecordError]:
    return refused([record_dict(api_key, **overrides)])


def assert_refused_field(api_key, field: str, /, **overrides) -> list[RecordError]:
    errors = refused_one(api_key, **overrides)
    assert where(errors) == {(0, field)}, errors
    return errors


def stored(record: dict) -> CallRecord:
    return CallRecord.objects.get(request_id=record["request_id"])


# --- what an accepted record becomes ----------------------------------------------------


@at_instants("midnight UTC", "Berlin, 1 min after spring forward")
def test_a_valid_record_is_stored_as_sent(api_key, clock):
    """An hour before midnight (the day before) and before a DST change."""
    created_at = (clock.now - timedelta(hours=1)).replace(microsecond=123000)
    record = record_dict(
        api_key,
        created_at=created_at,
        model="gpt-4o",
        endpoint="/v1/chat/completions",
        stream=True,
        status_code=200,
        duration_ms=2140,
        ttft_ms=380,
        input_tokens=812,
        output_tokens=143,
        usage="477.5",
        cost="0.0002076",
        client_ip="2001:db8::7",
        upstream="azure-eastus-2",
    )

    result = ingest_calls([record])

    call = stored(record)
    assert (result.created, result.duplicates, result.created_ids) == (1, 0, [call.pk])
    assert call.created_at == created_at
    assert call.account_id == api_key.account_id
    assert call.api_key_id == api_key.pk
    assert call.model == "gpt-4o"
    assert call.endpoint == "/v1/chat/completions"
    assert call.is_stream is True
    assert (call.status_code, call.duration_ms, call.ttft_ms) == (200, 2140, 380)
    assert (call.input_tokens, call.output_tokens) == (812, 143)
    assert call.usage == Decimal("477.5")
    assert call.cost == Decimal("0.0002076")
    assert call.client_ip == "2001:db8::7"
    assert call.upstream == "azure-eastus-2"
    assert json.loads(call.payload.request_body) == record["request"]["body"]
    assert json.loads(call.payload.response) == record["response"]


def test_a_time_with_an_offset_is_stored_as_the_same_instant(api_key):
    local = datetime(2024, 5, 1, 11, 30, tzinfo=dt_timezone(timedelta(hours=2)))
    record = record_dict(api_key, created_at=local.isoformat())

    ingest_calls([record])

    assert stored(record).created_at == local
    assert stored(record).created_at.astimezone(UTC).hour == 9


def test_zulu_time_is_accepted(api_key):
    record = record_dict(api_key, created_at="2024-05-01T09:30:00.218Z")

    ingest_calls([record])

    assert stored(record).created_at == datetime(2024, 5, 1, 9, 30, 0, 218000, tzinfo=UTC)


@pytest.mark.parametrize(("given_total", "expected_total"), [(OMIT, 950), (950, 950), (None, 950)])
def test_total_tokens_is_stored_as_input_plus_output(api_key, given_total, expected_total):
    record = record_dict(api_key, input_tokens=800, output_tokens=150, total_tokens=given_total)

    ingest_calls([record])

    call = stored(record)
    assert call.total_tokens == call.input_tokens + call.output_tokens == expected_total


def test_the_group_defaults_to_the_keys_group(api_key):
    record = record_dict(api_key, group=OMIT)

    ingest_calls([record])

    assert stored(record).group_id == api_key.group_id


def test_a_group_given_by_name_overrides_the_keys_group(api_key):
    vip = GroupFactory(name="vip")
    record = record_dict(api_key, group="vip")

    ingest_calls([record])

    assert stored(record).group_id == vip.pk != api_key.group_id


def test_the_call_keeps_its_group_when_the_key_moves_to_another(api_key):
    first = make_call(api_key)
    original_group = api_key.group_id
    api_key.group = GroupFactory(name="vip")
    api_key.save()

    later = make_call(api_key)

    assert CallRecord.objects.get(pk=first.pk).group_id == original_group
    assert later.group_id == api_key.group_id


def test_the_error_reason_is_taken_from_the_error_object(api_key):
    record = record_dict(
        api_key,
        status_code=429,
        error={"type": "rate_limit_exceeded", "message": "Rate limit reached for gpt-4o."},
    )

    ingest_calls([record])

    call = stored(record)
    assert call.error_reason == "rate_limit_exceeded"
    assert json.loads(call.payload.error_detail) == record["error"]


def test_a_revoked_key_still_takes_calls_made_before_its_revocation(api_key):
    revoke_api_key(api_key)
    revoked_at = ApiKey.objects.get(pk=api_key.pk).revoked_at
    record = record_dict(api_key, created_at=revoked_at - timedelta(seconds=1))

    result = ingest_calls([record])

    assert result.created == 1
    assert stored(record).api_key_id == api_key.pk


@at_instants()
def test_a_time_a_little_ahead_of_the_clock_is_accepted(api_key, clock):
    """At every time-sensitive instant: two minutes ahead may be the next hour,
    day, month (a partition not made yet on PostgreSQL) or the other side of a
    DST change."""
    # Gateways' clocks drift: a few minutes ahead is not "the future".
    record = record_dict(api_key, created_at=clock.now + timedelta(minutes=2))

    assert ingest_calls([record]).created == 1
    assert stored(record).created_at == clock.now + timedelta(minutes=2)


def test_a_batch_at_the_limit_is_accepted(api_key, settings):
    settings.USAGELOGS_INGEST_MAX_BATCH = 3

    result = ingest_calls([record_dict(api_key) for _ in range(3)])

    assert result.created == 3


def test_the_call_factories_go_through_the_ingest_service(api_key):
    built = CallRecordFactory.build(api_key=api_key, model="factory-model")
    made = CallRecordFactory(api_key=api_key, model="factory-model", usage="0.25")
    several = make_calls(api_key, 3, call_type="embedding")

    assert isinstance(built, dict) and built["api_key"] == api_key.prefix
    assert not CallRecord.objects.filter(request_id=built["request_id"]).exists()
    assert ingest_calls([built]).created == 1
    assert made.usage == Decimal("0.25") and made.payload.request_body
    assert [call.call_type for call in several] == ["embedding"] * 3
    assert AccountModel.objects.filter(model="factory-model").count() == 1
    fold_rollups()
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None


# --- every refusal names the record and the field, and writes nothing ------------------


@pytest.mark.parametrize("field", REQUIRED)
def test_a_missing_required_field_is_refused(api_key, field):
    assert_refused_field(api_key, field, **{field: OMIT})


@pytest.mark.parametrize("field", REQUIRED)
def test_a_null_required_field_is_refused(api_key, field):
    assert_refused_field(api_key, field, **{field: None})


def test_every_missing_field_of_a_record_is_reported():
    errors = refused([{"model": "gpt-4o"}])

    # Without a cost the price list is asked, once the record is otherwise valid.
    assert where(errors) == {(0, field) for field in REQUIRED if field not in ("model", "cost")}


@pytest.mark.parametrize("field", ["input_token", "prompt", "headers", "Model"])
def test_an_unknown_field_is_refused(api_key, field):
    assert_refused_field(api_key, field, **{field: 1})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_tokens", True),
        ("output_tokens", False),
        ("input_tokens", "120"),
        ("output_tokens", 30.0),
        ("input_tokens", 1.5),
        ("total_tokens", 150.0),
        ("status_code", "200"),
        ("status_code", True),
        ("duration_ms", "1500"),
        ("duration_ms", 1500.5),
        ("ttft_ms", "250"),
        ("stream", "true"),
        ("stream", 1),
        ("model", 4),
        ("model", ["gpt-4o"]),
        ("request_id", 123),
        ("api_key", 123),
        ("call_type", "chat-completion"),
        ("call_type", "CHAT"),
        ("endpoint", 5),
        ("upstream", {"name": "azure"}),
        ("error_reason", 429),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(api_key, field, value):
    assert_refused_field(api_key, field, **{field: value})


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens", "duration_ms", "ttft_ms"])
def test_a_negative_count_is_refused(api_key, field):
    assert_refused_field(api_key, field, **{field: -1})


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens"])
def test_a_token_count_beyond_32_bits_is_refused(api_key, field):
    assert_refused_field(api_key, field, **{field: 2**31})


@pytest.mark.parametrize("total", [949, 951, 0])
def test_total_tokens_that_is_not_the_sum_is_refused(api_key, total):
    errors = assert_refused_field(
        api_key, "total_tokens", input_tokens=800, output_tokens=150, total_tokens=total
    )
    assert "950" in errors[0].message


@pytest.mark.parametrize("status", [0, 99, 600, 1000])
def test_a_status_code_out_of_range_is_refused(api_key, status):
    assert_refused_field(api_key, "status_code", status_code=status)


@pytest.mark.parametrize("status", [100, 599])
def test_status_codes_at_the_edges_of_the_range_are_accepted(api_key, status):
    record = record_dict(api_key, status_code=status)

    ingest_calls([record])

    assert stored(record).status_code == status


def test_a_first_token_time_after_the_end_of_the_call_is_refused(api_key):
    assert_refused_field(api_key, "ttft_ms", duration_ms=1000, ttft_ms=1001)


def test_a_first_token_time_equal_to_the_duration_is_accepted(api_key):
    record = record_dict(api_key, duration_ms=1000, ttft_ms=1000)

    assert ingest_calls([record]).created == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("usage", "-0.1"),
        ("cost", "-0.00000001"),
        ("usage", -1),
        ("usage", "0.0000001"),  # 7 places, usage keeps 6
        ("cost", "0.000000001"),  # 9 places, cost keeps 8
        ("usage", 1e-7),
        ("usage", "NaN"),
        ("cost", "nan"),
        ("usage", "sNaN"),
        ("usage", "Infinity"),
        ("cost", "-Infinity"),
        ("usage", math.nan),
        ("cost", math.inf),
        ("usage", "1e9"),  # usage is below 10**9
        ("cost", "1000000"),  # cost is below 10**6
        ("usage", 1e300),
        ("usage", "12,5"),
        ("usage", "one"),
        ("cost", ""),
        ("cost", True),
        ("usage", [1]),
        ("usage", {"value": 1}),
    ],
)
def test_a_bad_decimal_is_refused(api_key, field, value):
    assert_refused_field(api_key, field, **{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # 31 and 36 places, more digits than Decimal's default precision of 28:
        # refused like any other excess place, not silently rounded to 0.1 / 1E-8.
        ("usage", "0.1" + "0" * 29 + "1"),
        ("cost", "0.00000001" + "0" * 27 + "1"),
    ],
)
def test_a_decimal_with_more_places_than_the_context_precision_is_refused(api_key, field, value):
    assert_refused_field(api_key, field, **{field: value})


@pytest.mark.parametrize(
    ("usage", "cost"),
    [
        ("999999999.999999", "999999.99999999"),  # the largest values accepted
        ("0.000001", "0.00000001"),  # the smallest steps
        ("0", "0"),
        ("1.500000", "2.10000000"),  # trailing zeros are not extra places
    ],
)
def test_decimals_are_stored_exactly(api_key, usage, cost):
    record = record_dict(api_key, usage=usage, cost=cost)

    ingest_calls([record])

    call = stored(record)
    assert call.usage == Decimal(usage)
    assert call.cost == Decimal(cost)


def test_a_json_number_is_read_by_its_shortest_decimal_form(api_key):
    record = record_dict(api_key, usage=0.1, cost=0.00000003)

    ingest_calls([record])

    assert stored(record).usage == Decimal("0.1")
    assert stored(record).cost == Decimal("0.00000003")


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-01T10:00:00",  # no zone
        "2024-05-01 10:00:00.123",  # no zone
        datetime(2024, 5, 1, 10, 0),  # naive
        "2024-05-01",  # a date is not a time
    ],
)
def test_a_time_without_a_zone_is_refused(api_key, value):
    errors = assert_refused_field(api_key, "created_at", created_at=value)
    assert "zone" in errors[0].message


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2024-13-01T00:00:00Z", "2024-05-01T25:00:00Z", "", 1714557600, ["2024"]],
)
def test_a_malformed_time_is_refused(api_key, value):
    assert_refused_field(api_key, "created_at", created_at=value)


@pytest.mark.parametrize("offset", [timedelta(minutes=11), timedelta(hours=1), timedelta(days=365)])
@at_instants(
    "3 s before midnight UTC",
    "last minute of November",
    "last minute of Feb 29",
    "Berlin, 1 min before fall back",
)
def test_a_time_in_the_future_is_refused(api_key, clock, offset):
    """Just before midnight, a month's end, the end of Feb 29 (a year on is
    Feb 28 or Mar 1) and a DST change: the future is counted from the instant."""
    errors = assert_refused_field(api_key, "created_at", created_at=clock.now + offset)
    assert "future" in errors[0].message


def test_a_time_before_2000_is_refused(api_key):
    assert_refused_field(api_key, "created_at", created_at="1999-12-31T23:59:59Z")


def test_an_unknown_key_prefix_is_refused(api_key):
    unknown = "sk-" + "0" * (ApiKey.PREFIX_LENGTH - 3)
    assert not ApiKey.objects.filter(prefix=unknown).exists()

    errors = assert_refused_field(api_key, "api_key", api_key=unknown)

    assert unknown in errors[0].message


def test_the_full_key_instead_of_its_prefix_is_refused_without_echoing_it(api_key):
    errors = assert_refused_field(api_key, "api_key", api_key=api_key.secret)

    assert api_key.secret not in str(errors)
    assert "prefix" in errors[0].message


def test_a_call_after_the_keys_revocation_is_refused(api_key):
    revoke_api_key(api_key)
    revoked_at = ApiKey.objects.get(pk=api_key.pk).revoked_at

    errors = assert_refused_field(api_key, "api_key", created_at=revoked_at + timedelta(seconds=1))

    assert "revoked" in errors[0].message


def test_an_unknown_group_is_refused(api_key):
    errors = assert_refused_field(api_key, "group", group="no-such-group")

    assert "no-such-group" in errors[0].message


@pytest.mark.parametrize(
    "value", ["999.1.1.1", "localhost", "203.0.113", "2001:db8:::1", "", 3405803783, ["1.2.3.4"]]
)
def test_a_bad_client_ip_is_refused(api_key, value):
    assert_refused_field(api_key, "client_ip", client_ip=value)


@pytest.mark.parametrize("value", ["GET /v1/chat", ["params"], 42, True])
def test_a_request_that_is_not_an_object_is_refused(api_key, value):
    assert_refused_field(api_key, "request", request=value)


@pytest.mark.parametrize("value", ["", [], 0, False])
def test_an_empty_request_that_is_not_an_object_is_refused_too(api_key, value):
    # docs/ingest-format.md: `request` is an object. An empty string or list is
    # not one, and is refused like a non-empty one.
    assert_refused_field(api_key, "request", request=value)


@pytest.mark.parametrize("part", ["params", "headers"])
@pytest.mark.parametrize("value", ["a=1&b=2", ["Authorization: x"], 7])
def test_request_params_or_headers_that_are_not_an_object_are_refused(api_key, part, value):
    assert_refused_field(api_key, f"request.{part}", request={part: value})


def test_an_unknown_request_part_is_refused(api_key):
    assert_refused_field(api_key, "request.query", request={"body": {}, "query": {"q": 1}})


@pytest.mark.parametrize("value", ["an error", ["oops"], 500])
def test_an_error_that_is_not_an_object_is_refused(api_key, value):
    assert_refused_field(api_key, "error", error=value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("request_id", "req 1"),
        ("request_id", "r" * 129),
        ("request_id", "   "),
        ("model", ""),
        ("model", "m" * 129),
        ("endpoint", "/" * 256),
        ("upstream", "u" * 129),
        ("error_reason", "e" * 256),
    ],
)
def test_bad_text_is_refused(api_key, field, value):
    assert_refused_field(api_key, field, **{field: value})


def test_a_record_that_is_not_an_object_is_refused(api_key):
    errors = refused([record_dict(api_key), "not a record", [1, 2]])

    assert where(errors) == {(1, ""), (2, "")}


def test_an_empty_batch_is_refused():
    errors = refused([])

    assert where(errors) == {(None, "")}


@pytest.mark.parametrize("batch", [{"request_id": "r1"}, "[]", b"[]", None, 7])
def test_a_batch_that_is_not_a_list_is_refused(batch):
    errors = refused(batch)

    assert where(errors) == {(None, "")}


def test_a_batch_over_the_limit_is_refused(api_key, settings):
    settings.USAGELOGS_INGEST_MAX_BATCH = 3

    errors = refused([record_dict(api_key) for _ in range(4)])

    assert where(errors) == {(None, "")}
    assert "3" in errors[0].message and "4" in errors[0].message


def test_one_bad_record_among_good_ones_refuses_the_whole_batch(api_key):
    batch = [record_dict(api_key) for _ in range(5)]
    batch[3]["total_tokens"] = 1

    errors = refused(batch)

    assert where(errors) == {(3, "total_tokens")}


def test_every_bad_record_of_a_batch_is_reported_by_index(api_key):
    batch = [record_dict(api_key) for _ in range(6)]
    batch[1]["status_code"] = 99
    batch[2]["group"] = "no-such-group"
    batch[4]["usage"] = "-1"
    batch[4]["created_at"] = "2024-05-01T10:00:00"
    batch[5]["api_key"] = "sk-000000000"

    errors = refused(batch)

    assert where(errors) == {
        (1, "status_code"),
        (2, "group"),
        (4, "usage"),
        (4, "created_at"),
        (5, "api_key"),
    }
    assert [error.index for error in errors] == sorted(error.index for error in errors)


def test_the_refusal_message_names_the_first_problem_and_counts_the_rest(api_key):
    batch = [record_dict(api_key) for _ in range(3)]
    batch[1]["status_code"] = 99
    batch[2]["ttft_ms"] = -5

    with pytest.raises(IngestError) as caught:
        ingest_calls(batch)

    assert str(caught.value).startswith("record 1, status_code: ")
    assert "(and 1 more)" in str(caught.value)
    assert caught.value.errors[0].as_dict()["index"] == 1


# --- idempotency ------------------------------------------------------------------------


def test_sending_the_same_record_again_changes_nothing(api_key):
    record = record_dict(api_key)
    ingest_calls([record])
    first = CallRecord.objects.values().get(request_id=record["request_id"])
    payload = CallPayload.objects.values().get(call_id=first["id"])
    before = Snapshot.take()

    result = ingest_calls([dict(record)])

    assert (result.created, result.duplicates, result.created_ids) == (0, 1, [])
    assert Snapshot.take() == before
    assert CallRecord.objects.values().get(request_id=record["request_id"]) == first
    assert CallPayload.objects.values().get(call_id=first["id"]) == payload


def test_a_replay_written_differently_but_meaning_the_same_is_a_duplicate(api_key):
    moment = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    record = record_dict(api_key, created_at="2024-05-01T09:30:00Z", usage="0.5", cost=0.0001)
    ingest_calls([record])

    replay = {
        **record,
        "created_at": moment.astimezone(dt_timezone(timedelta(hours=2))).isoformat(),
        "usage": "0.500000",
        "cost": "0.00010000",
        "group": api_key.group.name,
    }
    result = ingest_calls([replay])

    assert (result.created, result.duplicates) == (0, 1)


def test_a_replay_after_the_key_was_revoked_is_still_a_duplicate(api_key):
    record = record_dict(api_key)
    ingest_calls([record])
    revoke_api_key(api_key)

    result = ingest_calls([record])

    assert (result.created, result.duplicates) == (0, 1)


def test_a_replay_after_the_key_moved_to_another_group_is_still_a_duplicate(api_key):
    # "A failed or interrupted upload can simply be sent again": the record is
    # the same, so moving the key meanwhile must not turn it into a conflict.
    record = record_dict(api_key, group=OMIT)
    ingest_calls([record])
    original_group = stored(record).group_id
    api_key.group = GroupFactory(name="vip")
    api_key.save()

    result = ingest_calls([record])

    assert (result.created, result.duplicates) == (0, 1)
    assert stored(record).group_id == original_group


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("output_tokens", 31),
        ("model", "gpt-4o"),
        ("usage", "0.6"),
        ("status_code", 500),
        ("response", {"choices": []}),
        ("created_at", "2024-05-01T09:30:00Z"),  # another month (another partition)
    ],
)
def test_the_same_request_id_with_different_content_is_refused(api_key, field, value):
    record = record_dict(api_key)
    ingest_calls([record])
    call_before = CallRecord.objects.values().get(request_id=record["request_id"])
    assert record[field] != value

    errors = refused([record_dict(api_key), {**record, field: value}])

    assert where(errors) == {(1, "request_id")}
    assert record["request_id"] in errors[0].message
    assert CallRecord.objects.values().get(request_id=record["request_id"]) == call_before


def test_a_conflicting_replay_is_reported_with_the_batchs_other_problems(api_key):
    record = record_dict(api_key)
    ingest_calls([record])
    bad = record_dict(api_key, status_code=42)

    errors = refused([bad, {**record, "model": "other"}])

    assert where(errors) == {(0, "status_code"), (1, "request_id")}


def test_a_record_repeated_inside_a_batch_is_stored_once(api_key):
    record = record_dict(api_key)
    other = record_dict(api_key)

    result = ingest_calls([record, other, dict(record)])

    assert (result.created, result.duplicates) == (2, 1)
    assert CallRecord.objects.filter(request_id=record["request_id"]).count() == 1


def test_a_request_id_repeated_inside_a_batch_with_different_content_is_refused(api_key):
    record = record_dict(api_key)

    errors = refused([record, record_dict(api_key), {**record, "output_tokens": 1}])

    assert where(errors) == {(2, "request_id")}


def test_a_batch_of_new_calls_and_replays_stores_only_the_new(api_key):
    old = [record_dict(api_key) for _ in range(2)]
    ingest_calls(old)
    new = [record_dict(api_key) for _ in range(3)]

    result = ingest_calls([old[0], *new, old[1]])

    assert (result.created, result.duplicates) == (3, 2)
    assert CallRecord.objects.count() == 5


def test_a_request_id_is_unique_per_account_not_across_accounts(api_key):
    # Request ids are the gateway tenant's identifiers: the same one sent for
    # another account is another call, even with other content.
    other_key = ApiKeyFactory()
    assert other_key.account_id != api_key.account_id
    record = record_dict(api_key)
    ingest_calls([record])
    theirs = {**record, "api_key": other_key.prefix, "model": "gpt-4o", "output_tokens": 7}

    result = ingest_calls([theirs])

    assert (result.created, result.duplicates) == (1, 0)
    calls = CallRecord.objects.filter(request_id=record["request_id"]).order_by("pk")
    assert [(c.account_id, c.model, c.output_tokens) for c in calls] == [
        (api_key.account_id, "gpt-4o-mini", 30),
        (other_key.account_id, "gpt-4o", 7),
    ]
    # Each payload belongs to its call's account.
    assert [CallPayload.objects.get(call=c).account_id for c in calls] == [
        api_key.account_id,
        other_key.account_id,
    ]


def test_each_account_replays_its_own_call_of_a_shared_request_id(api_key):
    other_key = ApiKeyFactory()
    ours = record_dict(api_key)
    theirs = {**ours, "api_key": other_key.prefix, "model": "gpt-4o"}

    first = ingest_calls([ours, theirs])
    again = ingest_calls([theirs, ours])

    assert (first.created, first.duplicates) == (2, 0)
    assert (again.created, again.duplicates) == (0, 2)
    assert CallRecord.objects.filter(request_id=ours["request_id"]).count() == 2


def test_a_conflicting_replay_is_judged_within_its_own_account(api_key):
    other_key = ApiKeyFactory()
    ours = record_dict(api_key)
    ingest_calls([ours, {**ours, "api_key": other_key.prefix}])

    errors = refused([{**ours, "api_key": other_key.prefix, "output_tokens": 1}])

    assert where(errors) == {(0, "request_id")}
    assert CallRecord.objects.filter(request_id=ours["request_id"]).count() == 2


def race(
    monkeypatch, first: list[dict], second: list[dict], finished: list[int] | None = None
) -> list:
    """Ingest two batches from two threads (each with its own connection) so
    that they overlap in the worst place.

    The first writer pauses for a moment inside its storing transaction, right
    after its replay check; the second starts exactly then. Without
    serialisation the second would also judge its calls new. Returns each
    writer's IngestResult, or the exception it raised. With ``finished``, the
    first pauses until the second is done instead (for at most 20 s), and
    ``finished`` receives the writers' positions in the order they ended.
    """
    real_judge = ingest_service.judge_replays
    first_is_storing = threading.Event()
    second_is_done = threading.Event()
    threads: list[threading.Thread] = []

    def slow_judge(resolved):
        verdict = real_judge(resolved)
        if connection.in_atomic_block and threading.current_thread() is threads[0]:
            first_is_storing.set()
            if finished is None:
                time.sleep(0.3)
            else:
                second_is_done.wait(timeout=20)
        return verdict

    monkeypatch.setattr(ingest_service, "judge_replays", slow_judge)
    batches = (first, second)
    outcomes: list = [None, None]

    def writer(position: int) -> None:
        try:
            if position == 1:
                assert first_is_storing.wait(timeout=10), "the first writer never stored"
            outcomes[position] = ingest_calls(batches[position])
        except Exception as error:  # reported by the test's assertions
            outcomes[position] = error
        finally:
            first_is_storing.set()
            if finished is not None:
                finished.append(position)
            if position == 1:
                second_is_done.set()
            connections.close_all()

    threads.extend(threading.Thread(target=writer, args=(n,)) for n in (0, 1))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a writer hung"
    return outcomes


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")  # replicas too, if set
def test_two_writers_of_the_same_call_store_it_once(monkeypatch):
    record = record_dict(ApiKeyFactory())

    outcomes = race(monkeypatch, [dict(record)], [dict(record)])

    assert all(isinstance(o, ingest_service.IngestResult) for o in outcomes), outcomes
    assert sorted((o.created, o.duplicates) for o in outcomes) == [(0, 1), (1, 0)]
    assert CallRecord.objects.filter(request_id=record["request_id"]).count() == 1
    assert CallPayload.objects.filter(call_id__in=CallRecord.objects.values("pk")).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")  # replicas too, if set
def test_two_writers_of_one_request_id_in_different_months_store_one(monkeypatch):
    # Partitioned by month, PostgreSQL can only enforce (request_id, account_id, created_at)
    # uniqueness; the ingest service must still refuse the second version.
    key = ApiKeyFactory()
    this_month, last_month = timezone.now() - timedelta(days=3), timezone.now() - timedelta(days=45)
    record = record_dict(key, created_at=this_month)
    other_month = {**record, "created_at": last_month.isoformat()}
    ensure_partitions({month_of(this_month), month_of(last_month)})

    outcomes = race(monkeypatch, [record], [other_month])

    refused = [o for o in outcomes if isinstance(o, IngestError)]
    stored = [o for o in outcomes if isinstance(o, ingest_service.IngestResult)]
    assert len(refused) + len(stored) == 2, outcomes
    assert [(o.created, o.duplicates) for o in stored] == [(1, 0)]
    assert [where(o.errors) for o in refused] == [{(0, "request_id")}]
    assert CallRecord.objects.filter(request_id=record["request_id"]).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")  # replicas too, if set
def test_batches_that_share_no_request_id_do_not_wait_for_each_other(monkeypatch):
    # Concurrent gateway clients: each batch is stored while the other is still
    # inside its transaction (they waited on shared lock buckets before).
    key = ApiKeyFactory()
    first = [record_dict(key) for _ in range(200)]
    second = [record_dict(key) for _ in range(200)]
    finished: list[int] = []

    outcomes = race(monkeypatch, first, second, finished=finished)

    assert [getattr(o, "created", o) for o in outcomes] == [200, 200]
    assert finished == [1, 0]
    assert CallRecord.objects.count() == 400


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")  # replicas too, if set
def test_a_batch_that_adds_a_month_partition_does_not_deadlock_a_batch_being_stored(monkeypatch):
    # import_calls loading an old month (its partitions are created on the way)
    # while the gateway keeps ingesting: both batches must be stored.
    existing = {p.name for p in partitions()}
    old_month = next(
        date(year, month, 1)
        for year in range(2001, 2020)
        for month in range(1, 13)
        if partition_name("logs_callrecord", date(year, month, 1)) not in existing
    )
    key = ApiKeyFactory()
    live = record_dict(key, created_at=timezone.now() - timedelta(minutes=1))
    backfill = record_dict(key, created_at=datetime.combine(old_month, time_of_day(12), UTC))

    outcomes = race(monkeypatch, [live], [backfill])

    assert [getattr(o, "created", o) for o in outcomes] == [1, 1]
    assert CallRecord.objects.count() == 2


# --- payload size caps ------------------------------------------------------------------


def longest_prefix_within(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 fits in ``max_bytes``."""
    size = 0
    for position, char in enumerate(text):
        size += len(char.encode())
        if size > max_bytes:
            return text[:position]
    return text


def json_text(value) -> str:
    """A part's text as stored: compact JSON, other than ASCII as it is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_a_big_part_is_cut_to_the_cap_and_says_so(api_key, settings):
    settings.USAGELOGS_PAYLOAD_MAX_BYTES = 200
    response = {"choices": [{"message": {"content": "word " * 200}}]}
    body = {"messages": [{"role": "user", "content": "short"}]}
    record = record_dict(api_key, response=response, request={"body": body})

    ingest_calls([record])

    payload = stored(record).payload
    full = json_text(response)
    assert len(payload.response.encode()) <= 200
    assert payload.response == longest_prefix_within(full, 200)
    assert payload.response_truncated is True
    assert payload.response_original_bytes == len(full.encode())
    # A part under the cap is untouched.
    assert json.loads(payload.request_body) == body
    assert payload.request_body_truncated is False
    assert payload.request_body_original_bytes is None


def test_a_part_exactly_at_the_cap_is_not_cut(api_key, settings):
    response = {"content": "x" * 50}
    settings.USAGELOGS_PAYLOAD_MAX_BYTES = len(json_text(response).encode())
    record = record_dict(api_key, response=response)

    ingest_calls([record])

    payload = stored(record).payload
    assert json.loads(payload.response) == response
    assert payload.response_truncated is False


@pytest.mark.parametrize("char", ["é", "中", "🙂"])
@pytest.mark.parametrize("cap", [101, 102, 103])
def test_a_cut_never_splits_a_multi_byte_character(api_key, settings, char, cap):
    settings.USAGELOGS_PAYLOAD_MAX_BYTES = cap
    response = {"content": char * 200}
    record = record_dict(api_key, response=response)

    ingest_calls([record])

    payload = stored(record).payload
    full = json_text(response)
    assert payload.response_truncated is True
    assert payload.response == longest_prefix_within(full, cap)
    assert full.startswith(payload.response)
    assert "\ufffd" not in payload.response
    assert cap - len(char.encode()) < len(payload.response.encode()) <= cap


def test_every_part_is_capped_on_its_own(api_key, settings):
    settings.USAGELOGS_PAYLOAD_MAX_BYTES = 64
    big = {"text": "y" * 500}
    record = record_dict(
        api_key,
        request={"params": big, "headers": {"X-Big": "h" * 500}, "body": big},
        response=big,
        error={"message": "m" * 500},
    )

    ingest_calls([record])

    payload = stored(record).payload
    for part in CallPayload.PARTS:
        assert len(getattr(payload, part).encode()) <= 64, part
        assert getattr(payload, f"{part}_truncated") is True, part
        assert getattr(payload, f"{part}_original_bytes") > 64, part


# --- side tables: models seen, keys' last use -------------------------------------------


def test_models_called_are_remembered_per_account():
    key_a, key_b = ApiKeyFactory(), ApiKeyFactory()
    t0 = timezone.now() - timedelta(hours=3)
    ingest_calls(
        [
            record_dict(key_a, model="gpt-4o", created_at=t0 + timedelta(minutes=5)),
            record_dict(key_a, model="gpt-4o", created_at=t0),
            record_dict(key_a, model="gpt-4o-mini", created_at=t0 + timedelta(minutes=1)),
            record_dict(key_b, model="gpt-4o", created_at=t0 + timedelta(minutes=2)),
        ]
    )

    rows = {(row.account_id, row.model): row.first_seen_at for row in AccountModel.objects.all()}
    assert rows == {
        (key_a.account_id, "gpt-4o"): t0,
        (key_a.account_id, "gpt-4o-mini"): t0 + timedelta(minutes=1),
        (key_b.account_id, "gpt-4o"): t0 + timedelta(minutes=2),
    }


def test_a_model_seen_again_adds_no_row(api_key):
    make_call(api_key, model="gpt-4o")
    make_call(api_key, model="gpt-4o")

    assert AccountModel.objects.filter(account_id=api_key.account_id).count() == 1


@at_instants("1 min after an hour", "midnight UTC")
def test_last_used_at_only_moves_forward(api_key, clock):
    t0 = clock.now - timedelta(hours=2)

    def last_used():
        fold_rollups()  # the folder moves it, from the calls it folds
        return ApiKey.objects.get(pk=api_key.pk).last_used_at

    assert last_used() is None
    make_call(api_key, created_at=t0)
    assert last_used() == t0
    make_call(api_key, created_at=t0 - timedelta(minutes=30))  # an older call, arriving late
    assert last_used() == t0
    make_call(api_key, created_at=t0 + timedelta(minutes=1))
    assert last_used() == t0 + timedelta(minutes=1)


def test_last_used_at_is_the_latest_call_of_a_batch_per_key():
    key, other = ApiKeyFactory(), ApiKeyFactory()
    t0 = timezone.now() - timedelta(hours=2)

    ingest_calls(
        [
            record_dict(key, created_at=t0 + timedelta(minutes=3)),
            record_dict(key, created_at=t0 + timedelta(minutes=9)),
            record_dict(other, created_at=t0),
            record_dict(key, created_at=t0),
        ]
    )
    fold_rollups()

    assert ApiKey.objects.get(pk=key.pk).last_used_at == t0 + timedelta(minutes=9)
    assert ApiKey.objects.get(pk=other.pk).last_used_at == t0


# --- exact money ------------------------------------------------------------------------


def test_a_thousand_tenths_sum_to_exactly_one_hundred(api_key):
    ingest_calls([record_dict(api_key, usage="0.1", cost="0.00000001") for _ in range(1000)])

    totals = call_totals(CallRecord.objects.all())

    assert totals.calls == 1000
    assert totals.usage == Decimal("0.1") * 1000 == Decimal("100")
    assert totals.cost == Decimal("0.00000001") * 1000
    assert isinstance(totals.usage, Decimal) and isinstance(totals.cost, Decimal)


def test_mixed_decimals_sum_exactly(api_key):
    usages = ["0.1", "0.2", "0.000001", "123.456789", "0.3", "999999.999999"] * 50
    costs = ["0.00000001", "0.1", "0.2", "0.3", "12.34567891", "0.00000009"] * 50
    ingest_calls(
        [record_dict(api_key, usage=u, cost=c) for u, c in zip(usages, costs, strict=True)]
    )

    totals = call_totals(CallRecord.objects.all())

    assert totals.usage == sum(map(Decimal, usages))
    assert totals.cost == sum(map(Decimal, costs))
    # The float sum of the same values is not exact; the stored sum must be.
    assert float(totals.usage) == pytest.approx(sum(map(float, usages)))


def test_json_numbers_sum_exactly_too(api_key):
    ingest_calls([record_dict(api_key, usage=0.1, cost=0.2) for _ in range(30)])

    totals = call_totals(CallRecord.objects.all())

    assert totals.usage == Decimal("3")
    assert totals.cost == Decimal("6")


@at_instants("midnight UTC", "last minute of November")
def test_many_calls_at_the_largest_accepted_values_can_be_ingested_and_summed(api_key, clock):
    # docs/ingest-format.md accepts usage below 10**9 and cost below 10**6 per
    # call; many such calls in one hour must not break ingest (hourly rollups)
    # or the totals (SUM of scaled 64-bit integers).
    usage, cost = "999999999.999999", "999999.99999999"
    moment = clock.now.replace(minute=30) - timedelta(hours=1)

    ingest_calls(
        [record_dict(api_key, usage=usage, cost=cost, created_at=moment) for _ in range(100)]
    )

    totals = call_totals(CallRecord.objects.all())
    assert totals.usage == Decimal(usage) * 100
    assert totals.cost == Decimal(cost) * 100


@pytest.mark.postgres
def test_usage_and_cost_are_integer_columns_on_postgresql():
    # Scaled integers, not floats: the exact sums above rest on this.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s AND column_name IN ('usage', 'cost')",
            [CallRecord._meta.db_table],
        )
        columns = dict(cursor.fetchall())

    assert columns == {"usage": "bigint", "cost": "bigint"}


# --- credentials never reach the database -----------------------------------------------


def all_stored_text() -> str:
    """Every value of every row of every table, read raw (no model, no conversion)."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks.extend(str(value) for row in cursor.fetchall() for value in row)
    return "\n".join(chunks)


def secret_part(api_key: ApiKey) -> str:
    """The part of the key that is not public (the prefix is shown in the admin)."""
    return api_key.secret[ApiKey.PREFIX_LENGTH :]


def test_a_full_key_anywhere_in_the_payload_is_stored_redacted(api_key, settings):
    secret = api_key.secret
    settings.USAGELOGS_PAYLOAD_MAX_BYTES = 4096
    record = record_dict(
        api_key,
        request={
            "headers": {
                "Authorization": f"Bearer {secret}",
                "x-api-key": secret,
                "User-Agent": "curl/8",
            },
            "params": {"api_key": secret, "max_tokens": 64},
            "body": {
                "messages": [
                    {"role": "user", "content": f"my key is {secret}, please keep it safe"},
                    {"role": "user", "content": [{"type": "text", "text": f"({secret})"}]},
                ],
                "metadata": {"config": {"openai": {"apiKey": secret}}},
            },
        },
        response={"choices": [{"message": {"content": f"You said: {secret}"}}]},
        status_code=401,
        error={"message": f"Incorrect API key provided: {secret}", "code": "invalid_api_key"},
        error_reason=OMIT,
    )

    ingest_calls([record])

    everything = all_stored_text()
    assert stored(record).payload.request_body  # the payload was stored...
    assert secret_part(api_key) not in everything  # ...without the key
    assert secret not in everything
    payload = stored(record).payload
    assert "curl/8" in payload.request_headers
    assert json.loads(payload.request_params)["max_tokens"] == 64


@pytest.mark.parametrize(
    ("field", "template"),
    [
        ("error_reason", "Incorrect API key provided: {secret}"),
        ("endpoint", "/v1/chat/completions?key={secret}"),
        ("upstream", "relay-{secret}"),
    ],
)
def test_a_full_key_in_a_text_field_of_the_call_is_not_stored(api_key, field, template):
    record = record_dict(api_key, **{field: template.format(secret=api_key.secret)})

    ingest_calls([record])

    assert secret_part(api_key) not in all_stored_text()


OPAQUE = "Opaque-Passw0rd-77"  # matches no key pattern: only the rules on its place catch it


@pytest.mark.parametrize(
    ("field", "value", "kept"),
    [
        ("endpoint", f"/v1/chat/completions?api_key={OPAQUE}&v=2", "/v1/chat/completions?api_key="),
        ("endpoint", f"/v1/embeddings?foo=1&access_token={OPAQUE}", "/v1/embeddings?foo=1&"),
        ("upstream", f"svc-user:{OPAQUE}@relay.internal:8443", "@relay.internal:8443"),
        ("upstream", f"https://svc-user:{OPAQUE}@relay.internal/v1", "https://"),
        ("error_reason", f"upstream said: BEARER {OPAQUE} is not valid", "upstream said: "),
        ("error_reason", f"rejected header Bearer%20{OPAQUE}", "rejected header "),
    ],
)
def test_a_credential_in_a_text_field_is_redacted_by_its_place(api_key, field, value, kept):
    record = record_dict(api_key, **{field: value})

    ingest_calls([record])

    assert OPAQUE not in all_stored_text()
    stored_value = getattr(stored(record), field)
    assert stored_value.startswith(kept) or kept in stored_value, stored_value
    assert "[REDACTED]" in stored_value


def test_credentials_by_name_spelling_and_format_are_not_stored(api_key):
    pem = (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA"
        + OPAQUE
        + "\n-----END RSA PRIVATE KEY-----"
    )
    record = record_dict(
        api_key,
        request={
            "headers": {"Authorisation": OPAQUE, "User-Agent": "curl/8"},
            "params": {"sessionid": OPAQUE, "pass": OPAQUE, "passcode": OPAQUE, "n": 2},
            "body": {"messages": [{"role": "user", "content": f"BEARER {OPAQUE}\n{pem}"}]},
        },
        response={"text": f"fetch https://bot:{OPAQUE}@example.com?api_key={OPAQUE}"},
    )

    ingest_calls([record])

    assert OPAQUE not in all_stored_text()
    payload = stored(record).payload
    assert json.loads(payload.request_headers) == {
        "Authorisation": "[REDACTED]",
        "User-Agent": "curl/8",
    }
    assert json.loads(payload.request_params)["n"] == 2


@pytest.mark.parametrize("field", ["request_id", "model"])
def test_a_full_key_as_request_id_or_model_is_refused_not_blurred(api_key, field):
    """These two identify the call (the idempotency key; what calls are grouped and
    priced by): redacting would merge distinct calls under "[REDACTED]", so a
    credential there is refused, naming the field, and nothing is written."""
    good = record_dict(api_key)
    bad = record_dict(api_key, **{field: api_key.secret})

    with pytest.raises(IngestError) as refused:
        ingest_calls([good, bad])

    assert [(e.index, e.field) for e in refused.value.errors] == [(1, field)]
    assert "looks like a credential" in refused.value.errors[0].message
    assert api_key.secret not in str(refused.value)
    assert not CallRecord.objects.exists()
    assert secret_part(api_key) not in all_stored_text()


@pytest.mark.parametrize("replayed_twice", [False, True])
def test_a_call_stored_between_the_check_and_the_insert_is_judged_again(
    monkeypatch, api_key, replayed_twice
):
    # Another writer stores the call after this batch's replay check: the insert
    # (COPY on PostgreSQL) hits the unique key, and the batch is judged again.
    stored = record_dict(api_key)
    new = record_dict(api_key)
    ingest_calls([stored])
    real_judge = ingest_service.judge_replays
    judged: list[int] = []

    def blind_first(resolved):
        judged.append(len(resolved))
        if len(judged) == 1:
            return list(resolved), 0, []  # as if the stored call were not there yet
        return real_judge(resolved)

    monkeypatch.setattr(ingest_service, "judge_replays", blind_first)
    batch = [new, stored, stored] if replayed_twice else [new, stored]

    result = ingest_calls(batch)

    assert len(judged) == 2
    assert (result.created, result.duplicates) == (1, len(batch) - 1)
    assert CallRecord.objects.filter(request_id=stored["request_id"]).count() == 1
    assert CallRecord.objects.filter(request_id=new["request_id"]).count() == 1
    assert CallPayload.objects.count() == 2
    fold_rollups()
    assert sum(HourlyCallRollup.objects.values_list("calls", flat=True)) == 2


def test_batches_in_one_transaction_add_to_the_rollups_once_each(api_key):
    with transaction.atomic():
        ingest_calls([record_dict(api_key) for _ in range(3)])
        ingest_calls([record_dict(api_key) for _ in range(2)])
    fold_rollups()

    assert sum(HourlyCallRollup.objects.values_list("calls", flat=True)) == 5
    for level in apps.get_app_config("logs").get_models():
        if level.__name__ in ("DailyCallRollup", "MonthlyCallRollup"):
            assert sum(level.objects.values_list("calls", flat=True)) == 5


# --- import_calls' batches: not waiting for the disk --------------------------------------


def test_a_batch_not_waiting_for_the_disk_is_stored_and_judged_the_same(api_key):
    first = record_dict(api_key, request_id="req-nowait-1")
    second = record_dict(api_key, request_id="req-nowait-2")

    result = ingest_calls([first, second, first], wait_for_disk=False)
    again = ingest_calls([second], wait_for_disk=False)

    assert (result.created, result.duplicates) == (2, 1)
    assert (again.created, again.duplicates) == (0, 1)
    assert sorted(CallRecord.objects.values_list("request_id", flat=True)) == [
        "req-nowait-1",
        "req-nowait-2",
    ]
    fold_rollups()
    assert sum(HourlyCallRollup.objects.values_list("calls", flat=True)) == 2
    with pytest.raises(IngestError) as refused:
        ingest_calls([dict(first, duration_ms=first["duration_ms"] + 1)], wait_for_disk=False)
    assert refused.value.errors[0].field == "request_id"
    assert CallRecord.objects.count() == 2


def test_a_replay_within_a_batch_with_other_content_is_refused(api_key):
    record = record_dict(api_key, request_id="req-twice")

    with pytest.raises(IngestError) as refused:
        ingest_calls([record, dict(record, output_tokens=record["output_tokens"] + 1)])

    assert [(e.index, e.field) for e in refused.value.errors] == [(1, "request_id")]
    assert not CallRecord.objects.exists()


@pytest.mark.django_db
def test_the_largest_token_counts_are_stored_with_their_total():
    """Each count fits in 32 bits, their sum does not: PostgreSQL added the two
    int columns of the total's check in 32 bits and answered a 500."""
    largest = 2**31 - 1
    record = record_dict(ApiKeyFactory(), input_tokens=largest, output_tokens=largest)
    record.pop("total_tokens", None)

    assert ingest_calls([record]).created == 1

    call = CallRecord.objects.get(request_id=record["request_id"])
    assert (call.input_tokens, call.output_tokens, call.total_tokens) == (
        largest,
        largest,
        2 * largest,
    )
