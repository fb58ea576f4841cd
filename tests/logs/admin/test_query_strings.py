"""Any query string on the admin and portal pages: never a server error, never a
silently unfiltered (or silently narrowed) list.

The call list, its usage stats and its export accept the sidebar filters, the
date drill-down (``created_at__year/__month/__day``), ``q``, ``o`` and ``p``
(and ``interval`` on the stats), one value each. Anything else is refused
with a message naming it and no rows (zero totals, no chart, no file); a page
number or order the list does not have gives the nearest page or the default
order, with a message. The other admin lists answer garbage without a server
error too.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.db import connection
from django.http import QueryDict
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logs.audit import record_access
from logs.models import AccessRecord, CallRecord
from logs.read.export import CSV_HEADERS
from tests.conftest import logged_in
from tests.factories import SuperuserFactory
from tests.pages import csv_rows, messages_on_page, result_rows, totals_on_page
from tests.query_strings import (
    DETAIL_NAMES,
    DRILL_DOWN,
    FILTER_NAMES,
    GOOD_TIMES,
    PRESET,
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
from usagelogs_site.portal import portal_site

pytestmark = pytest.mark.django_db

ADMIN = "/admin/logs/callrecord/"
PORTAL = "/portal/logs/callrecord/"
SITES = [pytest.param(ADMIN, "staff", id="admin"), pytest.param(PORTAL, "owner", id="portal")]
PROPERTY = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def world() -> QueryWorld:
    return build_world()


def client_of(world: QueryWorld, who: str) -> Client:
    client = logged_in(getattr(world, who).user)
    client.raise_request_exception = False
    return client


def listed(response) -> list[str]:
    calls = list(response.context["cl"].result_list)
    assert len(result_rows(response)) == len(calls)
    return [call.request_id for call in calls]


def texts(response) -> list[str]:
    return [text for _, text in messages_on_page(response)]


def assert_refused(response, *, naming: str) -> None:
    """The list answers itself (no redirect), names the parameter, shows nothing."""
    assert response.status_code == 200
    assert any(naming in text for text in texts(response)), texts(response)
    assert listed(response) == []
    assert totals_on_page(response)["calls"] == "0"


def few_per_page(monkeypatch, per_page: int) -> None:
    for site in (admin.site, portal_site):
        monkeypatch.setattr(site.get_model_admin(CallRecord), "list_per_page", per_page)


# --- page numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("site, who", SITES)
@pytest.mark.parametrize(
    "page, shown", [("0", 1), ("-1", 1), ("last+1", "last"), ("999999", "last"), ("9" * 40, "last")]
)
def test_a_page_the_list_does_not_have_shows_the_nearest_with_a_message(
    world, monkeypatch, site, who, page, shown
):
    few_per_page(monkeypatch, 2)
    viewer = getattr(world, who)
    last = math.ceil(len(viewer.calls) / 2)
    page = str(last + 1) if page == "last+1" else page
    shown = last if shown == "last" else shown

    response = client_of(world, who).get(site, {"p": page})

    assert response.status_code == 200
    assert response.context["cl"].page_num == shown
    assert f"this is page {shown} of {last}" in " ".join(texts(response))
    newest_first = in_order(viewer.calls)
    assert listed(response) == newest_first[(shown - 1) * 2 : shown * 2]


# --- the date drill-down ------------------------------------------------------------------

BAD_DRILL_DOWNS = [
    pytest.param({"created_at__year": "9999"}, id="year-9999"),
    pytest.param(
        {"created_at__year": "9999", "created_at__month": "12", "created_at__day": "31"},
        id="9999-12-31",
    ),
    pytest.param({"created_at__year": "9" * 40}, id="40-digit-year"),
    pytest.param({"created_at__year": "abcd"}, id="year-abcd"),
    pytest.param({"created_at__year": "2026", "created_at__month": "13"}, id="month-13"),
    pytest.param({"created_at__year": "2026", "created_at__month": "0"}, id="month-0"),
    pytest.param(
        {"created_at__year": "2026", "created_at__month": "11", "created_at__day": "0"},
        id="day-0",
    ),
    pytest.param({"created_at__month": "11"}, id="month-without-year"),
    pytest.param({"created_at__year": "1899"}, id="year-1899"),
]


@pytest.mark.parametrize("site, who", SITES)
@pytest.mark.parametrize("params", BAD_DRILL_DOWNS)
def test_a_bad_date_drill_down_is_a_message_and_no_rows_on_list_stats_and_export(
    world, site, who, params
):
    client = client_of(world, who)

    assert_refused(client.get(site, params), naming="The date “created_at__")

    stats = client.get(site + "stats/", params)
    assert stats.status_code == 200
    assert any(text.startswith("The date “created_at__") for text in texts(stats))
    assert stats.context["stats"].totals.calls == 0

    export = client.get(site + "export/", params)
    assert export.status_code == 400
    assert any(text.startswith("The date “created_at__") for text in texts(export))


def test_a_drill_down_in_the_last_year_offered_still_works(world, staff_client):
    response = staff_client.get(
        ADMIN, {"created_at__year": "9998", "created_at__month": "12", "created_at__day": "31"}
    )
    assert response.status_code == 200
    assert texts(response) == []
    assert listed(response) == []


# --- time zone offsets ----------------------------------------------------------------------


@pytest.mark.parametrize("site, who", SITES)
@pytest.mark.parametrize(
    "params, name",
    [
        ({"start": "2026-11-19T00:00+16:00"}, "start"),
        ({"end": "2026-11-21T00:00-22:37"}, "end"),
    ],
)
def test_a_zone_offset_beyond_1559_is_a_message_not_a_server_error(world, site, who, params, name):
    client = client_of(world, who)

    response = client.get(site, params)
    assert response.status_code == 200
    assert any(
        text.startswith(f"Time range {name}:") and "time zone offset beyond ±15:59" in text
        for text in texts(response)
    ), texts(response)
    assert listed(response) == []

    export = client.get(site + "export/", params)
    assert export.status_code == 400  # before any CSV header, not a broken stream
    assert not AccessRecord.objects.exists()


def test_a_zone_offset_of_1400_is_the_instant_it_names(world, staff_client):
    # 2026-11-20 12:00 at +14:00 is 2026-11-19 22:00 UTC.
    response = staff_client.get(ADMIN, {"start": "2026-11-20T12:00+14:00"})

    assert texts(response) == []
    since = datetime(2026, 11, 19, 22, 0, tzinfo=UTC)
    assert listed(response) == in_order([c for c in world.calls if c.created_at >= since])


# --- NUL and the access record ---------------------------------------------------------------


@pytest.mark.parametrize("site, who", SITES)
@pytest.mark.parametrize(
    "query", ["foo=%00", "model=%00", "q=%00", "o=%00", "start=2026-11-19%00", "p=%00"]
)
def test_a_nul_anywhere_in_an_export_is_refused_before_anything_is_written(world, site, who, query):
    client = client_of(world, who)

    response = client.get(f"{site}export/?{query}")

    assert response.status_code == 400
    assert any("contains a NUL character" in text for text in texts(response))
    assert not AccessRecord.objects.exists()
    assert_refused(client.get(f"{site}?{query}"), naming="contains a NUL character")


@pytest.mark.postgres
def test_an_access_record_keeps_a_nul_as_a_visible_stand_in(world):
    """PostgreSQL's jsonb cannot hold U+0000; the record of a read must not fail on it."""
    record = record_access(
        user=world.staff.user,
        action=AccessRecord.Action.EXPORT,
        surface=AccessRecord.Surface.API,
        filters={"model": "a\x00b", "k\x00": "v"},
    )
    record.refresh_from_db()
    assert record.filters == {"model": "a\ufffdb", "k\ufffd": "v"}
    assert connection.vendor == "postgresql"


def test_an_export_records_only_the_filters_it_applied(world, staff_client):
    params = {"model": "gpt-4o", "status": "server_error", "o": "0", "p": "3"}

    response = staff_client.get(ADMIN + "export/", params)

    assert [row[1] for row in csv_rows(response)[1:]] == ["qs-5"]
    assert AccessRecord.objects.get().filters == {
        "model": "gpt-4o",
        "status": "server_error",
        "o": "0",
    }


# --- unknown parameters, e=1, several values ------------------------------------------------


@pytest.mark.parametrize("site, who", SITES)
@pytest.mark.parametrize(
    "params, naming",
    [
        ({"foo": "bar"}, "“foo” is not a filter of this list"),
        ({"status_code__gte": "500"}, "“status_code__gte” is not a filter of this list"),
        ({"account__name": "Globex"}, "“account__name” is not a filter of this list"),
        ({"created_at__gte": "2026-11-20"}, "“created_at__gte” is not a filter of this list"),
        ({"e": "1"}, "“e” marks an address whose filters were not valid"),
        ({"model": ["gpt-4o", "gpt-4o-mini"]}, "“model” takes one value, and the address gives 2"),
        ({"q": ["qs-0", "qs-3"]}, "“q” takes one value"),
    ],
)
def test_a_parameter_that_is_not_a_known_filter_is_refused_without_a_redirect(
    world, site, who, params, naming
):
    client = client_of(world, who)
    query = urlencode(params, doseq=True)

    assert_refused(client.get(f"{site}?{query}"), naming=naming)

    stats = client.get(f"{site}stats/?{query}")
    assert stats.status_code == 200
    assert any(naming in text for text in texts(stats)), texts(stats)
    assert stats.context["stats"].totals.calls == 0

    export = client.get(f"{site}export/?{query}")
    assert export.status_code == 400
    assert any(naming in text for text in texts(export))


def test_the_stats_interval_is_no_filter_of_the_list_or_the_export(world, staff_client):
    naming = "“interval” is not a filter of this list"
    assert_refused(staff_client.get(ADMIN, {"interval": "day"}), naming=naming)
    export = staff_client.get(ADMIN + "export/", {"interval": "day"})
    assert export.status_code == 400
    assert any(naming in text for text in texts(export))


def test_a_lookup_the_sidebar_does_not_offer_narrows_nothing_behind_the_totals(world):
    """/portal/...?status_code__gte=500 used to narrow the rows but not the totals,
    the page count or the deep-page seek."""
    client = client_of(world, "owner")

    response = client.get(PORTAL, {"status_code__gte": "500"})

    assert_refused(response, naming="status_code__gte")
    assert response.context["cl"].paginator.num_pages == 1
    assert response.context["totals"].calls == 0


def test_the_clear_all_link_of_a_refused_list_leads_to_a_clean_one(world, staff_client):
    response = staff_client.get(ADMIN, {"foo": "bar", "model": "gpt-4o", "q": "qs-3"})
    clear = response.context["cl"].clear_all_filters_qs

    cleared = staff_client.get(ADMIN + clear)

    assert QueryDict(clear.lstrip("?")).dict() == {"q": "qs-3"}
    assert texts(cleared) == []
    assert listed(cleared) == ["qs-3"]


def test_a_drill_down_leaves_no_raw_lookup_in_the_clear_all_link(world, staff_client):
    response = staff_client.get(ADMIN, {"created_at__year": "2026", "model": "gpt-4o"})

    cleared = staff_client.get(ADMIN + response.context["cl"].clear_all_filters_qs)

    assert texts(cleared) == []
    assert listed(cleared) == in_order(world.calls)


def test_the_stats_interval_takes_one_value(world, staff_client):
    response = staff_client.get(ADMIN + "stats/?interval=hour&interval=day")

    assert any("“interval” takes one value" in text for text in texts(response))
    assert response.context["stats"].totals.calls == len(world.calls)


def test_an_order_the_list_does_not_offer_is_the_default_order_with_a_message(world, staff_client):
    response = staff_client.get(ADMIN, {"o": "3"})

    assert texts(response) == [
        "Order “3” is not one this list offers, so it is in its default order."
    ]
    assert listed(response) == in_order(world.calls)
    assert listed(staff_client.get(ADMIN, {"o": "0"})) == in_order(world.calls, False)


def test_a_search_reads_the_whole_request_id_like_the_totals(world, staff_client):
    """Django's search would unquote '"qs-0"' and find qs-0, which the totals
    (request id '"qs-0"') do not count."""
    for term, shown in ((" qs-0 ", ["qs-0"]), ('"qs-0"', []), ("qs-0 qs-1", [])):
        response = staff_client.get(ADMIN, {"q": term})
        assert listed(response) == shown, term
        assert response.context["totals"].calls == len(shown), term


# --- an export's messages ---------------------------------------------------------------------


@pytest.mark.parametrize("site, who", SITES)
def test_an_export_with_a_bad_filter_leaves_no_message_for_the_next_page(world, site, who):
    client = client_of(world, who)

    refused = client.get(site + "export/", {"start": "2026-11-21", "end": "2026-11-20"})
    following = client.get(site)

    assert refused.status_code == 400
    assert texts(refused) == [
        "Time range: the end must be after the start. No calls are shown until it is fixed."
    ]
    assert "Nothing was exported" in refused.content.decode()
    assert texts(following) == []
    assert len(listed(following)) == len(getattr(world, who).calls)


# --- the other admin lists ------------------------------------------------------------------

OTHER_LISTS = [
    "/admin/logs/accessrecord/",
    "/admin/logs/prunerun/",
    "/admin/logs/importrun/",
    "/admin/accounts/apikey/",
    "/admin/accounts/account/",
    "/admin/accounts/membership/",
    "/admin/accounts/group/",
    "/admin/accounts/accesstoken/",
    "/admin/auth/user/",
    "/admin/auth/group/",
]


@pytest.mark.parametrize(
    "url, query, naming",
    [
        ("/admin/logs/accessrecord/", "at__year=9999", "The date “at__year=9999”"),
        ("/admin/logs/accessrecord/", "at__year=" + "9" * 40, "The date “at__year="),
        ("/admin/logs/prunerun/", "ran_at__year=9999", "The date “ran_at__year=9999”"),
        ("/admin/accounts/apikey/", "created_at__year=" + "9" * 40, "“created_at__year”"),
        ("/admin/accounts/apikey/", "name=%00", "“name” contains a NUL character"),
        ("/admin/accounts/membership/", "role__exact=%00", "“role__exact” contains a NUL"),
        ("/admin/auth/user/", "username=%00", "“username” contains a NUL character"),
        ("/admin/accounts/apikey/", "foo=bar", "“foo” is not a filter of this list"),
        ("/admin/accounts/apikey/", "group__name=vip", "“group__name” is not a filter"),
        ("/admin/accounts/apikey/", "group__id__exact=abc", "“group__id__exact” are not valid"),
    ],
)
def test_the_other_lists_refuse_garbage_with_a_message(world, url, query, naming):
    client = logged_in(SuperuserFactory(username="qs-root"))
    client.raise_request_exception = False

    response = client.get(f"{url}?{query}")

    assert response.status_code == 200
    assert any(naming in text for text in texts(response)), texts(response)
    assert list(response.context["cl"].result_list) == []


def test_the_other_lists_keep_djangos_own_filters(world):
    client = logged_in(SuperuserFactory(username="qs-root"))

    response = client.get("/admin/accounts/apikey/", {"group__id__exact": world.groups["vip"].pk})

    assert texts(response) == []
    assert [key.name for key in response.context["cl"].result_list] == ["acme-batch"]


# --- properties: any query string -------------------------------------------------------------


def judge(query: str, page: str, viewer: Viewer) -> tuple[str, list[str]]:
    """("refused" | "notice" | "clean", the request ids the page must list)
    for a query string, from what the pages promise (see the module docstring)."""
    params = QueryDict(query)
    if params.get("_to_field", "") not in ("", "id"):
        return "bad request", []  # Django's own check on popups' field references
    refused = notice = False
    predicates = []
    ordering = None  # None: newest first
    moments: dict[str, datetime] = {}
    known = {*FILTER_NAMES, *DETAIL_NAMES, PRESET, *DRILL_DOWN, "q", "o", "p"}
    preset = None
    for name, values in params.lists():
        value = values[-1]
        if page == "stats" and name == "interval":
            # Read by the stats page itself: a bad one is the default, with a message.
            notice |= len(values) > 1 or value.strip() not in ("", "hour", "day")
            continue
        if name == "e" or name not in known or len(values) > 1 or "\x00" in name or "\x00" in value:
            refused = True
        elif name in ("start", "end"):
            if value.strip():
                moment = GOOD_TIMES.get(value.strip())
                if moment is None:
                    refused = True
                else:
                    moments[name] = moment
        elif name in DETAIL_NAMES:
            predicate = detail_predicate(name, value)
            if predicate is False:
                refused = True
            elif predicate is not None:
                predicates.append(predicate)
        elif name == PRESET:
            if value.strip() and value not in PRESETS:
                refused = True
            elif value.strip():
                preset = PRESETS[value]
        elif name in FILTER_NAMES:
            if value == "":
                continue
            if value not in viewer.choices[name]:
                refused = True
            else:
                predicates.append(matches(name, value))
        elif name == "q":
            term = value.strip()
            if term:
                predicates.append(lambda c, v=term: c.request_id == v)
        elif name == "o":
            ordering = sort_order(value, portal=not viewer.choices["account"])
            if ordering is False:
                notice, ordering = True, None
        elif name == "p" and value and page == "list":  # the only page with pages
            try:
                notice |= int(value) != 1
            except ValueError:
                notice = True
    if "start" in moments and "end" in moments and moments["end"] <= moments["start"]:
        refused = True
    if preset is not None:
        # A span back from now, with no start or end beside it.
        if any(params.get(name, "").strip() for name in ("start", "end")):
            refused = True
        moments["start"] = timezone.now() - preset
    for name, moment in moments.items():
        if name == "start":
            predicates.append(lambda c, m=moment: c.created_at >= m)
        else:
            predicates.append(lambda c, m=moment: c.created_at < m)
    drill = drill_down_range(params)
    if drill is False:
        refused = True
    elif drill is not None:
        predicates.append(lambda c, r=drill: r[0] <= c.created_at < r[1])
        # A time range beside a drill-down it does not overlap: the pages say why nothing matches.
        if ("start" in moments and moments["start"] >= drill[1]) or (
            "end" in moments and moments["end"] <= drill[0]
        ):
            notice = True
    if refused:
        return "refused", []
    rows = [c for c in viewer.calls if all(p(c) for p in predicates)]
    if page == "stats" and params.get("interval", "").strip() == "hour" and rows and not notice:
        notice = too_many_hours(moments, drill, rows)
    if ordering is None or page != "list":
        return ("notice" if notice else "clean"), in_order(rows)
    return ("notice" if notice else "clean"), sorted_ids(rows, ordering)


# The list's sortable columns (admin; the portal has no account column): the
# time, oldest first on "0"; the measures, largest first on their index.
SORTABLE = {
    "0": (lambda c: c.created_at, False),
    "8": (lambda c: c.duration_ms, True),
    "10": (lambda c: c.total_tokens, True),
    "11": (lambda c: c.usage, True),
    "12": (lambda c: c.cost, True),
}


def sort_order(value: str, *, portal: bool):
    """[(key, descending)] for ``o``; None for none; False for an order the list refuses."""
    if value == "":
        return None
    columns = value.split(".")
    offered = {
        (str(int(index) - 1) if portal and index != "0" else index): how
        for index, how in SORTABLE.items()
    }
    bare = [column.removeprefix("-") for column in columns]
    if not all(column in offered for column in bare) or len(set(bare)) != len(bare):
        return False
    return [
        (
            offered[column.removeprefix("-")][0],
            offered[column.removeprefix("-")][1] != column.startswith("-"),
        )
        for column in columns
    ]


def sorted_ids(rows, ordering) -> list[str]:
    ordered = sorted(rows, key=lambda c: c.pk, reverse=True)  # the list's tie-break
    for key, descending in reversed(ordering):
        ordered = sorted(ordered, key=key, reverse=descending)
    return [c.request_id for c in ordered]


def matches(name: str, value: str):
    status = {
        "success": (0, 400),
        "client_error": (400, 500),
        "server_error": (500, 1000),
        "error": (400, 1000),
    }
    if name == "streamed":
        return streamed_predicate(value)
    return {
        "account": lambda c: str(c.account_id) == value,
        "model": lambda c: c.model == value,
        "key_name": lambda c: c.api_key.name == value,
        "group": lambda c: c.group.name == value,
        "call_type": lambda c: c.call_type == value,
        "status": lambda c: status[value][0] <= c.status_code < status[value][1],
        "tag": lambda c: value in c.tags,
        "end_user": lambda c: c.end_user == value,
    }[name]


def drill_down_range(params: QueryDict):
    """[start, end) of the drill-down; None without one; False if refused."""
    year, month, day = (params.get(name, "") for name in DRILL_DOWN)
    if not (year or month or day):
        return None
    for value, digits in ((year, 4), (month, 2), (day, 2)):
        if value and not (value.isascii() and value.isdigit() and len(value) <= digits):
            return False
    if not year or (day and not month) or not 1900 <= int(year) <= 9998:
        return False
    try:
        start = datetime(int(year), int(month or 1), int(day or 1))
    except ValueError:
        return False
    if day:
        end = start + timedelta(days=1)
    elif month:
        end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1)
    else:
        end = datetime(start.year + 1, 1, 1)
    return timezone.make_aware(start), timezone.make_aware(end)


def too_many_hours(moments, drill, rows) -> bool:
    """Whether the stats page falls back from hours to days, with a message."""
    starts = [m for m in (moments.get("start"), drill and drill[0]) if m]
    ends = [m for m in (moments.get("end"), drill and drill[1]) if m]
    first = max(starts) if starts else min(c.created_at for c in rows)
    last = min(ends) - timedelta(microseconds=1) if ends else max(c.created_at for c in rows)
    hours = last.replace(minute=0, second=0, microsecond=0) - first.replace(minute=0, second=0)
    return hours.total_seconds() // 3600 + 1 > 24 * 31


def check_call_pages(client: Client, site: str, viewer: Viewer, query: str) -> None:
    context = describe(query)
    response = client.get(f"{site}?{query}")
    verdict, rows = judge(query, "list", viewer)
    if verdict == "bad request":
        for page in ("", "stats/", "export/"):
            assert client.get(f"{site}{page}?{query}").status_code == 400, context
        return
    assert response.status_code == 200, context
    assert listed(response) == rows, context
    assert totals_on_page(response)["calls"] == str(len(rows)), context
    assert bool(texts(response)) == (verdict != "clean"), (context, texts(response))

    stats = client.get(f"{site}stats/?{query}")
    assert stats.status_code == 200, context
    verdict, rows = judge(query, "stats", viewer)
    assert stats.context["stats"].totals.calls == len(rows), context
    assert bool(texts(stats)) == (verdict != "clean"), (context, texts(stats))

    export = client.get(f"{site}export/?{query}")
    verdict, rows = judge(query, "export", viewer)
    if verdict == "refused":
        assert export.status_code == 400, context
        assert texts(export), context
    else:
        assert export.status_code == 200, context
        exported = csv_rows(export)
        assert exported[0] == CSV_HEADERS
        # An export is newest first whatever the list's order.
        assert [row[1] for row in exported[1:]] == sorted(rows, key=newest_first), context


def newest_first(request_id: str) -> int:
    return -int(request_id.removeprefix("qs-"))  # the world's ids follow its times


@pytest.mark.parametrize("site, who", SITES)
def test_any_query_string_on_the_call_pages(world, site, who):
    """List, usage stats, export and a call's page, as staff (admin) and as an
    owner (portal): no 5xx; rows only for a query string of known filters with
    good values, and exactly the rows they select; a message whenever anything
    was refused or fell back; and no rows at all when something was refused."""
    viewer = getattr(world, who)
    client = client_of(world, who)
    names = (*FILTER_NAMES, *DETAIL_NAMES, PRESET, *DRILL_DOWN, "q", "o", "p", "interval")
    own, others = world.calls[0], world.calls[1]  # of Acme, of Globex

    @PROPERTY
    @given(query=query_strings(names, world))
    def check(query):
        check_call_pages(client, site, viewer, query)
        detail = client.get(f"{site}{own.pk}/change/?{query}")
        assert detail.status_code == 200, describe(query)
        # Another account's call reads like a missing one (its message read at once).
        other = client.get(f"{site}{others.pk}/change/?{query}", follow=True)
        assert other.status_code == 200, describe(query)
        assert bool(other.redirect_chain) == (who == "owner"), describe(query)

    check()


def test_totals_equal_the_rows_across_pages_for_every_accepted_query_string(world, monkeypatch):
    """The totals bar, the page count and the deep-page seek describe exactly
    the rows the pages list, whatever the (accepted) filters; anything they
    cannot describe (a raw lookup) is refused."""
    few_per_page(monkeypatch, 3)
    names = (
        *FILTER_NAMES,
        *DETAIL_NAMES,
        PRESET,
        *DRILL_DOWN,
        "q",
        "o",
        "status_code__gte",
        "model__in",
    )

    @PROPERTY
    @given(query=query_strings(names, world), who=st.sampled_from(["staff", "owner"]))
    def check(query, who):
        params = QueryDict(query, mutable=True)
        params.pop("p", None)  # the walk sets the page
        query = params.urlencode()
        site = ADMIN if who == "staff" else PORTAL
        viewer, client = getattr(world, who), client_of(world, who)
        verdict, rows = judge(query, "list", viewer)
        if verdict == "bad request":
            return
        first = client.get(f"{site}?{query}")
        total = first.context["totals"].calls
        if verdict == "refused":
            assert (total, listed(first)) == (0, []), describe(query)
            return
        cl = first.context["cl"]
        assert cl.paginator.num_pages == max(1, math.ceil(total / 3)), describe(query)
        seen = listed(first)
        for number in range(2, cl.paginator.num_pages + 1):
            seen += listed(client.get(f"{site}?{query}&p={number}"))
        assert total == len(seen), describe(query)
        assert seen == rows, describe(query)

    check()


def test_any_query_string_on_the_other_lists(world):
    """No 5xx and no redirect to ?e=1 on any other list of either site."""
    root = logged_in(SuperuserFactory(username="qs-root"))
    root.raise_request_exception = False
    owner = client_of(world, "owner")
    lists = [(root, url) for url in OTHER_LISTS] + [
        (owner, "/portal/accounts/apikey/"),
        (owner, "/portal/accounts/accesstoken/"),
    ]
    names = (
        "q",
        "o",
        "p",
        "all",
        "name",
        "name__exact",
        "username",
        "created_at__year",
        "created_at__month",
        "at__year",
        "ran_at__year",
        "ran_at__month",
        "action__exact",
        "surface__exact",
        "role__exact",
        "account__id__exact",
        "group__id__exact",
        "revoked_at__isempty",
        "can_ingest__exact",
        "is_staff__exact",
        "groups__id__exact",
    )

    @PROPERTY
    @given(query=query_strings(names, world), which=st.sampled_from(lists))
    def check(query, which):
        client, url = which
        response = client.get(f"{url}?{query}")
        assert response.status_code in (200, 400), (url, describe(query), response.status_code)

    check()
