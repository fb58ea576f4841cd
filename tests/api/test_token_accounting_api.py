"""Token accounting in the API: the call fields, the tag and end-user filters
(scoped), and the stats API's cached share per model."""

from __future__ import annotations

import pytest

from tests.api.helpers import LIST_URL, STATS_URL, session_client
from tests.factories import owner_of
from tests.token_calls import build_token_calls

pytestmark = pytest.mark.django_db


@pytest.fixture
def calls(db):
    return build_token_calls()


def test_the_api_shows_the_new_fields_and_filters_on_them(support, calls):
    api = session_client(support)

    rows = {row["request_id"]: row for row in api.get(LIST_URL).json()["results"]}
    tagged = api.get(LIST_URL, {"tag": "eu"}).json()["results"]
    of_user = api.get(LIST_URL, {"end_user": "customer-7"}).json()["results"]

    cached = rows["acme-cached"]
    assert (cached["cached_input_tokens"], cached["cache_write_tokens"]) == (600, 300)
    assert cached["reasoning_tokens"] == 50
    assert cached["end_user"] == "customer-7"
    assert cached["tags"] == ["support", "eu"]
    assert rows["acme-plain"]["tags"] == [] and rows["acme-plain"]["end_user"] == ""
    assert [r["request_id"] for r in tagged] == ["globex-1", "acme-other-model", "acme-cached"]
    assert [r["request_id"] for r in of_user] == ["acme-cached"]


def test_an_owner_filtering_the_api_on_another_accounts_tag_gets_nothing(calls):
    _, acme = calls
    api = session_client(owner_of(acme, username="acme-api-owner"))

    response = api.get(LIST_URL, {"tag": "globex-only"})

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_the_stats_api_gives_the_cached_share_per_model(support, calls):
    api = session_client(support)

    response = api.get(STATS_URL, {"group_by": "model", "interval": "day"})
    assert response.status_code == 200, response.content
    body = response.json()

    per_model = {row["key"]: row for row in body["results"]}
    assert per_model["claude-sonnet"]["cached_input_tokens"] == 600
    assert per_model["claude-sonnet"]["cached_input_share"] == pytest.approx(0.3)
    assert per_model["gpt-4o"]["cached_input_share"] == pytest.approx(600 / 900)
    assert body["totals"]["cached_input_tokens"] == 1200
    assert body["totals"]["cache_write_tokens"] == 300
    assert body["totals"]["reasoning_tokens"] == 50
