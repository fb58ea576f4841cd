"""The investigation filters (exact HTTP status, any error, slower than, cost
above, client IP, endpoint, streamed) and the recent-span presets (``last``):
each selects the same calls on the admin list, in the portal, its totals, the
usage stats, the CSV export and the API, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from logs.models import CallRecord
from tests.api.helpers import EXPORT_URL, LIST_URL, STATS_URL, request_ids, session_client
from tests.api.helpers import csv_rows as api_csv_rows
from tests.conftest import logged_in
from tests.pages import csv_rows, messages_on_page, totals_on_page
from tests.query_strings import QueryWorld, build_world, in_order

pytestmark = pytest.mark.django_db

ADMIN = "/admin/logs/callrecord/"
PORTAL = "/portal/logs/callrecord/"

# (params, which calls they select)
CASES = [
    ({"status": "error"}, lambda c: c.status_code >= 400),
    ({"status_code": "502"}, lambda c: c.status_code == 502),
    ({"status_code": "429"}, lambda c: c.status_code == 429),
    ({"slower_than_ms": "1700"}, lambda c: c.duration_ms > 1700),
    ({"slower_than_ms": "0"}, lambda c: True),
    ({"cost_above": "0.35"}, lambda c: c.cost > Decimal("0.35")),
    ({"cost_above": ".05"}, lambda c: c.cost > Decimal("0.05")),
    ({"client_ip": "2001:DB8:0::1"}, lambda c: c.client_ip == "2001:db8::1"),
    ({"client_ip": "203.0.113.7"}, lambda c: c.client_ip == "203.0.113.7"),
    ({"endpoint": "/v1/embeddings"}, lambda c: c.endpoint == "/v1/embeddings"),
    ({"streamed": "yes"}, lambda c: c.is_stream),
    ({"streamed": "no"}, lambda c: not c.is_stream),
    (
        {"status": "error", "slower_than_ms": "2000", "streamed": "no"},
        lambda c: c.status_code >= 400 and c.duration_ms > 2000 and not c.is_stream,
    ),
]


@pytest.fixture
def world() -> QueryWorld:
    return build_world()


def ids_of(response) -> list[str]:
    return [call.request_id for call in response.context["cl"].result_list]


@pytest.mark.parametrize("params, selects", CASES, ids=lambda p: str(p))
def test_each_investigation_filter_selects_the_same_calls_everywhere(world, params, selects):
    expected = [c for c in world.calls if selects(c)]
    assert expected, "a case that selects nothing proves little"
    staff = logged_in(world.staff.user)

    listed = staff.get(ADMIN, params)
    assert messages_on_page(listed) == []
    assert ids_of(listed) == in_order(expected)
    assert totals_on_page(listed)["calls"] == str(len(expected))
    assert staff.get(ADMIN + "stats/", params).context["stats"].totals.calls == len(expected)
    assert [row[1] for row in csv_rows(staff.get(ADMIN + "export/", params))[1:]] == in_order(
        expected
    )

    own = [c for c in expected if c in world.owner.calls]
    portal = logged_in(world.owner.user).get(PORTAL, params)
    assert ids_of(portal) == in_order(own)
    assert totals_on_page(portal)["calls"] == str(len(own))

    api = session_client(world.staff.user)
    assert request_ids(api.get(LIST_URL, params).json()["results"]) == in_order(expected)
    assert api.get(STATS_URL, params).json()["totals"]["calls"] == len(expected)
    assert [row[1] for row in api_csv_rows(api.get(EXPORT_URL, params))[1:]] == in_order(expected)


BAD = [
    ({"status_code": "5xx"}, "HTTP status code (status_code): “5xx” must be an HTTP status code"),
    ({"status_code": "600"}, "must be an HTTP status code, 100 to 599"),
    ({"slower_than_ms": "1.5"}, "Slower than (ms) (slower_than_ms): “1.5” must be a whole number"),
    ({"slower_than_ms": "2147483648"}, "must be at most 2,147,483,647 ms"),
    ({"cost_above": "1e3"}, "Cost above (USD) (cost_above): “1e3” must be an amount in USD"),
    ({"cost_above": "0.123456789"}, "with up to 8 decimals"),
    ({"client_ip": "300.1.1.1"}, "Client IP (client_ip): “300.1.1.1” must be an IPv4 or IPv6"),
    ({"endpoint": "x" * 300}, "must be a path of up to 255 characters"),
    ({"last": "2h"}, "Time range last: “2h” must be one of 15m, 1h, 24h, 7d, 30d"),
    ({"last": "1h", "start": "2026-11-19"}, "“last” counts back from now, so it takes no start"),
]


@pytest.mark.parametrize("params, text", BAD, ids=lambda p: str(p)[:40])
def test_a_bad_value_is_refused_with_a_message_naming_it_on_every_surface(world, params, text):
    staff = logged_in(world.staff.user)

    listed = staff.get(ADMIN, params)
    assert any(text in message for _, message in messages_on_page(listed)), messages_on_page(listed)
    assert ids_of(listed) == []
    assert totals_on_page(listed)["calls"] == "0"
    assert staff.get(ADMIN + "export/", params).status_code == 400

    api = session_client(world.staff.user)
    for url in (LIST_URL, EXPORT_URL, STATS_URL):
        response = api.get(url, params)
        assert response.status_code == 400
        assert set(response.json()) <= {*params, "end"}, response.json()


def test_streamed_is_a_sidebar_choice_and_any_error_a_status_choice(world):
    page = logged_in(world.staff.user).get(ADMIN).content.decode()
    assert "?streamed=yes" in page
    assert "?status=error" in page
    assert 'name="slower_than_ms"' in page
    assert 'name="cost_above"' in page


# --- recent spans -----------------------------------------------------------------------


@pytest.mark.parametrize("preset, span", [("15m", 15), ("1h", 60), ("24h", 1440)])
def test_a_preset_counts_back_from_now(world, clock, preset, span):
    """The world's calls are at fixed times: put "now" just after the fourth."""
    fourth = world.calls[3].created_at
    clock.traveller.move_to(fourth + timedelta(minutes=span) - timedelta(seconds=30))
    expected = [c for c in world.calls if c.created_at > timezone.now() - timedelta(minutes=span)]
    staff = logged_in(world.staff.user)

    listed = staff.get(ADMIN, {"last": preset})

    assert messages_on_page(listed) == []
    assert ids_of(listed) == in_order(expected)
    assert world.calls[3].request_id in ids_of(listed)
    assert world.calls[2].request_id not in ids_of(listed)  # an hour before the span
    api = session_client(world.staff.user)
    assert request_ids(api.get(LIST_URL, {"last": preset}).json()["results"]) == in_order(expected)


def test_the_presets_sit_beside_the_range_and_drop_a_typed_range(world):
    response = logged_in(world.staff.user).get(
        ADMIN, {"start": "2026-11-19T21:00", "model": "gpt-4o"}
    )
    page = response.content.decode()
    for preset in ("15m", "1h", "24h", "7d", "30d"):
        assert f'data-preset="{preset}"' in page
    assert 'href="?last=1h&amp;model=gpt-4o"' in page or 'href="?model=gpt-4o&amp;last=1h"' in page


def test_a_chosen_preset_is_marked_and_explained(world):
    page = logged_in(world.staff.user).get(ADMIN, {"last": "7d"}).content.decode()
    assert 'data-preset="7d" title="Last 7 days" aria-current="true"' in page
    assert "Last 7 days, counted back from each time the page loads." in page


def test_no_call_counts_twice_or_goes_missing_with_a_raw_only_filter_across_pages(
    world, monkeypatch
):
    from django.contrib import admin

    monkeypatch.setattr(admin.site.get_model_admin(CallRecord), "list_per_page", 2)
    staff: Client = logged_in(world.staff.user)
    expected = in_order([c for c in world.calls if c.duration_ms > 900])

    seen = []
    first = staff.get(ADMIN, {"slower_than_ms": "900"})
    pages = first.context["cl"].paginator.num_pages
    seen += ids_of(first)
    for number in range(2, pages + 1):
        seen += ids_of(staff.get(ADMIN, {"slower_than_ms": "900", "p": number}))

    assert seen == expected
    assert first.context["totals"].calls == len(expected)
