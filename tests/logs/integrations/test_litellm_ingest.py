"""A batch of LiteLLM payloads through ``ingest_litellm``: teams become accounts,
keys become keys (by LiteLLM's hash, never a secret), calls are stored by the one
ingest service, all or nothing, and a batch sent again changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings

from accounts.models import Account, ApiKey, Source
from logs.ingest.errors import IngestError
from logs.integrations.litellm import NO_TEAM_NAME, ingest_litellm
from logs.models import CallRecord
from tests.factories import OMIT, litellm_key_hash, litellm_payload

pytestmark = pytest.mark.django_db

BETA = {
    "user_api_key_team_id": "team-beta",
    "user_api_key_team_alias": "Beta",
    "user_api_key_hash": litellm_key_hash("sk-beta-main"),
    "user_api_key_alias": "beta-main",
}


def errors_of(payloads, **kwargs) -> list[tuple[int | None, str]]:
    with pytest.raises(IngestError) as refused:
        ingest_litellm(payloads, **kwargs)
    return [(e.index, e.field) for e in refused.value.errors]


def nothing_written() -> bool:
    return not (
        CallRecord.objects.exists()
        or Account.objects.filter(source=Source.LITELLM).exists()
        or ApiKey.objects.filter(source=Source.LITELLM).exists()
    )


def test_teams_and_keys_seen_first_are_created_and_calls_stored():
    batch = [
        litellm_payload(id="a-1"),
        litellm_payload(id="a-2", metadata={"user_api_key_alias": "alpha-prod"}),
        litellm_payload(
            id="a-3",
            metadata={
                "user_api_key_hash": litellm_key_hash("sk-alpha-ci"),
                "user_api_key_alias": "ci",
            },
        ),
        litellm_payload(id="b-1", metadata=BETA, response_cost=0.25),
    ]

    result = ingest_litellm(batch)

    assert (result.created, result.duplicates) == (4, 0)
    alpha = Account.objects.get(source=Source.LITELLM, external_id="team-alpha")
    beta = Account.objects.get(source=Source.LITELLM, external_id="team-beta")
    assert (alpha.name, beta.name) == ("Alpha", "Beta")
    keys = {k.name: k for k in ApiKey.objects.filter(source=Source.LITELLM)}
    assert sorted(keys) == ["alpha-prod", "beta-main", "ci"]
    assert keys["ci"].account == alpha
    assert keys["alpha-prod"].external_id == litellm_key_hash("sk-alpha-prod")
    assert keys["alpha-prod"].secret_hash == litellm_key_hash("sk-alpha-prod")
    calls = {c.request_id: c for c in CallRecord.objects.all()}
    assert {r: (c.account.name, c.api_key.name) for r, c in calls.items()} == {
        "a-1": ("Alpha", "alpha-prod"),
        "a-2": ("Alpha", "alpha-prod"),
        "a-3": ("Alpha", "ci"),
        "b-1": ("Beta", "beta-main"),
    }
    assert calls["b-1"].cost == Decimal("0.25")
    assert calls["a-1"].group.name == "default"


def test_known_teams_and_keys_are_found_again():
    ingest_litellm([litellm_payload(id="first")])
    ingest_litellm([litellm_payload(id="second", metadata={"user_api_key_team_alias": "Renamed"})])

    assert Account.objects.filter(source=Source.LITELLM).count() == 1
    assert ApiKey.objects.filter(source=Source.LITELLM).count() == 1
    first, second = CallRecord.objects.order_by("request_id")
    assert first.api_key_id == second.api_key_id


def test_a_batch_sent_again_changes_nothing():
    batch = [litellm_payload(), litellm_payload(metadata=BETA)]
    ingest_litellm(batch)
    before = list(CallRecord.objects.values().order_by("id"))

    again = ingest_litellm(batch)

    assert (again.created, again.duplicates) == (0, 2)
    assert list(CallRecord.objects.values().order_by("id")) == before


def test_the_same_id_with_other_content_is_refused_by_litellms_name_for_it():
    ingest_litellm([litellm_payload(id="dup", prompt_tokens=5)])
    assert errors_of([litellm_payload(id="dup", prompt_tokens=6)]) == [(0, "id")]


def test_calls_without_a_team_go_to_the_no_team_account():
    ingest_litellm(
        [litellm_payload(metadata={"user_api_key_team_id": None, "user_api_key_team_alias": None})]
    )
    call = CallRecord.objects.get()
    assert call.account.name == NO_TEAM_NAME
    assert call.account.source == Source.LITELLM


def test_a_bad_payload_refuses_the_batch_and_creates_nothing():
    batch = [litellm_payload(metadata=BETA), litellm_payload(startTime="yesterday")]
    assert errors_of(batch) == [(1, "startTime")]
    assert nothing_written()


def test_a_record_the_own_format_refuses_is_named_by_litellms_field_and_creates_nothing():
    batch = [
        litellm_payload(metadata=BETA),
        litellm_payload(prompt_tokens=-1),
        litellm_payload(response_cost=-0.5, requester_ip_address="not an ip"),
    ]
    assert errors_of(batch) == [
        (1, "prompt_tokens"),
        (2, "response_cost"),
        (2, "requester_ip_address"),
    ]
    assert nothing_written()


def test_a_call_before_2000_is_named_by_its_start_time():
    assert errors_of([litellm_payload(startTime=0.0, endTime=1.0)]) == [(0, "startTime")]


def test_a_lone_surrogate_in_the_messages_is_named_there():
    payload = litellm_payload(messages=[{"role": "user", "content": "\ud800"}])
    assert errors_of([payload]) == [(0, "messages[0].content")]


@override_settings(USAGELOGS_INTEGRATIONS_CREATE_ACCOUNTS=False)
def test_with_creation_off_an_unknown_team_or_key_is_refused():
    assert errors_of([litellm_payload(), litellm_payload(metadata=BETA)]) == [
        (0, "metadata.user_api_key_team_id"),
        (1, "metadata.user_api_key_team_id"),
    ]
    assert nothing_written()


def test_with_creation_off_known_teams_and_keys_still_ingest():
    ingest_litellm([litellm_payload(id="seen")])  # creates team-alpha and alpha-prod
    other_key = litellm_payload(metadata={"user_api_key_hash": litellm_key_hash("sk-new")})

    with override_settings(USAGELOGS_INTEGRATIONS_CREATE_ACCOUNTS=False):
        assert ingest_litellm([litellm_payload(id="known")]).created == 1
        assert errors_of([other_key]) == [(0, "metadata.user_api_key_hash")]
    assert ApiKey.objects.filter(source=Source.LITELLM).count() == 1


def test_a_key_that_moved_to_another_team_is_refused():
    ingest_litellm([litellm_payload(id="in-alpha")])
    moved = litellm_payload(
        metadata={**BETA, "user_api_key_hash": litellm_key_hash("sk-alpha-prod")}
    )
    assert errors_of([moved]) == [(0, "metadata.user_api_key_hash")]


def test_a_key_without_an_alias_gets_a_name():
    ingest_litellm([litellm_payload(metadata={"user_api_key_alias": OMIT})])
    assert CallRecord.objects.get().api_key.name.startswith("LiteLLM key ")


@pytest.mark.parametrize("size", [0, 3])
def test_batch_size_limits(settings, size):
    settings.USAGELOGS_INGEST_MAX_BATCH = 2
    assert errors_of([litellm_payload() for _ in range(size)]) == [(None, "")]
