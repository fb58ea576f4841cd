"""Sorting the call list by duration, tokens, usage and cost (largest first on
the first click) within the filters, on SQLite and PostgreSQL; a sort over
more calls than sort quickly is refused with a way to the widest recent span
that sorts quickly."""

from __future__ import annotations

import pytest

from logs.admin.changelist import CallChangeList
from tests.conftest import logged_in
from tests.pages import column_headers, messages_on_page
from tests.query_strings import QueryWorld, build_world

pytestmark = pytest.mark.django_db

ADMIN = "/admin/logs/callrecord/"
PORTAL = "/portal/logs/callrecord/"

MEASURES = {
    "duration": lambda c: c.duration_ms,
    "tokens": lambda c: c.total_tokens,
    "usage_amount": lambda c: c.usage,
    "cost_amount": lambda c: c.cost,
}


@pytest.fixture
def world() -> QueryWorld:
    return build_world()


def column_index(response, name: str) -> int:
    return [column for column, _ in column_headers(response)].index(name)


def largest_first(calls, measure) -> list[str]:
    by_pk = sorted(calls, key=lambda c: c.pk, reverse=True)  # the tie-break: newest id first
    return [c.request_id for c in sorted(by_pk, key=measure, reverse=True)]


@pytest.mark.parametrize("site, who", [(ADMIN, "staff"), (PORTAL, "owner")])
@pytest.mark.parametrize("column", list(MEASURES))
def test_a_measure_sorts_largest_first_then_smallest_first(world, site, who, column):
    viewer = getattr(world, who)
    client = logged_in(viewer.user)
    index = column_index(client.get(site), column)

    largest = client.get(site, {"o": str(index)})
    smallest = client.get(site, {"o": f"-{index}"})

    assert messages_on_page(largest) == []
    shown = [c.request_id for c in largest.context["cl"].result_list]
    assert shown == largest_first(viewer.calls, MEASURES[column])
    ascending = sorted(sorted(viewer.calls, key=lambda c: c.pk, reverse=True), key=MEASURES[column])
    assert [c.request_id for c in smallest.context["cl"].result_list] == [
        c.request_id for c in ascending
    ]


def test_a_sort_keeps_the_filters_and_their_totals(world):
    client = logged_in(world.staff.user)
    index = column_index(client.get(ADMIN), "duration")
    response = client.get(ADMIN, {"o": str(index), "status": "error"})
    errors = [c for c in world.calls if c.status_code >= 400]
    assert [c.request_id for c in response.context["cl"].result_list] == largest_first(
        errors, MEASURES["duration"]
    )
    assert response.context["totals"].calls == len(errors)


def test_pages_of_a_sorted_list_cover_every_call_once(world, monkeypatch):
    from django.contrib import admin

    from logs.models import CallRecord

    monkeypatch.setattr(admin.site.get_model_admin(CallRecord), "list_per_page", 3)
    client = logged_in(world.staff.user)
    index = column_index(client.get(ADMIN), "cost_amount")
    seen = []
    for number in (1, 2, 3):
        response = client.get(ADMIN, {"o": str(index), "p": number})
        seen += [c.request_id for c in response.context["cl"].result_list]
    assert seen == largest_first(world.calls, MEASURES["cost_amount"])


def test_a_sort_over_too_many_calls_is_newest_first_with_a_way_to_the_last_day(world, monkeypatch):
    monkeypatch.setattr(CallChangeList, "SORT_MAX_CALLS", 5)
    client = logged_in(world.staff.user)
    index = column_index(client.get(ADMIN), "duration")

    response = client.get(ADMIN, {"o": str(index), "model": "gpt-4o-mini"})
    narrow = client.get(ADMIN, {"o": str(index), "status": "error"})

    mini = [c for c in world.calls if c.model == "gpt-4o-mini"]
    assert len(mini) == 4  # few enough: sorted
    assert messages_on_page(response) == []
    assert [c.request_id for c in response.context["cl"].result_list] == largest_first(
        mini, MEASURES["duration"]
    )
    everything = client.get(ADMIN, {"o": str(index)})
    texts = [text for _, text in messages_on_page(everything)]
    assert texts == [
        "8 calls are too many to sort by this column quickly (at most 5), so they are shown "
        "newest first: narrow the time range, for instance to the last 24 hours (the link "
        "below the totals)."
    ]
    assert [c.request_id for c in everything.context["cl"].result_list] == [
        c.request_id for c in sorted(world.calls, key=lambda c: c.created_at, reverse=True)
    ]
    link = everything.context["cl"].sort_refused_url
    assert "last=24h" in link and f"o={index}" in link
    assert messages_on_page(narrow) == []


def test_a_refused_sort_offers_the_widest_recent_span_few_enough_to_sort(
    clock, staff_client, monkeypatch
):
    """Eight calls, four of them in the last hour, a limit of five: the last 24
    hours are too many as well, so the offer is the last hour."""
    from datetime import timedelta

    from tests.factories import ApiKeyFactory, CallRecordFactory

    monkeypatch.setattr(CallChangeList, "SORT_MAX_CALLS", 5)
    key = ApiKeyFactory()
    for minutes in (5, 15, 30, 50, 120, 300, 600, 1200):
        CallRecordFactory(api_key=key, created_at=clock.now - timedelta(minutes=minutes))
    index = column_index(staff_client.get(ADMIN), "duration")

    response = staff_client.get(ADMIN, {"o": str(index), "last": "24h"})

    texts = [text for _, text in messages_on_page(response)]
    assert texts == [
        "8 calls are too many to sort by this column quickly (at most 5), so they are shown "
        "newest first: narrow the time range, for instance to the last hour (the link "
        "below the totals)."
    ]
    link = response.context["cl"].sort_refused_url
    assert "last=1h" in link and f"o={index}" in link
    assert b"Sort the last hour instead" in response.content
    sorted_hour = staff_client.get(ADMIN + link)
    assert messages_on_page(sorted_hour) == []
    assert [c.duration_ms for c in sorted_hour.context["cl"].result_list] == sorted(
        (c.duration_ms for c in sorted_hour.context["cl"].result_list), reverse=True
    )
    assert len(sorted_hour.context["cl"].result_list) == 4
