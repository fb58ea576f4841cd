"""Token accounting where a call is shown: the list's tokens cell, the call
detail, the stats page's per-model caching table, and the portal's filter choices."""

from __future__ import annotations

import pytest

from accounts.models import Account
from logs.models import CallRecord
from tests.conftest import logged_in
from tests.factories import owner_of
from tests.pages import detail_fields, links, page, result_rows
from tests.token_calls import build_token_calls

pytestmark = pytest.mark.django_db

ADMIN = "/admin/logs/callrecord/"
PORTAL = "/portal/logs/callrecord/"


@pytest.fixture
def calls(db) -> tuple[dict[str, CallRecord], Account]:
    return build_token_calls()


def rows_by_request_id(response) -> dict[str, dict[str, str]]:
    return {
        call.request_id: row
        for call, row in zip(response.context["cl"].result_list, result_rows(response), strict=True)
    }


def test_the_tokens_cell_shows_the_cached_share_on_a_line_of_its_own(staff_client, calls):
    response = staff_client.get(ADMIN)

    rows = rows_by_request_id(response)
    assert rows["acme-cached"]["tokens"] == "1,200 (1,000 / 200) 60% cached"
    assert rows["acme-plain"]["tokens"] == "1,100 (1,000 / 100)"
    assert rows["globex-1"]["tokens"] == "510 (500 / 10) 100% cached"
    html = page(response)
    assert "600 input tokens read from the cache (60% of the input)" in html
    assert "300 written to the cache; 50 reasoning tokens (part of the output)" in html


def test_the_detail_shows_every_token_part_the_end_user_and_tags(staff_client, calls):
    by_id, _ = calls
    call = by_id["acme-cached"]

    response = staff_client.get(f"{ADMIN}{call.pk}/change/")

    fields = detail_fields(response)
    assert fields["cached_input_tokens"] == "600"
    assert fields["cached_share"] == "60% of the input"
    assert fields["cache_write_tokens"] == "300"
    assert fields["reasoning_tokens"] == "50"
    assert fields["end_user"] == "customer-7"
    assert fields["tags"] == "support eu"
    hrefs = dict(links(response))
    assert hrefs["customer-7"] == f"{ADMIN}?end_user=customer-7"
    assert hrefs["support"] == f"{ADMIN}?tag=support"
    listed = staff_client.get(hrefs["support"]).context["cl"].result_list
    assert [c.request_id for c in listed] == ["acme-cached"]


def test_a_call_without_them_shows_dashes_and_zeros(staff_client, calls):
    by_id, _ = calls

    fields = detail_fields(staff_client.get(f"{ADMIN}{by_id['acme-plain'].pk}/change/"))

    assert (fields["cached_input_tokens"], fields["end_user"], fields["tags"]) == ("0", "—", "—")
    assert fields["cached_share"] == "0% of the input"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tag": "eu"}, ["globex-1", "acme-other-model", "acme-cached"]),
        ({"tag": "support"}, ["acme-cached"]),
        ({"end_user": "globex-user"}, ["globex-1"]),
        ({"tag": "eu", "model": "gpt-4o"}, ["globex-1", "acme-other-model"]),
    ],
)
def test_staff_filter_by_tag_and_end_user(staff_client, calls, params, expected):
    response = staff_client.get(ADMIN, params)

    assert [c.request_id for c in response.context["cl"].result_list] == expected
    assert response.context["totals"].calls == len(expected)


def test_the_stats_page_shows_the_cached_share_per_model(staff_client, calls):
    response = staff_client.get(f"{ADMIN}stats/")

    html = page(response)
    assert 'data-table="caching"' in html
    table = {row.name: row for row in response.context["stats"].model_caching}
    # claude-sonnet: 600 of 2,000 input tokens; gpt-4o: 600 of 900.
    assert table["claude-sonnet"].cached_share == "30%"
    assert table["claude-sonnet"].cache_write_tokens == "300"
    assert table["claude-sonnet"].reasoning_tokens == "50"
    assert table["gpt-4o"].cached_share == "66.7%"
    assert response.context["stats"].cached_share == "41.4%"  # 1,200 of 2,900


def test_the_stats_page_of_a_tag_reads_raw_calls_exactly(staff_client, calls):
    stats = staff_client.get(f"{ADMIN}stats/", {"tag": "eu"}).context["stats"]

    assert stats.totals.calls == 3
    assert stats.totals.cached_input_tokens == 1200
    assert stats.totals.input_tokens == 1900


def test_no_caching_table_without_cache_or_reasoning_tokens(staff_client, calls):
    response = staff_client.get(f"{ADMIN}stats/", {"q": "acme-plain"})

    assert response.context["stats"].totals.calls == 1
    assert 'data-table="caching"' not in page(response)


# --- the portal: an owner sees their own account's -------------------------------------


def test_the_owner_sees_only_their_accounts_tags_and_end_users(calls):
    _, acme = calls
    owner = logged_in(owner_of(acme, username="acme-owner"))

    response = owner.get(PORTAL)

    specs = {
        spec.parameter_name: spec
        for spec in response.context["cl"].filter_specs
        if hasattr(spec, "parameter_name")
    }
    assert [value for value, _ in specs["tag"].lookup_choices] == ["eu", "support"]
    assert [value for value, _ in specs["end_user"].lookup_choices] == ["customer-7"]
    assert "globex" not in page(response).lower()
    refused = owner.get(PORTAL, {"end_user": "globex-user"})
    assert list(refused.context["cl"].result_list) == []
    assert refused.context["totals"].calls == 0
