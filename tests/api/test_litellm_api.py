"""POST /api/v1/integrations/litellm/ as a LiteLLM proxy sees it: its three log
formats, the same tokens as the calls ingest, and bad bodies refused with a 400
naming the payload and its field, nothing written."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account, ApiKey, Source
from logs.models import AccountModel, CallPayload, CallRecord, HourlyCallRollup
from tests.api.helpers import (
    client,
    service_user,
    session_client,
    token_client,
    token_for,
)
from tests.factories import StaffUserFactory, litellm_key_hash, litellm_payload, owner_of

pytestmark = pytest.mark.django_db

URL = "/api/v1/integrations/litellm/"

BETA = {
    "user_api_key_team_id": "team-beta",
    "user_api_key_team_alias": "Beta",
    "user_api_key_hash": litellm_key_hash("sk-beta-main"),
    "user_api_key_alias": "beta-main",
}


@pytest.fixture
def proxy(ingest_token):
    """The client a LiteLLM proxy is: the headers of its callback config."""
    return token_client(ingest_token)


def post(api, body, *, content_type="application/json"):
    if not isinstance(body, str | bytes):
        body = json.dumps(body)
    return api.post(URL, body, content_type=content_type)


def stored() -> dict[str, int]:
    return {
        "calls": CallRecord.objects.count(),
        "payloads": CallPayload.objects.count(),
        "rollups": HourlyCallRollup.objects.count(),
        "models": AccountModel.objects.count(),
        "accounts": Account.objects.filter(source=Source.LITELLM).count(),
        "keys": ApiKey.objects.filter(source=Source.LITELLM).count(),
    }


NOTHING = dict.fromkeys(("calls", "payloads", "rollups", "models", "accounts", "keys"), 0)


def refused(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content[:500]
    assert stored() == NOTHING
    return response.json()


def ndjson(payloads) -> str:
    return "\n".join(json.dumps(p) for p in payloads) + "\n"


@pytest.mark.parametrize(
    "log_format, encode",
    [
        ("json_array", json.dumps),
        ("ndjson", ndjson),
        ("single", lambda payloads: json.dumps(payloads[0])),
    ],
)
def test_each_log_format_is_taken(proxy, log_format, encode):
    payloads = [litellm_payload(), litellm_payload(metadata=BETA)]
    if log_format == "single":
        payloads = payloads[:1]

    response = post(proxy, encode(payloads))

    assert response.status_code == 201, response.content
    assert response.json() == {"created": len(payloads), "already_present": 0}
    assert set(CallRecord.objects.values_list("request_id", flat=True)) == {
        p["id"] for p in payloads
    }


def test_an_accepted_batch_says_what_it_cost_the_server_as_the_calls_ingest_does(proxy):
    response = post(proxy, [litellm_payload()])

    assert response.status_code == 201
    assert re.fullmatch(r"cpu;dur=[\d.]+, total;dur=[\d.]+", response["Server-Timing"])


def test_ndjson_may_say_so_in_its_content_type(proxy):
    body = ndjson([litellm_payload(), litellm_payload()])
    assert post(proxy, body, content_type="application/x-ndjson").status_code == 201


def test_a_batch_sent_again_is_already_present(proxy):
    payloads = [litellm_payload(), litellm_payload(metadata=BETA)]
    post(proxy, payloads)

    response = post(proxy, payloads)

    assert response.json() == {"created": 0, "already_present": 2}
    assert CallRecord.objects.count() == 2


def test_a_bad_payload_is_named_and_nothing_is_written(proxy):
    body = refused(
        post(
            proxy,
            [
                litellm_payload(metadata=BETA),
                litellm_payload(startTime="2026-12-16"),
                litellm_payload(metadata={"user_api_key_hash": None}),
            ],
        )
    )

    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (1, "startTime"),
        (2, "metadata.user_api_key_hash"),
    ]
    assert body["detail"].startswith("record 1, startTime: must be a number")


def test_a_bad_ndjson_line_is_named(proxy):
    body = refused(post(proxy, json.dumps(litellm_payload()) + "\n{not json\n"))
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "")]
    assert "line 2" in body["errors"][0]["message"]


def test_creation_off_refuses_an_unknown_team(proxy, settings):
    settings.USAGELOGS_INTEGRATIONS_CREATE_ACCOUNTS = False
    body = refused(post(proxy, [litellm_payload()]))
    assert body["errors"] == [
        {
            "index": 0,
            "field": "metadata.user_api_key_team_id",
            "message": "no account for LiteLLM id 'team-alpha'",
        }
    ]


def test_other_content_types_are_415(proxy):
    refused(post(proxy, "id=1", content_type="application/x-www-form-urlencoded"), status=415)


def test_a_body_over_the_limit_is_413(proxy, settings):
    settings.USAGELOGS_INGEST_MAX_BODY_BYTES = 1000
    refused(post(proxy, [litellm_payload()]), status=413)


# --- who may post -----------------------------------------------------------------------


def test_without_a_token_it_is_401():
    refused(post(client(), [litellm_payload()]), status=401)


def test_a_read_token_or_an_owners_token_is_403(ingester):
    staff = StaffUserFactory()
    account = Account.objects.create(name="Own", slug="own")
    for token in (
        token_for(ingester, can_ingest=False),
        token_for(staff),
        token_for(owner_of(account)),
    ):
        refused(post(token_client(token), [litellm_payload()]), status=403)


def test_a_session_is_403():
    refused(post(session_client(service_user()), [litellm_payload()]), status=403)


# --- garbage ------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
        st.sampled_from(["\x00", "\ud800", "1e400", "-1", "", "2026-12-16T14:00:00"]),
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [*sorted(litellm_payload()), "brand_new_field"]
METADATA_FIELDS = sorted(litellm_payload()["metadata"])


@st.composite
def spoiled_payloads(draw) -> dict:
    """A real-shaped payload with a field or two (of the payload or of its
    metadata) set to any JSON value, or taken away."""
    payload = litellm_payload()
    metadata = payload["metadata"]  # spoiling it after metadata itself was changes nothing
    for _ in range(draw(st.integers(1, 2))):
        where = payload if draw(st.booleans()) else metadata
        name = draw(st.sampled_from(FIELDS if where is payload else METADATA_FIELDS))
        if name not in ("metadata",) and draw(st.booleans()):
            where.pop(name, None)
        else:
            where[name] = draw(json_values)
    return payload


bodies = st.one_of(
    st.binary(max_size=64),
    json_values.map(json.dumps),
    spoiled_payloads().map(json.dumps),
    st.lists(spoiled_payloads(), min_size=1, max_size=2).map(json.dumps),
    st.lists(spoiled_payloads(), min_size=2, max_size=2).map(ndjson),
)


def payload_count(body: str | bytes) -> int:
    """How many payloads a body holds at most: a list's items, else a line's."""
    raw = body if isinstance(body, bytes) else body.encode()
    try:
        value = json.loads(raw)
    except ValueError:
        return len(raw.split(b"\n"))
    return len(value) if isinstance(value, list) else 1


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_any_body_is_stored_or_refused_never_a_server_error(proxy, body):
    """A 201 with every payload stored, or a 400 naming a payload (or the body)
    and its field, with nothing written."""
    before = stored()

    response = post(proxy, body)

    assert response.status_code in (201, 400), response.content[:300]
    if response.status_code == 201:
        assert stored()["calls"] == before["calls"] + response.json()["created"]
        return
    assert stored() == before
    errors = response.json()["errors"]
    assert errors
    records = payload_count(body)
    for error in errors:
        assert error["index"] is None or 0 <= error["index"] < records
        if error["index"] is not None and error["field"]:
            # Named by LiteLLM's field, never the own format's.
            root = error["field"].split(".")[0].split("[")[0]
            assert root in (*FIELDS, "metadata"), error
