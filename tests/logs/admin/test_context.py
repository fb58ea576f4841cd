"""Keeping context: a call's page leads back to the list it came from and to
its neighbours there; the search's count and its link; a time range beside a
drill-down it does not overlap; removing one filter keeps the others."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.http import QueryDict

from tests.conftest import logged_in
from tests.pages import messages_on_page
from tests.query_strings import QueryWorld, build_world, in_order

pytestmark = pytest.mark.django_db

ADMIN = "/admin/logs/callrecord/"
PORTAL = "/portal/logs/callrecord/"


@pytest.fixture
def world() -> QueryWorld:
    return build_world()


def detail(client, site, call, list_query: str):
    query = urlencode({"_changelist_filters": list_query}) if list_query else ""
    return client.get(f"{site}{call.pk}/change/?{query}")


def preserved_of(url: str) -> str:
    return parse_qs(urlsplit(url).query).get("_changelist_filters", [""])[0]


def test_the_calls_crumb_and_back_to_results_keep_the_lists_filters(world):
    client = logged_in(world.staff.user)
    list_query = "model=gpt-4o-mini&status=success&p=1"

    page = detail(client, ADMIN, world.calls[0], list_query).content.decode()

    back = f'href="{ADMIN}?model=gpt-4o-mini&amp;status=success&amp;p=1"'
    assert page.count(back) == 2  # the crumb and "Back to results"
    assert f'<a href="{ADMIN}">Calls</a>' not in page


def test_rows_link_to_their_call_with_the_lists_filters(world):
    client = logged_in(world.staff.user)
    response = client.get(ADMIN, {"model": "gpt-4o-mini"})
    page = response.content.decode()
    assert "_changelist_filters=model%3Dgpt-4o-mini" in page


@pytest.mark.parametrize("site, who", [(ADMIN, "staff"), (PORTAL, "owner")])
@pytest.mark.parametrize("list_query", ["", "model=gpt-4o-mini", "o=0", "status=error&o=-0"])
def test_previous_and_next_walk_the_list_within_its_filters_and_order(world, site, who, list_query):
    viewer = getattr(world, who)
    client = logged_in(viewer.user)
    shown = client.get(f"{site}?{list_query}")
    order = [call.request_id for call in shown.context["cl"].result_list]
    by_id = {call.request_id: call for call in world.calls}
    assert len(order) >= 2

    walked = [order[0]]
    while True:
        response = detail(client, site, by_id[walked[-1]], list_query)
        following = response.context["next_url"]
        if following is None:
            break
        assert preserved_of(following) == list_query
        walked.append(next(c.request_id for c in world.calls if f"/{c.pk}/change/" in following))
    assert walked == order

    last = detail(client, site, by_id[order[-1]], list_query)
    previous = last.context["previous_url"]
    assert f"/{by_id[order[-2]].pk}/change/" in previous
    assert detail(client, site, by_id[order[0]], list_query).context["previous_url"] is None


def test_no_neighbours_for_filters_the_list_would_refuse(world):
    client = logged_in(world.staff.user)
    response = detail(client, ADMIN, world.calls[2], "foo=bar")
    assert response.status_code == 200
    assert (response.context["previous_url"], response.context["next_url"]) == (None, None)
    assert messages_on_page(response) == []


def test_an_owner_never_steps_onto_another_accounts_call(world):
    client = logged_in(world.owner.user)
    own = world.owner.calls
    for call in own:
        response = detail(client, PORTAL, call, "")
        for url in (response.context["previous_url"], response.context["next_url"]):
            if url is not None:
                assert any(f"/{c.pk}/change/" in url for c in own)


def test_the_search_count_has_separators_and_clears_only_the_search(world):
    client = logged_in(world.staff.user)
    response = client.get(ADMIN, {"q": "qs-3", "model": "gpt-4o"})
    page = response.content.decode()
    assert "1 call with this request id" in page
    assert "Show all" not in page
    link = response.context["cl"].clear_search_qs
    assert QueryDict(link.lstrip("?")).dict() == {"model": "gpt-4o"}


def test_removing_the_time_range_keeps_the_endpoint_and_all_statuses_keep_the_code(world):
    client = logged_in(world.staff.user)
    response = client.get(
        ADMIN, {"start": "2026-11-19T21:00", "endpoint": "/v1/embeddings", "status_code": "200"}
    )
    cl = response.context["cl"]
    kept = QueryDict(cl.get_query_string(remove=["start", "end", "last"]).lstrip("?")).dict()
    assert kept == {"endpoint": "/v1/embeddings", "status_code": "200"}
    kept = QueryDict(cl.get_query_string(remove=["status"]).lstrip("?")).dict()
    assert "status_code" in kept


def test_a_time_range_outside_the_drill_down_day_says_why_nothing_matches(world):
    client = logged_in(world.staff.user)
    params = {
        "start": "2026-11-19T21:00",
        "end": "2026-11-19T23:00",
        "created_at__year": "2026",
        "created_at__month": "11",
        "created_at__day": "20",
    }
    response = client.get(ADMIN, params)
    texts = [text for _, text in messages_on_page(response)]
    assert texts == [
        "The time range (2026-11-19 21:00 to 2026-11-19 23:00) and the date chosen above the "
        "list (2026-11-20) do not overlap, so no calls match: clear one of them."
    ]
    assert list(response.context["cl"].result_list) == []
    stats = client.get(ADMIN + "stats/", params)
    assert any("do not overlap" in text for _, text in messages_on_page(stats))


def test_an_overlapping_range_and_drill_down_say_nothing(world):
    client = logged_in(world.staff.user)
    response = client.get(
        ADMIN, {"start": "2026-11-19T23:00", "created_at__year": "2026", "created_at__month": "11"}
    )
    assert messages_on_page(response) == []
    expected = [c for c in world.calls if c.created_at.isoformat() >= "2026-11-19T23:00"]
    assert [c.request_id for c in response.context["cl"].result_list] == in_order(expected)


def test_a_date_alone_as_the_end_says_the_day_is_included(world):
    client = logged_in(world.staff.user)
    response = client.get(ADMIN, {"start": "2026-11-19", "end": "2026-11-19"})
    page = response.content.decode()
    assert messages_on_page(response) == []
    assert "A date alone as the end includes that whole day" in page
    expected = [c for c in world.calls if c.created_at.date().isoformat() == "2026-11-19"]
    assert [c.request_id for c in response.context["cl"].result_list] == in_order(expected)


def test_each_row_has_a_copy_button_for_its_request_id(world):
    page = logged_in(world.staff.user).get(ADMIN).content.decode()
    for call in world.calls:
        assert f'data-copy-text="{call.request_id}"' in page


def test_the_result_count_has_thousands_separators(world, monkeypatch):
    from logs.admin.changelist import CallChangeList

    real = CallChangeList.get_results

    def many(self, request):
        real(self, request)
        self.result_count = 20000

    monkeypatch.setattr(CallChangeList, "get_results", many)
    page = logged_in(world.staff.user).get(ADMIN).content.decode()
    assert ">20,000</span> calls" in page


def test_the_live_tail_is_offered_on_the_first_newest_first_page_only(world, monkeypatch):
    from django.contrib import admin

    from logs.models import CallRecord

    monkeypatch.setattr(admin.site.get_model_admin(CallRecord), "list_per_page", 3)
    client = logged_in(world.staff.user)
    offered = 'id="live-tail"'
    assert offered in client.get(ADMIN).content.decode()
    assert offered in client.get(ADMIN, {"model": "gpt-4o", "o": "-0"}).content.decode()
    assert offered not in client.get(ADMIN, {"p": "2"}).content.decode()
    assert offered not in client.get(ADMIN, {"o": "0"}).content.decode()
    assert offered not in client.get(ADMIN, {"foo": "bar"}).content.decode()
