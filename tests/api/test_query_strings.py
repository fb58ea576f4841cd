"""Any query string on the API: a 400 naming each parameter an endpoint does
not read or gets more than once, or whose value is bad; otherwise exactly the
calls the filters select. Never a 5xx, and every answer but a CSV is JSON,
500s included.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logs.models import AccessRecord, CallType, StatusClass
from logs.read.stats import STATS_GROUP_BY
from tests.api.helpers import (
    EXPORT_URL,
    FILTER_PARAMETERS,
    LIST_URL,
    STATS_URL,
    csv_rows,
    detail_url,
    request_ids,
    session_client,
)
from tests.query_strings import (
    DETAIL_NAMES,
    PRESETS,
    QueryWorld,
    Viewer,
    build_world,
    describe,
    detail_predicate,
    in_order,
    query_strings,
    streamed_predicate,
)

pytestmark = pytest.mark.django_db

ENDPOINTS = [LIST_URL, EXPORT_URL, STATS_URL, "detail"]


@pytest.fixture
def world() -> QueryWorld:
    return build_world()


def api_of(viewer: Viewer):
    return session_client(viewer.user)


def url_of(endpoint: str, world: QueryWorld) -> str:
    return detail_url(world.calls[0].pk) if endpoint == "detail" else endpoint


# --- unknown and repeated parameters ----------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "query, named",
    [
        ("foo=bar", {"foo"}),
        ("status_code__gte=500", {"status_code__gte"}),
        ("foo=%00", {"foo"}),
        ("model=gpt-4o&model=gpt-4o-mini", {"model"}),
        ("start=2026-11-19T00:00Z&start=2026-11-20T00:00Z&bar=", {"start", "bar"}),
    ],
)
def test_an_unknown_or_repeated_parameter_is_a_400_naming_it(world, endpoint, query, named):
    response = api_of(world.staff).get(f"{url_of(endpoint, world)}?{query}")

    assert response.status_code == 400
    assert set(response.json()) == named
    assert not AccessRecord.objects.exists()


@pytest.mark.parametrize(
    "endpoint, query, name",
    [
        (EXPORT_URL, "cursor=abc", "cursor"),
        (EXPORT_URL, "page_size=10", "page_size"),
        (STATS_URL, "page_size=10", "page_size"),
        (LIST_URL, "interval=day", "interval"),
        (LIST_URL, "group_by=model", "group_by"),
        ("detail", "page_size=10", "page_size"),
    ],
)
def test_a_parameter_of_another_endpoint_is_a_400_naming_it(world, endpoint, query, name):
    response = api_of(world.staff).get(f"{url_of(endpoint, world)}?{query}")

    assert response.status_code == 400
    assert list(response.json()) == [name]


@pytest.mark.parametrize(
    "endpoint, query",
    [
        (LIST_URL, "page_size=2&cursor="),
        (STATS_URL, "interval=hour&group_by=model"),
        (EXPORT_URL, "model=gpt-4o&format=json"),
    ],
)
def test_each_endpoints_own_parameters_are_known(world, endpoint, query):
    assert api_of(world.staff).get(f"{endpoint}?{query}").status_code == 200


# --- zone offsets and cursors -----------------------------------------------------------------


@pytest.mark.parametrize("endpoint", [LIST_URL, EXPORT_URL, STATS_URL])
@pytest.mark.parametrize(
    "params, name",
    [
        ({"start": "2026-11-19T00:00+16:00"}, "start"),
        ({"end": "2026-11-21T00:00-22:37"}, "end"),
        ({"start": "2026-11-19T00:00:00+23:59"}, "start"),
    ],
)
def test_a_zone_offset_beyond_1559_is_a_400_naming_it(world, endpoint, params, name):
    response = api_of(world.staff).get(endpoint, params)

    assert response.status_code == 400  # an export answers before any CSV is sent
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {name: ["has a time zone offset beyond ±15:59"]}
    assert not AccessRecord.objects.exists()


def test_a_zone_offset_within_1559_names_its_instant(world):
    # 2026-11-20 12:00 at +14:00 is 2026-11-19 22:00 UTC.
    response = api_of(world.staff).get(LIST_URL, {"start": "2026-11-20T12:00:00+14:00"})

    since = datetime(2026, 11, 19, 22, 0, tzinfo=UTC)
    assert request_ids(response.json()["results"]) == in_order(
        [c for c in world.calls if c.created_at >= since]
    )


def test_a_cursor_with_an_offset_beyond_1559_is_a_400(world):
    import base64
    import json

    raw = json.dumps(["next", "2026-11-20T10:00:00+16:00", 1]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")

    response = api_of(world.staff).get(LIST_URL, {"cursor": cursor})

    assert response.status_code == 400
    assert list(response.json()) == ["cursor"]


def test_an_export_records_only_its_filters(world):
    response = api_of(world.staff).get(EXPORT_URL, {"model": "gpt-4o", "format": "json"})

    assert [row[1] for row in csv_rows(response)[1:]] == ["qs-5", "qs-3"]
    assert AccessRecord.objects.get().filters == {"model": "gpt-4o"}


# --- server errors ---------------------------------------------------------------------------


def test_an_unexpected_error_in_the_api_is_a_json_500(world, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the rollups are unreadable")

    monkeypatch.setattr("logs.api.views.scoped_usage_stats", broken)

    response = api_of(world.staff).get(STATS_URL)

    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert "Server error" in response.json()["detail"]
    assert "rollups" not in response.content.decode()  # no detail of the failure


def test_an_unexpected_error_elsewhere_is_still_djangos_page(world, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("logs.admin.calls.build_usage_stats", broken)
    client = session_client(world.staff.user)

    response = client.get("/admin/logs/callrecord/stats/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


# --- property: any query string ------------------------------------------------------------


def judge(query: str, endpoint: str, viewer: Viewer, world: QueryWorld):
    """("400", the names the error must name exactly or at least in part) or
    ("200", the request ids the endpoint must answer with, newest first)."""
    params = QueryDict(query)
    known = set(FILTER_PARAMETERS) | {
        LIST_URL: {"cursor", "page_size"},
        STATS_URL: {"interval", "group_by"},
    }.get(endpoint, set())
    wrong = {name for name, values in params.lists() if name not in known or len(values) > 1}
    if wrong:
        return "400 exactly", wrong
    bad, predicates, moments = set(), [], {}
    for name, value in params.items():
        stripped = value.strip()
        if name in ("start", "end"):
            # Empty is no filter; only spaces is not a time (Django's form field says so).
            moment = parsed_time(stripped) if stripped else None
            if value and moment is None:
                bad.add(name)
            elif moment is not None:
                moments[name] = moment
        elif name in ("model", "key_name", "group", "request_id", "tag", "end_user"):
            if "\x00" in value:
                bad.add(name)
            elif stripped:
                predicates.append(text_match(name, stripped))
        elif name in DETAIL_NAMES:
            predicate = detail_predicate(name, value)
            if predicate is False:
                bad.add(name)
            elif predicate is not None:
                predicates.append(predicate)
        elif name == "last":
            if value and value not in PRESETS:
                bad.add(name)
            elif value:
                moments["last"] = timezone.now() - PRESETS[value]
        elif name == "streamed":
            if value and value not in ("yes", "no"):
                bad.add(name)
            elif value:
                predicates.append(streamed_predicate(value))
        elif name in ("call_type", "status"):
            choices = CallType.values if name == "call_type" else [*StatusClass.values, "error"]
            if value and value not in choices:
                bad.add(name)
            elif value:
                predicates.append(choice_match(name, value))
        elif name == "account":
            number = whole_number(re.sub(r"\.0*\s*$", "", stripped)) if stripped else None
            if value and (number is None or not 1 <= number < 2**63):
                bad.add(name)
            elif number is not None:
                predicates.append(lambda c, n=number: c.account_id == n)
        elif name == "page_size":
            number = whole_number(value) if value else 100
            if number is None or not 1 <= number <= 1000:
                bad.add(name)
        elif name == "cursor":
            if value:
                bad.add(name)  # the strategies never make a real one
        elif name == "interval":
            if value not in ("", "hour", "day"):  # DRF reads an empty one as absent
                bad.add(name)
        elif name == "group_by" and value not in ("", *STATS_GROUP_BY):
            bad.add(name)
    if "last" in moments:
        # A span back from now takes no start or end beside it.
        if "start" in moments or "end" in moments:
            bad.add("last")
        else:
            moments["start"] = moments["last"]
        del moments["last"]
    if "start" in moments and "end" in moments and moments["end"] <= moments["start"]:
        bad.add("end")
    if bad:
        return "400 some of", bad
    for name, moment in moments.items():
        if name == "start":
            predicates.append(lambda c, m=moment: c.created_at >= m)
        else:
            predicates.append(lambda c, m=moment: c.created_at < m)
    rows = [c for c in viewer.calls if all(p(c) for p in predicates)]
    if endpoint == "detail":
        rows = [c for c in rows if c.pk == world.calls[0].pk]
    size = whole_number(params.get("page_size") or "100")
    return "200", in_order(rows)[: size if endpoint == LIST_URL else None]


def parsed_time(text: str):
    try:
        moment = parse_datetime(text)
    except ValueError:
        return None
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    offset = moment.utcoffset().total_seconds()
    if abs(offset) > 15 * 3600 + 59 * 60:
        return None
    try:
        return moment if 1900 <= moment.astimezone(UTC).year <= 9998 else None
    except OverflowError:
        return None


def whole_number(text: str):
    try:
        return int(text)
    except ValueError:
        return None


def text_match(name: str, value: str):
    return {
        "model": lambda c: c.model == value,
        "key_name": lambda c: c.api_key.name == value,
        "group": lambda c: c.group.name == value,
        "request_id": lambda c: c.request_id == value,
        "tag": lambda c: value in c.tags,
        "end_user": lambda c: c.end_user == value,
    }[name]


def choice_match(name: str, value: str):
    if name == "call_type":
        return lambda c: c.call_type == value
    bounds = {
        "success": (0, 400),
        "client_error": (400, 500),
        "server_error": (500, 1000),
        "error": (400, 1000),
    }
    return lambda c: bounds[value][0] <= c.status_code < bounds[value][1]


def check_endpoint(api, endpoint: str, query: str, viewer: Viewer, world: QueryWorld) -> None:
    context = (endpoint, describe(query))
    response = api.get(f"{url_of(endpoint, world)}?{query}")
    assert response.status_code < 500, context
    verdict, expected = judge(query, endpoint, viewer, world)
    csv = response.status_code == 200 and endpoint == EXPORT_URL
    if not csv:
        assert response["Content-Type"].startswith("application/json"), context
    if verdict.startswith("400"):
        assert response.status_code == 400, (context, verdict, expected)
        named = set(response.json())
        if verdict == "400 exactly":
            assert named == expected, (context, named)
        else:
            assert named and named <= expected, (context, named, expected)
        return
    if endpoint == "detail":
        assert response.status_code == (200 if expected else 404), context
    else:
        assert response.status_code == 200, (context, response.content[:300])
    if endpoint == LIST_URL:
        assert request_ids(response.json()["results"]) == expected, context
    elif endpoint == EXPORT_URL:
        assert [row[1] for row in csv_rows(response)[1:]] == expected, context
    elif endpoint == STATS_URL:
        assert response.json()["totals"]["calls"] == len(expected), context


@pytest.mark.parametrize("who", ["staff", "owner"])
def test_any_query_string_on_the_api(world, who):
    """Every endpoint as staff and as an account owner, with each endpoint's
    own parameters and others."""
    viewer = getattr(world, who)
    api = api_of(viewer)
    own = {LIST_URL: ("page_size", "cursor"), STATS_URL: ("interval", "group_by")}
    queries = {
        endpoint: query_strings(
            (*FILTER_PARAMETERS, *own.get(endpoint, ()), "page_size", "interval"), world
        )
        for endpoint in ENDPOINTS
    }

    @settings(
        max_examples=100,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data(), endpoint=st.sampled_from(ENDPOINTS))
    def check(data, endpoint):
        query = data.draw(queries[endpoint], label="query")
        if "format" in QueryDict(query):
            return  # DRF's renderer choice (?format=api is the HTML browsable API)
        check_endpoint(api, endpoint, query, viewer, world)

    check()
