"""Token accounting where a call is shown: the list's tokens cell, the call
detail, the stats page's per-model caching table, and the portal's filter choices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.models import Account
from logs.models import CallRecord, ModelPrice
from tests.conftest import logged_in
from tests.factories import (
    OMIT,
    ApiKeyFactory,
    GroupFactory,
    ModelPriceFactory,
    SuperuserFactory,
    ingest,
    owner_of,
    record_dict,
)
from tests.pages import detail_fields, links, page, result_rows
from tests.token_calls import build_token_calls

pytestmark = pytest.mark.django_db

ADMIN = "/admin/logs/callrecord/"
X = "\N{MULTIPLICATION SIGN}"
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


# --- the price list and the cost explanation ----------------------------------------------


def test_a_computed_cost_is_explained_kind_by_kind(staff_client, db):
    key = ApiKeyFactory(group=GroupFactory(name="ratio-2", price_ratio=Decimal("2")))
    ModelPriceFactory(model="priced", valid_from=datetime(2026, 1, 1, tzinfo=UTC))
    record = record_dict(
        key,
        model="priced",
        cost=OMIT,
        input_tokens=3000,
        cached_input_tokens=1000,
        cache_write_tokens=0,
        output_tokens=500,
    )
    ingest(record)
    call = CallRecord.objects.get(request_id=record["request_id"])

    fields = detail_fields(staff_client.get(f"{ADMIN}{call.pk}/change/"))

    # 2,000 x 2.5 + 1,000 x 1.25 + 500 x 10 = 11,250 per million = 0.01125; x 2
    assert fields["cost"] == "0.02250000"
    explained = fields["cost_basis"]
    assert f"2,000 input tokens {X} $2.500000 per million = $0.005" in explained
    assert f"1,000 cached input tokens {X} $1.250000 per million = $0.00125" in explained
    assert f"0 cache write tokens {X} $3.125000 per million = $0" in explained
    assert f"500 output tokens {X} $10.000000 per million = $0.005" in explained
    assert f"$0.01125 {X} group ratio 2.0000 (ratio-2) = $0.0225" in explained
    # 1,000 cached x (2.50 - 1.25) per million x 2
    assert fields["cache_savings"].startswith("0.00250000 (cached input tokens")


def test_a_call_without_cached_tokens_has_no_savings_row(staff_client, calls):
    by_id, _ = calls

    fields = detail_fields(staff_client.get(f"{ADMIN}{by_id['acme-plain'].pk}/change/"))

    assert "cache_savings" not in fields


def test_a_reported_cost_says_so(staff_client, calls):
    by_id, _ = calls

    fields = detail_fields(staff_client.get(f"{ADMIN}{by_id['acme-plain'].pk}/change/"))

    assert fields["cost_basis"] == "As reported by the gateway."


def test_staff_keep_the_price_list_in_the_admin(db):
    client = logged_in(SuperuserFactory(username="price-admin"))
    group = GroupFactory(name="vip")

    response = client.post(
        "/admin/logs/modelprice/add/",
        {
            "model": "gpt-4o",
            "group": group.pk,
            "valid_from_0": "2026-03-01",
            "valid_from_1": "00:00:00",
            "input_per_million": "2.5",
            "cached_input_per_million": "1.25",
            "cache_write_per_million": "0",
            "output_per_million": "10",
        },
    )

    assert response.status_code == 302, page(response)[:2000]
    price = ModelPrice.objects.get()
    assert (price.model, price.group, price.output_per_million) == ("gpt-4o", group, Decimal("10"))
    listed = client.get("/admin/logs/modelprice/")
    assert "gpt-4o" in page(listed) and "vip" in page(listed)


def test_a_negative_price_is_refused(db):
    client = logged_in(SuperuserFactory(username="price-admin"))

    response = client.post(
        "/admin/logs/modelprice/add/",
        {
            "model": "gpt-4o",
            "valid_from_0": "2026-03-01",
            "valid_from_1": "00:00:00",
            "input_per_million": "-1",
            "cached_input_per_million": "0",
            "cache_write_per_million": "0",
            "output_per_million": "0",
        },
    )

    assert response.status_code == 200
    assert not ModelPrice.objects.exists()


def test_owners_have_no_price_list(calls):
    _, acme = calls
    owner = logged_in(owner_of(acme, username="acme-price-owner"))

    assert owner.get("/portal/logs/modelprice/").status_code == 404


def test_the_stats_page_and_api_show_what_caching_saved_per_model(staff_client, db):
    ModelPriceFactory(
        model="claude-sonnet",
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        input_per_million=Decimal("3"),
        cached_input_per_million=Decimal("0.3"),
    )
    build_token_calls()

    stats = staff_client.get(f"{ADMIN}stats/").context["stats"]
    body = staff_client.get("/api/v1/stats/", {"group_by": "model", "interval": ""}).json()

    table = {row.name: row for row in stats.model_caching}
    # 600 cached tokens x (3 - 0.3) per million x ratio 1; gpt-4o has no price.
    assert table["claude-sonnet"].cache_savings == "0.00162000"
    assert Decimal(table["gpt-4o"].cache_savings) == 0
    assert stats.cache_savings == "0.00162000"
    per_model = {row["key"]: row for row in body["results"]}
    assert Decimal(per_model["claude-sonnet"]["cache_savings"]) == Decimal("0.00162")
    assert Decimal(body["totals"]["cache_savings"]) == Decimal("0.00162")
