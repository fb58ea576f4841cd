"""POST /api/v1/calls/ingest/ as a gateway sees it: what is accepted, what is
refused (and that a refusal writes nothing), who may call it, and how fast."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import AccessToken
from accounts.services import create_access_token, revoke_access_token
from logs.models import AccountModel, CallPayload, CallRecord, HourlyCallRollup
from tests.api.helpers import (
    INGEST_URL,
    LIST_URL,
    STATS_URL,
    client,
    detail_url,
    service_user,
    session_client,
    token_client,
    token_for,
    walk,
)
from tests.factories import (
    AccountFactory,
    MembershipFactory,
    StaffUserFactory,
    SuperuserFactory,
    owner_of,
    record_dict,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway(ingest_token):
    """The client a gateway uses: a service user's ingest token."""
    return token_client(ingest_token)


def post(api, payload, *, content_type="application/json"):
    body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return api.post(INGEST_URL, body, content_type=content_type)


def stored() -> dict[str, int]:
    """Everything ingest writes, counted: a refused request must leave it unchanged."""
    return {
        "calls": CallRecord.objects.count(),
        "payloads": CallPayload.objects.count(),
        "rollups": HourlyCallRollup.objects.count(),
        "models": AccountModel.objects.count(),
    }


NOTHING = {"calls": 0, "payloads": 0, "rollups": 0, "models": 0}


def assert_refused(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert "created" not in body
    assert stored() == NOTHING
    return body


# --- accepted -----------------------------------------------------------------------------


def test_a_batch_is_created(gateway, api_key, support):
    records = [record_dict(api_key) for _ in range(3)]
    response = post(gateway, records)
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 3, "already_present": 0}
    listed = walk(session_client(support))
    assert sorted(row["request_id"] for row in listed) == sorted(r["request_id"] for r in records)
    assert {row["key_prefix"] for row in listed} == {api_key.prefix}


def test_an_accepted_batch_says_what_it_cost_the_server(gateway, api_key):
    """Server-Timing: the worker's CPU time for the batch and the whole time, in ms
    (bench/ingest_load.py reports the first as the ingest path's own cost)."""
    response = post(gateway, [record_dict(api_key) for _ in range(3)])
    assert response.status_code == 201
    timing = re.fullmatch(r"cpu;dur=([\d.]+), total;dur=([\d.]+)", response["Server-Timing"])
    assert timing, response["Server-Timing"]
    cpu, total = (float(value) for value in timing.groups())
    assert cpu > 0 and total > 0


def test_replaying_the_same_batch_changes_nothing(gateway, api_key):
    records = [record_dict(api_key) for _ in range(4)]
    assert post(gateway, records).json() == {"created": 4, "already_present": 0}
    before = stored()
    rollups = list(HourlyCallRollup.objects.values_list("calls", "usage", "cost"))

    response = post(gateway, records)
    assert response.status_code == 201
    assert response.json() == {"created": 0, "already_present": 4}
    assert stored() == before
    assert list(HourlyCallRollup.objects.values_list("calls", "usage", "cost")) == rollups


def test_a_batch_mixing_new_and_replayed_records(gateway, api_key):
    first = record_dict(api_key)
    assert post(gateway, [first]).status_code == 201
    second = record_dict(api_key)
    response = post(gateway, [first, second, second])
    assert response.status_code == 201
    assert response.json() == {"created": 1, "already_present": 2}
    assert CallRecord.objects.count() == 2


def test_a_replay_with_changed_content_is_refused_and_nothing_is_written(gateway, api_key):
    original = record_dict(api_key)
    assert post(gateway, [original]).status_code == 201
    before = stored()

    fresh = record_dict(api_key)
    changed = {**original, "output_tokens": original["output_tokens"] + 1}
    response = post(gateway, [fresh, changed])
    assert response.status_code == 400
    body = response.json()
    assert {"index": 1, "field": "request_id"} in [
        {"index": e["index"], "field": e["field"]} for e in body["errors"]
    ]
    assert original["request_id"] in body["detail"] or any(
        original["request_id"] in e["message"] for e in body["errors"]
    )
    assert stored() == before
    assert not CallRecord.objects.filter(request_id=fresh["request_id"]).exists()


def test_a_body_exactly_at_the_size_limit_is_accepted(gateway, api_key, settings):
    body = json.dumps([record_dict(api_key)])
    settings.USAGELOGS_INGEST_MAX_BODY_BYTES = len(body.encode())
    response = post(gateway, body)
    assert response.status_code == 201, response.content


def test_a_full_batch_of_ordinary_size_is_accepted(gateway, api_key, settings):
    """A few MB is far below USAGELOGS_INGEST_MAX_BODY_BYTES (32 MB by default);
    Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB, meant for forms) must not refuse it
    with an HTML "Bad Request" page."""
    assert settings.USAGELOGS_INGEST_MAX_BODY_BYTES >= 8 * 1024 * 1024
    records = [record_dict(api_key, response={"text": "x" * 200_000}) for _ in range(15)]
    body = json.dumps(records)
    assert 2_621_440 < len(body) < settings.USAGELOGS_INGEST_MAX_BODY_BYTES
    response = post(gateway, body)
    assert response.status_code == 201, response.content[:300]
    assert response.json() == {"created": 15, "already_present": 0}


# --- refused: nothing is written ----------------------------------------------------------


def test_one_bad_record_refuses_the_whole_batch(gateway, api_key):
    good = [record_dict(api_key) for _ in range(3)]
    bad = record_dict(api_key, total_tokens=1)
    also_bad = record_dict(api_key, call_type="telepathy")
    body = assert_refused(post(gateway, [good[0], bad, good[1], also_bad, good[2]]))
    problems = {(e["index"], e["field"]) for e in body["errors"]}
    assert problems == {(1, "total_tokens"), (3, "call_type")}
    assert body["detail"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "empty"),
        ({"request_id": "x"}, "list"),
        ("just a string", "list"),
        (42, "list"),
        (None, "list"),
    ],
    ids=["empty-list", "object", "string", "number", "null"],
)
def test_a_body_that_is_not_a_non_empty_list_is_refused(gateway, api_key, payload, message):
    body = assert_refused(post(gateway, json.dumps(payload)))
    assert message in body["detail"]
    assert body["errors"][0]["index"] is None


def test_more_records_than_the_batch_limit_is_refused(gateway, api_key, settings):
    settings.USAGELOGS_INGEST_MAX_BATCH = 3
    body = assert_refused(post(gateway, [record_dict(api_key) for _ in range(4)]))
    assert "at most 3" in body["detail"]
    assert post(gateway, [record_dict(api_key) for _ in range(3)]).status_code == 201


@pytest.mark.parametrize(
    "text", ['[{"request_id": "a",', "not json at all", "[1, 2,]", "[]]", "[NaN]"]
)
def test_invalid_json_is_refused(gateway, api_key, text):
    body = assert_refused(post(gateway, text))
    assert "detail" in body


def test_an_unreadable_body_is_answered_in_the_documented_error_shape(gateway, api_key):
    """Every 400 of the ingest is documented as {detail, errors: [{index, field,
    message}]}; a body that is not JSON (or not UTF-8) gets only {detail}."""
    for text in ("not json at all", b"\x90\xff[]"):
        body = assert_refused(post(gateway, text))
        assert isinstance(body.get("detail"), str), body
        assert isinstance(body.get("errors"), list) and body["errors"], body
        assert body["errors"][0]["index"] is None
        assert {"index", "field", "message"} <= set(body["errors"][0])


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "text/csv", "application/octet-stream"]
)
def test_a_body_that_is_not_json_by_its_content_type_is_refused(gateway, api_key, content_type):
    body = json.dumps([record_dict(api_key)])
    assert_refused(post(gateway, body, content_type=content_type), status=415)


def test_a_form_encoded_body_is_refused(gateway, api_key):
    record = record_dict(api_key)
    response = gateway.post(INGEST_URL, {"request_id": record["request_id"], "model": "x"})
    assert_refused(response, status=415)


@pytest.mark.parametrize("depth", [600, 5000])
def test_deeply_nested_json_is_refused_not_a_server_error(gateway, api_key, depth):
    """~600 levels parse fine but overflow the redaction's recursion; ~5000 overflow
    the JSON parser itself. Either way the sender made a bad request (400), the
    server did not fail (500)."""
    record = record_dict(api_key)
    text = json.dumps([record])
    nested = "[" * depth + "]" * depth
    text = text[: text.rindex("}")] + f', "error": {{"trace": {nested}}}' + "}]"
    assert len(text.encode()) < 64 * 1024
    response = post(gateway, text)
    assert response.status_code == 400, response.status_code
    assert "detail" in response.json()
    assert stored() == NOTHING


def test_a_body_above_the_size_limit_is_413_and_nothing_is_written(gateway, api_key, settings):
    body = json.dumps([record_dict(api_key) for _ in range(3)])
    settings.USAGELOGS_INGEST_MAX_BODY_BYTES = len(body.encode()) - 1
    body_json = assert_refused(post(gateway, body), status=413)
    assert str(len(body.encode())) in body_json["detail"]
    assert str(settings.USAGELOGS_INGEST_MAX_BODY_BYTES) in body_json["detail"]


# --- values the database cannot store: a 400 naming the record and field, never a 500 --------
#
# PostgreSQL text holds no NUL character and only valid Unicode (no lone surrogate, which
# JSON's "\ud800" escape can still spell); its inet type holds no IPv6 zone ("%eth0"). Each
# such value must be refused by validation (on SQLite as on PostgreSQL), not by the database
# halfway through a batch. ``post`` sends JSON written with ensure_ascii, so these travel
# as the escapes a gateway would send.

FIXED_TIME = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)

NUL = "\x00"
LONE_SURROGATE = "\ud800"


def assert_refused_at(response, index: int, field: str) -> dict:
    body = assert_refused(response)
    assert {"index": index, "field": field} in [
        {"index": e["index"], "field": e["field"]} for e in body["errors"]
    ], body
    return body


@pytest.mark.parametrize("bad", [NUL, LONE_SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(
    "field", ["request_id", "model", "error_reason", "endpoint", "upstream", "group", "api_key"]
)
def test_a_string_the_database_cannot_store_is_a_400_naming_the_field(
    gateway, api_key, vip_group, field, bad
):
    good = record_dict(
        api_key, created_at=FIXED_TIME, group="vip", error_reason="quota", upstream="azure-1"
    )
    value = {"api_key": api_key.prefix[:8], "group": "vip"}.get(field, good[field])
    spoiled = record_dict(api_key, created_at=FIXED_TIME, **{field: value[:3] + bad + value[3:]})

    body = assert_refused_at(post(gateway, [good, spoiled]), 1, field)

    message = next(e["message"] for e in body["errors"] if e["field"] == field)
    assert ("NUL" if bad == NUL else "surrogate") in message


@pytest.mark.parametrize("bad", [NUL, LONE_SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("source", ["message", "type", "reason"])
def test_an_error_text_that_becomes_the_reason_is_checked_too(gateway, api_key, source, bad):
    error = {source: f"upstream{bad} failed", "detail": "kept"}
    spoiled = record_dict(api_key, created_at=FIXED_TIME, status_code=502, error=error)

    assert_refused_at(post(gateway, [spoiled]), 0, f"error.{source}")


def test_a_nul_on_a_later_line_of_the_error_message_is_stored_escaped(gateway, api_key, support):
    """Only the first line of ``error.message`` becomes the reason; the whole object
    is kept as JSON text, where the NUL is the six characters \\u0000."""
    error = {"message": f"upstream failed\nat byte{NUL}0"}
    record = record_dict(api_key, created_at=FIXED_TIME, status_code=502, error=error)

    response = post(gateway, [record])

    assert response.status_code == 201, response.content
    call = CallRecord.objects.get(request_id=record["request_id"])
    assert call.error_reason == "upstream failed"
    assert session_client(support).get(detail_url(call.pk)).json()["error_detail"]["content"] == (
        error
    )


@pytest.mark.parametrize(
    ("where", "field"),
    [
        (lambda s: {"request": {"params": {"temperature": s}}}, "request.params.temperature"),
        (lambda s: {"request": {"headers": {f"X-Trace{s}": "1"}}}, "request.headers"),
        (
            lambda s: {"request": {"body": {"messages": [{"role": "user", "content": s}]}}},
            "request.body.messages[0].content",
        ),
        (lambda s: {"request": {"body": [s]}}, "request.body[0]"),
        (lambda s: {"response": {"choices": [{s: "x"}]}}, "response.choices[0]"),
        (lambda s: {"response": s}, "response"),
        (lambda s: {"error": {"detail": {"trace": s}}}, "error.detail.trace"),
    ],
    ids=["params", "header-name", "prompt", "body-list", "response-key", "response", "error"],
)
def test_a_lone_surrogate_in_a_payload_part_is_a_400_naming_the_path(
    gateway, api_key, where, field
):
    spoiled = record_dict(api_key, created_at=FIXED_TIME, **where(f"ab{LONE_SURROGATE}cd"))

    body = assert_refused_at(post(gateway, [record_dict(api_key), spoiled]), 1, field)

    assert "surrogate" in next(e["message"] for e in body["errors"] if e["field"] == field)


def test_a_surrogate_pair_is_an_ordinary_character(gateway, api_key, support):
    """JSON spells characters beyond the BMP as two escapes; together they are valid."""
    smile = "\U0001f642"
    record = record_dict(
        api_key,
        created_at=FIXED_TIME,
        model=f"model-{smile}",
        request={"body": {"content": f"hi {smile}", smile: 1}},
    )

    response = post(gateway, json.dumps([record]))  # ensure_ascii: "\ud83d\ude42"

    assert response.status_code == 201, response.content
    call = CallRecord.objects.get(request_id=record["request_id"])
    assert call.model == f"model-{smile}"
    detail = session_client(support).get(detail_url(call.pk)).json()
    assert detail["request_body"]["content"] == {"content": f"hi {smile}", smile: 1}


def test_a_nul_inside_a_payload_part_is_stored_as_json_text(gateway, api_key, support):
    """A payload part is stored as JSON text, where a NUL is written as the six
    characters \\u0000: storable (on PostgreSQL too) and read back as it came."""
    content = f"before{NUL}after"
    record = record_dict(
        api_key,
        created_at=FIXED_TIME,
        request={"body": {"messages": [{"role": "user", "content": content}], f"k{NUL}": 1}},
        response={"text": content},
    )

    response = post(gateway, [record])

    assert response.status_code == 201, response.content
    call = CallRecord.objects.get(request_id=record["request_id"])
    payload = CallPayload.objects.get(call=call)
    assert NUL not in payload.request_body and "\\u0000" in payload.request_body
    detail = session_client(support).get(detail_url(call.pk)).json()
    assert detail["request_body"]["content"] == record["request"]["body"]
    assert detail["response"]["content"] == {"text": content}


def test_an_unknown_field_with_a_lone_surrogate_is_named_readably(gateway, api_key):
    top = record_dict(api_key, created_at=FIXED_TIME, **{f"x{LONE_SURROGATE}": 1})
    inner = record_dict(api_key, created_at=FIXED_TIME)
    inner["request"]["extra" + LONE_SURROGATE] = 1

    response = post(gateway, [top, inner])

    body = assert_refused(response)
    fields = {(e["index"], e["field"]) for e in body["errors"]}
    assert fields == {(0, "x\\ud800"), (1, "request.extra\\ud800")}, fields
    response.content.decode("utf-8")  # the answer itself is valid UTF-8


@pytest.mark.postgres
def test_every_value_postgresql_cannot_store_is_refused_before_it_gets_there(gateway, api_key):
    """On PostgreSQL itself: these values would fail the insert (the premise), and a
    batch holding them is a 400 naming each record and field, with nothing written."""
    from django.db import DataError, connection, transaction

    with pytest.raises(DataError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT %s::text", [f"a{NUL}b"])
    with pytest.raises(DataError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT %s::inet", ["fe80::1%eth0"])

    batch = [
        record_dict(api_key, created_at=FIXED_TIME),
        record_dict(api_key, created_at=FIXED_TIME, request_id=f"req{NUL}1"),
        record_dict(api_key, created_at=FIXED_TIME, model=f"gpt{LONE_SURROGATE}"),
        record_dict(api_key, created_at=FIXED_TIME, status_code=500, error={"message": NUL}),
        record_dict(api_key, created_at=FIXED_TIME, client_ip="fe80::1%eth0"),
        record_dict(api_key, created_at=FIXED_TIME, response={LONE_SURROGATE: 1}),
        record_dict(api_key, created_at="2000-01-01T00:30:00+01:00"),
    ]

    body = assert_refused(post(gateway, batch))

    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (1, "request_id"),
        (2, "model"),
        (3, "error.message"),
        (4, "client_ip"),
        (5, "response"),
        (6, "created_at"),
    ]


# Any string: NUL, lone surrogates and surrogate pairs included (which text() leaves out).
any_text = st.lists(
    st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff", "\U0001f642", "%"])),
    max_size=16,
).map("".join)
PLACES = {
    "request_id": lambda r, t: r.update(request_id="req-" + t),
    "model": lambda r, t: r.update(model=t),
    "endpoint": lambda r, t: r.update(endpoint=t),
    "upstream": lambda r, t: r.update(upstream=t),
    "end_user": lambda r, t: r.update(end_user=t),
    "tags": lambda r, t: r.update(tags=["a", t]),
    "error_reason": lambda r, t: r.update(error_reason=t),
    "group": lambda r, t: r.update(group=t),
    "client_ip": lambda r, t: r.update(client_ip=t),
    "error.message": lambda r, t: r.update(status_code=500, error={"message": t}),
    "request.body": lambda r, t: r["request"].update(body={"messages": [{"content": t}]}),
    "request.headers": lambda r, t: r["request"].update(headers={t: "v"}),
    "response": lambda r, t: r.update(response={t: [t]}),
}


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(place=st.sampled_from(sorted(PLACES)), text=any_text)
def test_any_string_anywhere_is_stored_or_refused_never_a_server_error(
    gateway, api_key, default_group, place, text
):
    """On PostgreSQL too, whatever the string: a 201 with the call stored, or a 400
    naming record 0 with nothing written."""
    record = record_dict(api_key, created_at=FIXED_TIME)
    PLACES[place](record, text)
    before = stored()

    response = post(gateway, [record])

    assert response.status_code in (201, 400), response.content[:300]
    response.content.decode("utf-8")
    if response.status_code == 201:
        # Examples share the database: an id generated twice ("req-" and the
        # same text) is a replay the second time, stored once.
        created = response.json()["created"]
        assert created + response.json()["already_present"] == 1
        assert stored()["calls"] == before["calls"] + created
    else:
        assert stored() == before
        assert {e["index"] for e in response.json()["errors"]} == {0}


@pytest.mark.parametrize("address", ["fe80::1%eth0", "fe80::1%1", "::ffff:192.0.2.1%2"])
def test_a_scoped_ipv6_client_ip_is_a_400(gateway, api_key, address):
    spoiled = record_dict(api_key, created_at=FIXED_TIME, client_ip=address)

    body = assert_refused_at(post(gateway, [record_dict(api_key), spoiled]), 1, "client_ip")

    assert "zone" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("created_at", "accepted"),
    [
        ("2000-01-01T00:30:00+01:00", False),  # 1999-12-31 23:30 UTC
        ("1999-12-31T23:59:59.999999Z", False),
        ("2000-01-01T00:00:00Z", True),
        ("1999-12-31T23:30:00-01:00", True),  # 2000-01-01 00:30 UTC
    ],
)
def test_the_year_2000_limit_is_in_utc(gateway, api_key, created_at, accepted):
    record = record_dict(api_key, created_at=created_at)

    response = post(gateway, [record])

    if accepted:
        assert response.status_code == 201, response.content
        stored_at = CallRecord.objects.get(request_id=record["request_id"]).created_at
        assert stored_at.astimezone(UTC).year == 2000
    else:
        body = assert_refused_at(response, 0, "created_at")
        assert "2000" in body["errors"][0]["message"]


# --- who may ingest -----------------------------------------------------------------------


def test_an_account_owners_token_is_403(api_key):
    owner = owner_of(api_key.account)
    response = post(token_client(token_for(owner)), [record_dict(api_key)])
    assert_refused(response, status=403)


def test_a_session_is_403_even_for_a_superuser(api_key):
    for user in (SuperuserFactory(), service_user(), StaffUserFactory()):
        response = post(session_client(user), [record_dict(api_key)])
        assert response.status_code == 403, user
        assert stored() == NOTHING


def test_a_service_users_token_without_the_ingest_flag_is_403(ingester, api_key):
    response = post(token_client(token_for(ingester, can_ingest=False)), [record_dict(api_key)])
    assert_refused(response, status=403)


def test_a_service_users_ingest_token_is_201(ingest_token, api_key):
    response = post(token_client(ingest_token), [record_dict(api_key)])
    assert response.status_code == 201
    assert response.json() == {"created": 1, "already_present": 0}


def test_an_ingest_token_stops_working_once_its_user_joins_an_account(
    ingester, ingest_token, api_key
):
    MembershipFactory(user=ingester, account=AccountFactory())
    assert_refused(post(token_client(ingest_token), [record_dict(api_key)]), status=403)


def test_a_revoked_ingest_token_is_401(ingest_token, api_key):
    revoke_access_token(AccessToken.objects.get(can_ingest=True))
    assert_refused(post(token_client(ingest_token), [record_dict(api_key)]), status=401)


def test_no_credentials_is_401(api_key):
    assert_refused(post(token_client("ult_nope"), [record_dict(api_key)]), status=401)
    assert_refused(post(client(), [record_dict(api_key)]), status=401)


def test_an_ingest_token_is_only_issued_to_a_service_user(api_key):
    owner = owner_of(api_key.account)
    owner_with_the_permission = service_user()
    MembershipFactory(user=owner_with_the_permission, account=api_key.account)
    staff_without_the_permission = StaffUserFactory()
    for user in (owner, owner_with_the_permission, staff_without_the_permission):
        with pytest.raises(ValidationError) as excinfo:
            create_access_token(user=user, name="ingest", can_ingest=True)
        assert "can_ingest" in excinfo.value.message_dict, user
    assert not AccessToken.objects.exists()
    assert create_access_token(user=service_user(), name="ingest", can_ingest=True).token.can_ingest


def test_a_service_user_reads_no_calls(gateway, ingester, api_key):
    assert post(gateway, [record_dict(api_key)]).status_code == 201
    assert gateway.get(LIST_URL).json()["results"] == []
    assert gateway.get(STATS_URL).json()["totals"]["calls"] == 0


# --- throttling ---------------------------------------------------------------------------


@pytest.fixture
def tiny_rates(monkeypatch, settings):
    rates = {"token": "3/min", "ingest": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    # DRF read the rates into the throttle class when it was imported.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    return rates


def assert_throttled(response) -> None:
    assert response.status_code == 429, response.content
    wait = response["Retry-After"]
    assert re.fullmatch(r"\d+", wait), wait
    assert 0 < int(wait) <= 60
    assert "detail" in response.json()


def test_ingest_is_throttled_per_token(tiny_rates, gateway, ingester, api_key):
    assert post(gateway, [record_dict(api_key)]).status_code == 201
    assert post(gateway, [record_dict(api_key)]).status_code == 201
    refused = record_dict(api_key)
    assert_throttled(post(gateway, [refused]))
    assert not CallRecord.objects.filter(request_id=refused["request_id"]).exists()
    # Another token of the same service has its own bucket.
    other = token_client(token_for(ingester, can_ingest=True, name="second gateway"))
    assert post(other, [record_dict(api_key)]).status_code == 201


def test_reads_are_throttled_per_token(tiny_rates, api_key):
    owner = owner_of(api_key.account)
    api = token_client(token_for(owner))
    for url in (LIST_URL, STATS_URL, LIST_URL):
        assert api.get(url).status_code == 200
    assert_throttled(api.get(LIST_URL))
    assert_throttled(api.get(STATS_URL))
    other = token_client(token_for(owner, name="another token"))
    assert other.get(LIST_URL).status_code == 200


def test_ingest_and_reads_are_counted_apart(tiny_rates, gateway, api_key):
    for _ in range(3):
        assert gateway.get(LIST_URL).status_code == 200
    assert_throttled(gateway.get(LIST_URL))
    assert post(gateway, [record_dict(api_key)]).status_code == 201
