"""The calls REST API as a client sees it: authentication, what each caller
may see, filters, keyset pagination, call detail, CSV export and stats.

Most tests read the ``catalog`` (tests/api/conftest.py): two accounts, fifteen
calls at fixed times, with ties on created_at, microseconds and errors of
every class. Expected answers are worked out here from the stored calls (or
from the list the API itself returned), never from the code under test.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from accounts.models import AccessToken
from accounts.services import revoke_access_token
from logs.ingest.service import ingest_calls
from logs.models import AccessRecord, CallRecord
from logs.read.export import CSV_HEADERS
from tests.api.helpers import (
    ADMIN_EXPORT_URL,
    EXPORT_URL,
    LIST_URL,
    MINUS_0800,
    PLUS_0530,
    STATS_URL,
    body_of,
    client,
    csv_rows,
    detail_url,
    expected_csv_cells,
    iso_in,
    parse_time,
    request_ids,
    session_client,
    token_client,
    walk,
)
from tests.api.helpers import (
    token_for as new_token,
)
from tests.clock import at_instants
from tests.factories import (
    OMIT,
    AccountFactory,
    ApiKeyFactory,
    GroupFactory,
    StaffUserFactory,
    UserFactory,
    make_call,
    make_calls,
    record_dict,
)

pytestmark = pytest.mark.django_db


def cursor_of(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def missing_id() -> int:
    return (CallRecord.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1000


@pytest.fixture
def staff_api(catalog, support):
    return session_client(support)


@pytest.fixture
def support_api(support):
    """Support staff over an empty database (for answers that need no calls)."""
    return session_client(support)


@pytest.fixture(params=["session", "token"])
def initech_api(request, catalog):
    """Initech's owner, signed in with a session or with an access token."""
    owner = catalog.initech_owner
    if request.param == "session":
        return session_client(owner)
    return token_client(new_token(owner))


def initech_ids(catalog, predicate=lambda call: True) -> list[str]:
    return catalog.ids(lambda c: c.account_id == catalog.initech.pk and predicate(c))


# --- authentication -------------------------------------------------------------------


READ_URLS = [LIST_URL, detail_url(1), EXPORT_URL, STATS_URL]


def test_no_credentials_is_401_everywhere(catalog):
    for url in [LIST_URL, detail_url(catalog.calls[0].pk), EXPORT_URL, STATS_URL]:
        response = client().get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert "detail" in response.json()
        assert "results" not in response.json()
    assert not AccessRecord.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ult_doesnotexist0000000000000000",
        "Bearer sk-not-an-access-token",
        "Bearer",
        "Bearer ult_a ult_b",
        "Token ult_doesnotexist",
    ],
)
def test_bad_token_is_401(db, header):
    api = client()
    api.credentials(HTTP_AUTHORIZATION=header)
    for url in READ_URLS:
        response = api.get(url)
        assert response.status_code == 401, (url, response.content)
        assert "results" not in response.json()


def test_revoked_token_is_401_even_with_a_session(catalog):
    issued = new_token(catalog.initech_owner)
    api = token_client(issued)
    assert api.get(LIST_URL).status_code == 200

    revoke_access_token(AccessToken.objects.get(user=catalog.initech_owner))
    assert api.get(LIST_URL).status_code == 401
    api.force_login(catalog.initech_owner)  # a bad token is refused, not skipped
    assert api.get(LIST_URL).status_code == 401


def test_token_of_an_inactive_user_is_401(catalog):
    secret = new_token(catalog.initech_owner)
    catalog.initech_owner.is_active = False
    catalog.initech_owner.save()
    assert token_client(secret).get(LIST_URL).status_code == 401


def test_session_and_token_both_work(catalog):
    expected = initech_ids(catalog)
    by_session = session_client(catalog.initech_owner)
    by_token = token_client(new_token(catalog.initech_owner))
    assert request_ids(walk(by_session)) == expected
    assert request_ids(walk(by_token)) == expected


def test_token_use_sets_last_used_at(catalog):
    secret = new_token(catalog.initech_owner)
    token = AccessToken.objects.get(user=catalog.initech_owner)
    assert token.last_used_at is None
    before = timezone.now()
    assert token_client(secret).get(LIST_URL).status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert before - timedelta(seconds=1) <= token.last_used_at <= timezone.now()


# --- isolation: an owner sees only their own account ------------------------------------


def test_owner_list_holds_only_their_calls(catalog, initech_api):
    rows = walk(initech_api)
    assert request_ids(rows) == initech_ids(catalog)
    assert {row["account"] for row in rows} == {catalog.initech.pk}
    assert all("upstream" not in row for row in rows)


def _other_accounts_hints(catalog) -> list[tuple[dict, dict]]:
    """Filters naming Umbrella's things, each with a twin naming nothing at all."""
    return [
        ({"account": catalog.umbrella.pk}, {"account": missing_id()}),
        ({"key_name": "umbrella-main"}, {"key_name": "no-such-key"}),
        ({"model": "claude-3-5-sonnet"}, {"model": "no-such-model"}),
        ({"request_id": "cat-07"}, {"request_id": "no-such-request"}),
    ]


def test_owner_filtering_on_another_account_sees_nothing_and_learns_nothing(catalog, initech_api):
    for hint, nothing in _other_accounts_hints(catalog):
        response = initech_api.get(LIST_URL, hint)
        assert response.status_code == 200, hint
        assert response.json() == {"next": None, "previous": None, "results": []}
        assert response.content == initech_api.get(LIST_URL, nothing).content


def test_shared_key_name_shows_only_the_owners_key(catalog, initech_api):
    rows = walk(initech_api, {"key_name": "ci"})
    assert request_ids(rows) == ["cat-08"]


def test_detail_of_another_accounts_call_is_exactly_a_missing_id(catalog, initech_api):
    theirs = catalog.call("cat-07")
    refused = initech_api.get(detail_url(theirs.pk))
    missing = initech_api.get(detail_url(missing_id()))
    assert refused.status_code == missing.status_code == 404
    assert refused.content == missing.content
    assert refused.json() == {"detail": "Not found."}
    # Even when the caller "narrows" to that account.
    hinted = initech_api.get(detail_url(theirs.pk), {"account": catalog.umbrella.pk})
    assert hinted.status_code == 404
    assert hinted.content == missing.content
    assert not AccessRecord.objects.filter(call_id=theirs.pk).exists()


def test_owner_export_holds_only_their_calls(catalog, initech_api):
    response = initech_api.get(EXPORT_URL)
    assert response.status_code == 200
    rows = csv_rows(response)
    assert rows[0] == CSV_HEADERS
    assert [row[1] for row in rows[1:]] == initech_ids(catalog)
    assert {row[3] for row in rows[1:]} == {"Initech"}


def test_owner_export_filtered_on_another_account_is_empty(catalog, initech_api):
    for hint, _ in _other_accounts_hints(catalog):
        response = initech_api.get(EXPORT_URL, hint)
        assert response.status_code == 200, hint
        assert csv_rows(response) == [CSV_HEADERS], hint


def test_owner_stats_exclude_other_accounts(catalog, initech_api):
    mine = [c for c in catalog.calls if c.account_id == catalog.initech.pk]
    response = initech_api.get(STATS_URL, {"group_by": "key_name"})
    assert response.status_code == 200
    totals = response.json()["totals"]
    assert totals["calls"] == len(mine)
    assert Decimal(totals["usage"]) == sum(c.usage for c in mine)
    assert Decimal(totals["cost"]) == sum(c.cost for c in mine)
    keys = {row["key"] for row in response.json()["results"]}
    assert keys == {"initech-prod", "initech-batch", "ci"}
    ci_calls = sum(row["calls"] for row in response.json()["results"] if row["key"] == "ci")
    assert ci_calls == 1  # Umbrella's key of the same name is not counted

    models = {
        row["key"] for row in initech_api.get(STATS_URL, {"group_by": "model"}).json()["results"]
    }
    assert "claude-3-5-sonnet" not in models

    for hint, _ in _other_accounts_hints(catalog):
        response = initech_api.get(STATS_URL, hint)
        assert response.status_code == 200, hint
        assert response.json()["totals"]["calls"] == 0, hint
        assert response.json()["results"] == [], hint


def test_account_without_membership_sees_nothing(catalog):
    api = session_client(UserFactory(username="nobody"))
    assert walk(api) == []
    assert api.get(detail_url(catalog.calls[0].pk)).status_code == 404
    assert csv_rows(api.get(EXPORT_URL)) == [CSV_HEADERS]
    assert api.get(STATS_URL).json()["totals"]["calls"] == 0


def test_staff_see_every_account_and_the_upstream(catalog, staff_api):
    rows = walk(staff_api)
    assert request_ids(rows) == catalog.ids()
    assert {row["account"] for row in rows} == {catalog.initech.pk, catalog.umbrella.pk}
    assert all("upstream" in row for row in rows)
    by_id = {row["request_id"]: row for row in rows}
    assert by_id["cat-07"]["upstream"] == "aws-us-east-1"

    detail = staff_api.get(detail_url(catalog.call("cat-07").pk))
    assert detail.status_code == 200
    assert detail.json()["upstream"] == "aws-us-east-1"
    assert staff_api.get(STATS_URL).json()["totals"]["calls"] == len(catalog.calls)


def test_owner_never_gets_the_upstream(catalog):
    api = session_client(catalog.umbrella_owner)
    call = catalog.call("cat-07")
    detail = api.get(detail_url(call.pk))
    assert detail.status_code == 200
    assert "upstream" not in detail.json()
    assert "aws-us-east-1" not in detail.content.decode()
    listed = api.get(LIST_URL).content.decode()
    assert "upstream" not in listed and "aws-us-east-1" not in listed
    assert "aws-us-east-1" not in body_of(api.get(EXPORT_URL)).decode()


# --- filters ------------------------------------------------------------------------------

SINGLE_FILTERS = [
    ({"model": "gpt-4o"}, lambda c: c.model == "gpt-4o"),
    ({"model": "gpt-4o-mini"}, lambda c: c.model == "gpt-4o-mini"),
    ({"key_name": "ci"}, lambda c: c.api_key.name == "ci"),
    ({"key_name": "initech-batch"}, lambda c: c.api_key.name == "initech-batch"),
    ({"group": "vip"}, lambda c: c.group.name == "vip"),
    ({"group": "default"}, lambda c: c.group.name == "default"),
    ({"call_type": "completion"}, lambda c: c.call_type == "completion"),
    ({"call_type": "embedding"}, lambda c: c.call_type == "embedding"),
    ({"call_type": "audio"}, lambda c: False),
    ({"status": "success"}, lambda c: c.status_code < 400),
    ({"status": "client_error"}, lambda c: 400 <= c.status_code < 500),
    ({"status": "server_error"}, lambda c: c.status_code >= 500),
    ({"request_id": "cat-07"}, lambda c: c.request_id == "cat-07"),
    ({"model": "no-such-model"}, lambda c: False),
]


def test_each_filter_alone(catalog, staff_api):
    for params, predicate in SINGLE_FILTERS:
        assert request_ids(walk(staff_api, params)) == catalog.ids(predicate), params


def test_account_filter(catalog, staff_api):
    for account in (catalog.initech, catalog.umbrella):
        rows = walk(staff_api, {"account": account.pk})
        assert request_ids(rows) == catalog.ids(lambda c, a=account: c.account_id == a.pk)


def test_filters_combined(catalog, staff_api):
    cases = [
        (
            {"model": "gpt-4o", "status": "server_error"},
            lambda c: c.model == "gpt-4o" and c.status_code >= 500,
        ),
        (
            {"key_name": "ci", "group": "vip"},
            lambda c: c.api_key.name == "ci" and c.group.name == "vip",
        ),
        (
            {
                "account": catalog.initech.pk,
                "call_type": "chat",
                "start": "2024-03-10T09:00:00Z",
                "end": "2024-03-10T12:00:00Z",
            },
            lambda c: (
                c.account_id == catalog.initech.pk
                and c.call_type == "chat"
                and datetime(2024, 3, 10, 9, tzinfo=UTC)
                <= c.created_at
                < datetime(2024, 3, 10, 12, tzinfo=UTC)
            ),
        ),
        (
            {
                "account": catalog.umbrella.pk,
                "model": "gpt-4o",
                "key_name": "umbrella-main",
                "group": "default",
                "call_type": "chat",
                "status": "server_error",
                "start": "2024-03-10T00:00:00Z",
                "end": "2024-03-11T00:00:00Z",
                "request_id": "cat-06",
            },
            lambda c: c.request_id == "cat-06",
        ),
        ({"model": "gpt-4o", "status": "success", "group": "default"}, lambda c: False),
    ]
    for params, predicate in cases:
        expected = catalog.ids(predicate)
        assert request_ids(walk(staff_api, params)) == expected, params
        assert request_ids(walk(staff_api, {**params}, page_size=1)) == expected, params


def test_start_is_inclusive_and_end_exclusive_at_a_calls_exact_time(catalog, staff_api):
    ten = catalog.call("cat-04").created_at  # 10:00:00, shared by cat-04/05/06
    assert ten == datetime(2024, 3, 10, 10, tzinfo=UTC)
    from_ten = walk(staff_api, {"start": iso_in(ten)})
    assert request_ids(from_ten) == catalog.ids(lambda c: c.created_at >= ten)
    assert {"cat-04", "cat-05", "cat-06"} <= set(request_ids(from_ten))
    assert "cat-03" not in request_ids(from_ten)

    before_ten = walk(staff_api, {"end": iso_in(ten)})
    assert request_ids(before_ten) == catalog.ids(lambda c: c.created_at < ten)
    assert "cat-03" in request_ids(before_ten)
    assert not {"cat-04", "cat-05", "cat-06"} & set(request_ids(before_ten))

    # Exactly one call: start at its time, end one microsecond later.
    seven = catalog.call("cat-07").created_at
    assert seven.microsecond == 250000
    only = walk(
        staff_api, {"start": iso_in(seven), "end": iso_in(seven, offset=timedelta(microseconds=1))}
    )
    assert request_ids(only) == ["cat-07"]
    # One microsecond on either side misses it.
    after = walk(staff_api, {"start": iso_in(seven, offset=timedelta(microseconds=1))})
    assert "cat-07" not in request_ids(after)
    three = catalog.call("cat-03").created_at  # 09:59:59.999999
    assert request_ids(walk(staff_api, {"start": iso_in(three), "end": iso_in(ten)})) == ["cat-03"]


def test_time_zone_offsets_name_the_same_instant(catalog, staff_api):
    ten = catalog.call("cat-04").created_at
    noon = datetime(2024, 3, 10, 12, tzinfo=UTC)
    expected = catalog.ids(lambda c: ten <= c.created_at < noon)
    for zone in (UTC, PLUS_0530, MINUS_0800):
        params = {"start": iso_in(ten, zone), "end": iso_in(noon, zone)}
        assert request_ids(walk(staff_api, params)) == expected, params
    # "Z" as well as "+00:00".
    params = {"start": "2024-03-10T10:00:00Z", "end": "2024-03-10T12:00:00Z"}
    assert request_ids(walk(staff_api, params)) == expected
    # A call sent with an offset is found by its instant.
    assert request_ids(
        walk(staff_api, {"start": "2024-03-10T13:00:00+05:30", "end": iso_in(ten)})
    ) == [*catalog.ids(lambda c: datetime(2024, 3, 10, 7, 30, tzinfo=UTC) <= c.created_at < ten)]


def test_times_without_a_zone_are_in_the_servers_time_zone(catalog, staff_api, settings):
    ten = catalog.call("cat-04").created_at
    expected = catalog.ids(lambda c: c.created_at >= ten)
    assert request_ids(walk(staff_api, {"start": "2024-03-10T10:00:00"})) == expected
    settings.TIME_ZONE = "Asia/Kolkata"  # 10:00 UTC is 15:30 there
    assert request_ids(walk(staff_api, {"start": "2024-03-10T15:30:00"})) == expected


BAD_FILTERS = [
    ({"start": "yesterday"}, "start"),
    ({"start": "2024-13-01T00:00:00Z"}, "start"),
    ({"end": "2024-03-10T25:00:00Z"}, "end"),
    ({"start": "2024-03-10T10:00:00Z", "end": "2024-03-10T10:00:00Z"}, "end"),
    ({"start": "2024-03-10T10:00:00Z", "end": "2024-03-10T09:00:00Z"}, "end"),
    ({"start": "2024-03-10T10:00:00+02:00", "end": "2024-03-10T08:00:00Z"}, "end"),
    ({"call_type": "chatt"}, "call_type"),
    ({"call_type": "CHAT"}, "call_type"),
    ({"status": "failed"}, "status"),
    ({"status": "500"}, "status"),
    ({"account": "abc"}, "account"),
    ({"account": "0"}, "account"),
    ({"account": "-3"}, "account"),
]
BAD_PAGING = [
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "1001"}, "page_size"),
    ({"page_size": "abc"}, "page_size"),
    ({"page_size": "-5"}, "page_size"),
    ({"page_size": "2.5"}, "page_size"),
    ({"cursor": "garbage"}, "cursor"),
    ({"cursor": "!!!"}, "cursor"),
    ({"cursor": cursor_of(["next", "not a time", 1])}, "cursor"),
    ({"cursor": cursor_of(["sideways", "2024-03-10T10:00:00+00:00", 1])}, "cursor"),
    ({"cursor": cursor_of(["next", "2024-03-10T10:00:00", 1])}, "cursor"),
    ({"cursor": cursor_of(["next", "2024-03-10T10:00:00+00:00", "1"])}, "cursor"),
    ({"cursor": cursor_of({"direction": "next"})}, "cursor"),
]


@pytest.mark.parametrize(
    ("params", "name"), BAD_FILTERS + BAD_PAGING, ids=[str(p) for p, _ in BAD_FILTERS + BAD_PAGING]
)
def test_bad_list_parameter_is_400_naming_it(support_api, params, name):
    response = support_api.get(LIST_URL, params)
    assert response.status_code == 400, response.content
    assert name in response.json(), response.json()
    assert "results" not in response.json()


@pytest.mark.parametrize(("params", "name"), BAD_FILTERS, ids=[str(p) for p, _ in BAD_FILTERS])
@pytest.mark.parametrize("url", [EXPORT_URL, STATS_URL])
def test_bad_filter_is_400_naming_it_on_export_and_stats(support_api, url, params, name):
    response = support_api.get(url, params)
    assert response.status_code == 400, body_of(response)
    assert name in response.json(), response.json()
    assert not AccessRecord.objects.filter(action=AccessRecord.Action.EXPORT).exists()


def test_fractional_account_id_is_refused_not_rounded(catalog, staff_api):
    """``account=1.5`` is not an account id: it must be refused, not read as
    account 1 (which would list that account's calls as if asked for them)."""
    for url in (LIST_URL, EXPORT_URL, STATS_URL):
        response = staff_api.get(url, {"account": f"{catalog.initech.pk}.5"})
        assert response.status_code == 400, (url, body_of(response)[:200])
        assert "account" in response.json()


@pytest.mark.parametrize("url", [LIST_URL, EXPORT_URL, STATS_URL])
def test_huge_account_id_is_not_a_server_error(support_api, url):
    """No account has id 10**20: the answer is a 400 naming ``account`` or an
    empty answer, never a server error (SQLite cannot bind an integer that large)."""
    response = support_api.get(url, {"account": str(10**20)})
    assert_answered(response, "account", url)
    if response.status_code == 200 and url == LIST_URL:
        assert response.json()["results"] == []


def assert_answered(response, name: str, context) -> None:
    """A 400 naming ``name``, or a complete 200 (a streamed export read to its end)."""
    assert response.status_code in (200, 400), (context, response.status_code)
    if response.status_code == 400:
        assert name in response.json(), (context, response.json())
        return
    try:
        body_of(response)
    except Exception as exc:  # the stream broke after a 200 was sent
        pytest.fail(f"{context}: the response broke off mid-stream: {exc!r}")


EXTREME_TIMES = [
    ({"start": "0001-01-01T00:00:00+01:00"}, "start"),
    ({"end": "9999-12-31T23:59:59-01:00"}, "end"),
]


@pytest.mark.parametrize(("params", "name"), EXTREME_TIMES, ids=["start", "end"])
@pytest.mark.parametrize("url", [LIST_URL, EXPORT_URL, STATS_URL])
def test_times_at_the_edge_of_the_calendar_are_not_a_server_error(support_api, url, params, name):
    """Year 1 at +01:00 is year 0 in UTC; year 9999 at -01:00 is year 10000."""
    assert_answered(support_api.get(url, params), name, (url, params))


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"], ids=["year1", "year9999"]
)
@pytest.mark.parametrize("direction", ["next", "prev"])
def test_cursor_at_the_edge_of_the_calendar_is_not_a_server_error(support_api, moment, direction):
    response = support_api.get(LIST_URL, {"cursor": cursor_of([direction, moment, 1])})
    assert_answered(response, "cursor", moment)


# --- pagination -----------------------------------------------------------------------


def _pages(api, params, page_size):
    pages = []
    response = api.get(LIST_URL, {**params, "page_size": page_size})
    while True:
        assert response.status_code == 200, response.content
        pages.append(response.json())
        if not response.json()["next"]:
            return pages
        response = api.get(response.json()["next"])


def _sort_key(row):
    return (parse_time(row["created_at"]), row["id"])


def test_walking_small_pages_gives_every_row_once_newest_first(catalog, staff_api):
    pages = _pages(staff_api, {}, 4)
    assert [len(page["results"]) for page in pages] == [4, 4, 4, 3]
    rows = [row for page in pages for row in page["results"]]
    assert request_ids(rows) == catalog.ids()
    assert len({row["id"] for row in rows}) == len(rows)
    assert [_sort_key(r) for r in rows] == sorted((_sort_key(r) for r in rows), reverse=True)
    assert pages[0]["previous"] is None
    assert pages[-1]["next"] is None


def test_previous_links_go_back_to_the_same_page(catalog, staff_api):
    pages = _pages(staff_api, {"status": "success"}, 2)
    assert len(pages) >= 3
    for index in range(1, len(pages)):
        back = staff_api.get(pages[index]["previous"])
        assert back.status_code == 200
        assert request_ids(back.json()["results"]) == request_ids(pages[index - 1]["results"])
        assert (back.json()["previous"] is None) == (index == 1)
        # ... and forward again from there.
        again = staff_api.get(back.json()["next"])
        assert request_ids(again.json()["results"]) == request_ids(pages[index]["results"])


def test_ties_on_created_at_are_split_across_pages_without_loss(catalog, staff_api):
    tie = datetime(2024, 3, 10, 10, tzinfo=UTC)
    key = catalog.keys["umbrella-main"]
    make_calls(key, 7, created_at=tie)
    expected = list(
        CallRecord.objects.filter(created_at=tie)
        .order_by("-id")
        .values_list("request_id", flat=True)
    )
    assert len(expected) == 10
    for size in (1, 3, 4):
        rows = walk(
            staff_api,
            {"start": iso_in(tie), "end": iso_in(tie, offset=timedelta(seconds=1))},
            page_size=size,
        )
        assert request_ids(rows) == expected, size


def test_rows_ingested_while_paging_never_make_an_existing_row_lost_or_repeated(catalog, staff_api):
    existing = catalog.ids()
    key = catalog.keys["initech-prod"]
    newest = max(c.created_at for c in catalog.calls)
    seen: list[dict] = []
    added_behind: list[str] = []  # older than the cursor: still ahead of the walk
    added_ahead: list[str] = []  # newer than the cursor: already passed
    response = staff_api.get(LIST_URL, {"page_size": 3})
    step = 0
    while True:
        assert response.status_code == 200, response.content
        page = response.json()["results"]
        seen.extend(page)
        if not response.json()["next"]:
            break
        cursor_row = page[-1]
        cursor_time = parse_time(cursor_row["created_at"])
        step += 1
        newer = record_dict(
            key, request_id=f"live-{step}-newer", created_at=newest + timedelta(minutes=step)
        )
        same = record_dict(key, request_id=f"live-{step}-same", created_at=cursor_time)
        older = record_dict(
            key, request_id=f"live-{step}-older", created_at=cursor_time - timedelta(seconds=1)
        )
        ingest_calls([newer, same, older])
        added_ahead += [newer["request_id"], same["request_id"]]
        added_behind.append(older["request_id"])
        response = staff_api.get(response.json()["next"])

    ids = request_ids(seen)
    assert len(ids) == len(set(ids)), "a row was shown twice"
    for request_id in existing:
        assert ids.count(request_id) == 1, request_id
    # Rows behind the cursor when they arrived come later in the walk; rows
    # that sort before the cursor (newer, or same time with a higher id) do not.
    assert set(added_behind) <= set(ids)
    assert not set(added_ahead) & set(ids)
    assert [_sort_key(r) for r in seen] == sorted((_sort_key(r) for r in seen), reverse=True)


def test_page_size_default_bounds_and_filters_kept_in_links(catalog, staff_api):
    make_calls(catalog.keys["initech-prod"], 100, created_at=datetime(2024, 3, 1, tzinfo=UTC))
    first = staff_api.get(LIST_URL)
    assert first.status_code == 200
    assert len(first.json()["results"]) == 100
    assert first.json()["next"] is not None
    assert len(staff_api.get(LIST_URL, {"page_size": 1}).json()["results"]) == 1
    everything = staff_api.get(LIST_URL, {"page_size": 1000}).json()
    assert len(everything["results"]) == 115
    assert everything["next"] is None

    params = {"model": "gpt-4o", "account": catalog.initech.pk}
    expected = catalog.ids(lambda c: c.model == "gpt-4o" and c.account_id == catalog.initech.pk)
    assert request_ids(walk(staff_api, params, page_size=1)) == expected


# --- detail -------------------------------------------------------------------------------

LIST_FIELDS = (
    "id",
    "request_id",
    "created_at",
    "account",
    "account_name",
    "key_name",
    "key_prefix",
    "group",
    "call_type",
    "model",
    "endpoint",
    "stream",
    "status_code",
    "status",
    "error_reason",
    "duration_ms",
    "ttft_ms",
    "output_tokens_per_second",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "usage",
    "cost",
    "client_ip",
)
PARTS = ("request_params", "request_headers", "request_body", "response", "error_detail")


def test_detail_has_the_list_fields_and_every_payload_part(catalog, staff_api):
    call = catalog.call("cat-03")
    sent = catalog.records["cat-03"]
    response = staff_api.get(detail_url(call.pk))
    assert response.status_code == 200
    detail = response.json()
    listed = next(r for r in walk(staff_api) if r["request_id"] == "cat-03")
    for name in LIST_FIELDS:
        assert detail[name] == listed[name], name
    assert detail["status"] == "client_error"
    assert detail["error_reason"] == "rate_limit_exceeded"
    assert detail["created_at"] == "2024-03-10T09:59:59.999999Z"
    expected_parts = {
        "request_params": sent["request"]["params"],
        "request_headers": sent["request"]["headers"],
        "request_body": sent["request"]["body"],
        "response": None,
        "error_detail": sent["error"],
    }
    for name in PARTS:
        assert detail[name] == {
            "content": expected_parts[name],
            "truncated": False,
            "original_bytes": None,
        }, name


def test_detail_shows_credentials_redacted(catalog, staff_api):
    call = make_call(
        catalog.keys["initech-prod"],
        request={
            "params": {"model": "gpt-4o-mini", "api_key": "sk-live-very-secret-123456"},
            "headers": {"Authorization": "Bearer sk-Ab3dE5gH7xYzSecret", "Accept": "*/*"},
            "body": {"messages": [{"role": "user", "content": "hello"}]},
        },
    )
    detail = staff_api.get(detail_url(call.pk)).json()
    assert detail["request_headers"]["content"] == {
        "Authorization": "[REDACTED]",
        "Accept": "*/*",
    }
    assert detail["request_params"]["content"]["api_key"] == "[REDACTED]"
    assert "secret" not in json.dumps(detail).lower()


def test_detail_of_a_truncated_part_says_so_with_its_original_size(catalog, staff_api, settings):
    settings.USAGELOGS_PAYLOAD_MAX_BYTES = 200
    response_part = {"choices": [{"message": {"content": "é" * 300}}]}
    original = json.dumps(response_part, ensure_ascii=False, separators=(",", ":")).encode()
    call = make_call(catalog.keys["initech-prod"], response=response_part)
    detail = staff_api.get(detail_url(call.pk)).json()
    part = detail["response"]
    assert part["truncated"] is True
    assert part["original_bytes"] == len(original)
    assert isinstance(part["content"], str)
    assert len(part["content"].encode()) <= 200
    assert original.decode().startswith(part["content"])
    for name in ("request_params", "request_headers", "request_body"):
        assert detail[name]["truncated"] is False
        assert detail[name]["original_bytes"] is None
        assert isinstance(detail[name]["content"], dict)


def test_detail_of_a_call_without_payload(catalog, staff_api):
    call = make_call(catalog.keys["initech-prod"], request=OMIT, response=OMIT)
    detail = staff_api.get(detail_url(call.pk)).json()
    for name in PARTS:
        assert detail[name] == {"content": None, "truncated": False, "original_bytes": None}


def test_reading_a_detail_leaves_an_access_record(catalog, initech_api):
    call = catalog.call("cat-04")
    assert initech_api.get(detail_url(call.pk)).status_code == 200
    record = AccessRecord.objects.get(action=AccessRecord.Action.VIEW_CALL)
    assert record.surface == AccessRecord.Surface.API
    assert record.call_id == call.pk
    assert record.request_id == "cat-04"
    assert record.user == catalog.initech_owner


def test_detail_with_a_non_numeric_id_is_a_json_404(catalog, staff_api):
    response = staff_api.get(f"{LIST_URL}abc/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


# --- export ---------------------------------------------------------------------------------

USAGE_CELL = CSV_HEADERS.index("usage")
COST_CELL = CSV_HEADERS.index("cost")


def _export_filters(catalog) -> list[dict]:
    return [
        {},
        {"model": "gpt-4o"},
        {"status": "client_error"},
        {"status": "server_error", "group": "vip"},
        {"start": "2024-03-10T10:00:00Z", "end": "2024-03-10T11:30:00Z"},
        {"key_name": "ci"},
        {"call_type": "chat", "account": catalog.umbrella.pk},
        {"request_id": "cat-07"},
        {"model": "no-such-model"},
    ]


def test_export_header_and_rows_equal_the_filtered_list(catalog, staff_api):
    for params in _export_filters(catalog):
        response = staff_api.get(EXPORT_URL, params)
        assert response.status_code == 200, params
        rows = csv_rows(response)
        assert rows[0] == CSV_HEADERS
        listed = walk(staff_api, params)
        assert len(rows) - 1 == len(listed), params
        for cells, row in zip(rows[1:], listed, strict=True):
            expected = expected_csv_cells(row)
            for index in range(len(CSV_HEADERS)):
                if index in (USAGE_CELL, COST_CELL):
                    assert Decimal(cells[index]) == Decimal(expected[index]), (params, index)
                else:
                    assert cells[index] == expected[index], (params, CSV_HEADERS[index])


def test_export_writes_usage_and_cost_as_plain_decimals_like_the_list(catalog, staff_api):
    """Usage and cost cells read like the list: "0.00000000" and "0.00000005",
    never the scientific "0E-8" / "5E-8" that str(Decimal) gives for small values."""
    listed = {row["request_id"]: row for row in walk(staff_api)}
    rows = csv_rows(staff_api.get(EXPORT_URL))[1:]
    for cells in rows:
        row = listed[cells[1]]
        assert cells[USAGE_CELL] == row["usage"], (cells[1], cells[USAGE_CELL])
        assert cells[COST_CELL] == row["cost"], (cells[1], cells[COST_CELL])


def test_export_escapes_formulas(db, support):
    account = AccountFactory(name="\tTabbed Ltd", slug="tabbed")
    key = ApiKeyFactory(account=account, name="@ops", group=GroupFactory(name="=grp"))
    make_call(
        key,
        request_id="=1+2",
        model='=HYPERLINK("http://evil.example","x")',
        endpoint="+cmd",
        status_code=500,
        error_reason="-2+3",
    )
    make_call(key, request_id="plain", model="a=b", endpoint="/v1/x", error_reason="")
    rows = csv_rows(session_client(support).get(EXPORT_URL))
    cells = {row[1]: dict(zip(CSV_HEADERS, row, strict=True)) for row in rows[1:]}
    evil = cells["'=1+2"]
    assert evil["account"] == "'\tTabbed Ltd"
    assert evil["key name"] == "'@ops"
    assert evil["group"] == "'=grp"
    assert evil["model"] == '\'=HYPERLINK("http://evil.example","x")'
    assert evil["endpoint"] == "'+cmd"
    assert evil["error reason"] == "'-2+3"
    plain = cells["plain"]
    assert plain["model"] == "a=b"
    assert plain["endpoint"] == "/v1/x"


def test_export_is_streamed_csv(catalog, staff_api):
    response = staff_api.get(EXPORT_URL)
    assert response.status_code == 200
    assert response.streaming is True
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="calls-')
    assert response["Content-Disposition"].endswith('.csv"')
    assert len(csv_rows(response)) == len(catalog.calls) + 1


def test_export_is_identical_to_the_admin_export(catalog, support):
    api = session_client(support)
    for params in _export_filters(catalog):
        ours = api.get(EXPORT_URL, params)
        # The admin searches for a request id with q.
        admin = api.get(
            ADMIN_EXPORT_URL, {("q" if k == "request_id" else k): v for k, v in params.items()}
        )
        if params.get("model") == "no-such-model":
            # The admin refuses a value that is not among its choices (with the
            # list's message); the API's model is free text that matches nothing.
            assert (ours.status_code, admin.status_code) == (200, 400)
            assert csv_rows(ours) == [CSV_HEADERS]
            continue
        assert ours.status_code == admin.status_code == 200, params
        assert body_of(ours) == body_of(admin), params


def test_export_leaves_an_access_record_with_its_row_count(catalog, initech_api):
    params = {"model": "gpt-4o", "status": "server_error"}
    response = initech_api.get(EXPORT_URL, params)
    rows = csv_rows(response)  # the count is known once the stream is read
    assert len(rows) == 2
    record = AccessRecord.objects.get(action=AccessRecord.Action.EXPORT)
    assert record.surface == AccessRecord.Surface.API
    assert record.user == catalog.initech_owner
    assert record.row_count == 1
    assert record.filters == params


# --- stats ----------------------------------------------------------------------------------

GROUP_FIELD = {"model": "model", "key_name": "key_name", "group": "group", "call_type": "call_type"}


def summary(rows: list[dict]) -> dict:
    calls = len(rows)
    errors = sum(1 for r in rows if r["status_code"] >= 400)
    output = sum(r["output_tokens"] for r in rows)
    generation = sum(
        max(r["duration_ms"] - (r["ttft_ms"] or 0), 0) for r in rows if r["output_tokens"] > 0
    )
    return {
        "calls": calls,
        "errors": errors,
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "output_tokens": output,
        "total_tokens": sum(r["total_tokens"] for r in rows),
        "usage": sum((Decimal(r["usage"]) for r in rows), Decimal(0)),
        "cost": sum((Decimal(r["cost"]) for r in rows), Decimal(0)),
        "average_duration_ms": sum(r["duration_ms"] for r in rows) / calls if calls else None,
        "error_rate": errors / calls if calls else None,
        "output_tokens_per_second": output * 1000 / generation if generation else None,
    }


def assert_row_matches(got: dict, rows: list[dict], context) -> None:
    want = summary(rows)
    for name in ("calls", "errors", "input_tokens", "output_tokens", "total_tokens"):
        assert got[name] == want[name], (context, name)
    for name in ("usage", "cost"):
        assert Decimal(got[name]) == want[name], (context, name)
    for name in ("average_duration_ms", "error_rate", "output_tokens_per_second"):
        if want[name] is None:
            assert got[name] is None, (context, name)
        else:
            assert got[name] == pytest.approx(want[name]), (context, name)
    if want["calls"]:
        assert got["p50_duration_ms"] is not None and got["p95_duration_ms"] is not None
        assert 0 <= got["p50_duration_ms"] <= got["p95_duration_ms"], context
    else:
        assert got["p50_duration_ms"] is None and got["p95_duration_ms"] is None


def bucket_of(row: dict, interval: str, zone) -> datetime:
    local = parse_time(row["created_at"]).astimezone(zone)
    if interval == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _stats_filters(catalog) -> list[dict]:
    return [
        {},
        # Partial hours at both ends around whole hours (raw + hourly sums).
        {"start": "2024-03-10T09:30:00Z", "end": "2024-03-10T11:45:00Z"},
        {"start": "2024-03-10T10:00:00Z", "end": "2024-03-10T12:00:00Z"},
        {"start": "2024-03-10T10:15:30.250000Z"},
        {"start": "2024-03-10T10:15:30.250001Z"},
        {"end": "2024-03-10T10:00:00Z"},
        {"end": "2024-03-10T09:59:59.999999Z"},
        {"start": "2024-03-10T10:05:00Z", "end": "2024-03-10T10:50:00Z"},
        {"start": "2024-03-10T15:30:00+05:30", "end": "2024-03-10T04:00:00-08:00"},
        {"model": "gpt-4o", "status": "server_error"},
        {"key_name": "ci"},
        {"group": "vip", "call_type": "chat"},
        {"status": "client_error"},
        {"request_id": "cat-07"},
        {"account": catalog.umbrella.pk, "start": "2024-03-10T10:00:00Z"},
        {"model": "no-such-model"},
    ]


def test_stats_totals_equal_sums_of_the_filtered_list(catalog, staff_api):
    for params in _stats_filters(catalog):
        listed = walk(staff_api, params)
        response = staff_api.get(STATS_URL, params)
        assert response.status_code == 200, params
        body = response.json()
        assert body["interval"] == "day" and body["group_by"] is None
        assert body["totals"]["bucket"] is None and body["totals"]["key"] is None
        assert_row_matches(body["totals"], listed, params)


STATS_SHAPES = [
    (interval, group_by)
    for interval in ("hour", "day")
    for group_by in (None, "model", "key_name", "group", "call_type")
]


@at_instants("pinned", "Berlin, 1 min after spring forward", "St. John's, 1 min before fall back")
def test_stats_buckets_and_groups_equal_sums_of_the_list(catalog, staff_api):
    """In the site's zone: UTC, Berlin (whole hours off UTC) and St. John's
    (half an hour off), where these instants put it."""
    zone = timezone.get_current_timezone()
    for (interval, group_by), params in itertools.product(
        STATS_SHAPES,
        (
            {},
            {"start": "2024-03-10T09:30:00Z", "end": "2024-03-10T11:45:00Z"},
            {"account": catalog.initech.pk, "status": "success"},
        ),
    ):
        listed = walk(staff_api, params)
        query = {**params, "interval": interval}
        if group_by:
            query["group_by"] = group_by
        response = staff_api.get(STATS_URL, query)
        assert response.status_code == 200, query
        body = response.json()
        assert body["interval"] == interval
        assert body["group_by"] == group_by

        expected: dict[tuple, list[dict]] = defaultdict(list)
        for row in listed:
            key = row[GROUP_FIELD[group_by]] if group_by else None
            expected[(bucket_of(row, interval, zone), key)].append(row)
        got = {(parse_time(r["bucket"]), r["key"]): r for r in body["results"]}
        assert set(got) == set(expected), query
        for slot, rows in expected.items():
            assert_row_matches(got[slot], rows, (query, slot))
        order = [(parse_time(r["bucket"]), r["key"] or "") for r in body["results"]]
        assert order == sorted(order), query
        assert sum(r["calls"] for r in body["results"]) == body["totals"]["calls"]
        assert_row_matches(body["totals"], listed, query)


def test_stats_day_buckets_follow_the_configured_time_zone(catalog, staff_api, settings):
    settings.TIME_ZONE = "America/New_York"  # 2024-03-10 is a daylight saving day there
    zone = ZoneInfo("America/New_York")
    listed = walk(staff_api)
    for interval in ("day", "hour"):
        body = staff_api.get(STATS_URL, {"interval": interval}).json()
        expected: dict[datetime, list[dict]] = defaultdict(list)
        for row in listed:
            expected[bucket_of(row, interval, zone)].append(row)
        got = {parse_time(r["bucket"]): r for r in body["results"]}
        assert set(got) == set(expected), interval
        for bucket, rows in expected.items():
            assert_row_matches(got[bucket], rows, (interval, bucket))
    days = [parse_time(r["bucket"]) for r in staff_api.get(STATS_URL).json()["results"]]
    # 23:55 UTC on the 9th is still the 9th in New York; 00:05 UTC on the 11th is the 10th.
    assert [d.astimezone(zone).date().isoformat() for d in days] == ["2024-03-09", "2024-03-10"]


@pytest.mark.parametrize(
    "zone, bucket_minute",
    [("America/St_Johns", 30), ("Asia/Kolkata", 30), ("Asia/Kathmandu", 15)],
)
def test_stats_buckets_in_a_zone_off_whole_hours_hold_each_calls_own_hour_and_day(
    support_api, settings, zone, bucket_minute
):
    """Newfoundland (-03:30), India (+05:30), Nepal (+05:45): the stored hourly
    rollups are UTC hours, each holding parts of two of the zone's hours, so
    every call must land in its own local hour and day."""
    settings.TIME_ZONE = zone
    local = ZoneInfo(zone)
    key = ApiKeyFactory()
    # Minutes 10 and 50 of every UTC hour over two days: each UTC hour's two
    # calls are in two different local hours, and one of each day's is across
    # local midnight from the other.
    start = datetime(2026, 11, 9, 0, 0, tzinfo=UTC)
    moments = [start + timedelta(hours=h, minutes=m) for h in range(48) for m in (10, 50)]
    ingest_calls([record_dict(key, created_at=moment) for moment in moments])

    for interval in ("hour", "day"):
        body = support_api.get(STATS_URL, {"interval": interval}).json()
        got = {parse_time(row["bucket"]): row["calls"] for row in body["results"]}
        expected: dict[datetime, int] = defaultdict(int)
        for moment in moments:
            there = moment.astimezone(local)
            if interval == "hour":
                expected[there.replace(minute=0, second=0)] += 1
            else:
                expected[there.replace(hour=0, minute=0, second=0)] += 1
        assert got == expected, interval
        assert {b.astimezone(UTC).minute for b in got} == {bucket_minute}
        assert body["totals"]["calls"] == len(moments)


def test_stats_percentiles_fall_in_the_calls_duration_bucket(catalog, staff_api):
    for request_id, low, high in [
        ("cat-04", 3000, 5000),
        ("cat-06", 30000, 60000),
        ("cat-03", 0, 50),
        ("cat-10", 60000, 120000),
    ]:
        duration = catalog.call(request_id).duration_ms
        assert low <= duration < high
        totals = staff_api.get(STATS_URL, {"request_id": request_id}).json()["totals"]
        assert low <= totals["p50_duration_ms"] <= high, request_id
        assert low <= totals["p95_duration_ms"] <= high, request_id


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"interval": "week"}, "interval"),
        ({"interval": "minute"}, "interval"),
        ({"interval": "HOUR"}, "interval"),
        ({"group_by": "account"}, "group_by"),
        ({"group_by": "upstream"}, "group_by"),
        ({"group_by": "model", "interval": "year"}, "interval"),
    ],
)
def test_stats_bad_interval_or_group_by_is_400_naming_it(support_api, params, name):
    response = support_api.get(STATS_URL, params)
    assert response.status_code == 400
    assert name in response.json()


@pytest.mark.parametrize("staff", [False, True])
def test_list_rows_are_what_drfs_own_serializer_gives(db, staff):
    """The list's planned to_representation (logs.api.serializers) against DRF's
    generic one, over calls with and without optional values."""
    from rest_framework import serializers as drf

    from logs.api.serializers import CallSerializer, StaffCallSerializer

    key = ApiKeyFactory()
    for overrides in (
        {},
        {"status_code": 503, "error_reason": "upstream timed out", "output_tokens": 0},
        {"ttft_ms": None, "client_ip": None, "usage": "0", "cost": "0.00000001"},
        {"stream": True, "ttft_ms": 120, "duration_ms": 4000, "output_tokens": 321},
    ):
        make_call(key, **overrides)
    calls = list(CallRecord.objects.select_related("account", "api_key", "group").order_by("pk"))
    ours = StaffCallSerializer if staff else CallSerializer

    class Generic(ours):
        to_representation = drf.Serializer.to_representation

    expected = json.loads(json.dumps(Generic(calls, many=True).data))
    assert expected[1]["status"] == "server_error" and expected[2]["client_ip"] is None
    assert json.loads(json.dumps(ours(calls, many=True).data)) == expected


def test_stats_rows_are_what_drfs_own_serializer_gives(db):
    """The stats rows' planned to_representation against DRF's generic one,
    grouped and per hour (buckets, keys, errors, empty percentiles included)."""
    from rest_framework import serializers as drf

    from logs.api.serializers import StatsRowSerializer
    from logs.read.filters import CallFilters
    from logs.read.stats import scoped_usage_stats

    key = ApiKeyFactory()
    for overrides in (
        {},
        {"status_code": 503, "error_reason": "upstream timed out", "output_tokens": 0},
        {"model": "gpt-4o", "duration_ms": 0, "ttft_ms": None, "usage": "0", "cost": "0.00000001"},
        {"call_type": "embedding", "output_tokens": 0, "ttft_ms": None},
    ):
        make_call(key, **overrides)
    staff = StaffUserFactory()
    rows = scoped_usage_stats(staff, filters=CallFilters(), interval="hour", group_by="model")
    rows += scoped_usage_stats(staff, filters=CallFilters(), interval=None, group_by="call_type")

    class Generic(StatsRowSerializer):
        to_representation = drf.Serializer.to_representation

    expected = json.loads(json.dumps(Generic(rows, many=True).data))
    assert {row["key"] for row in expected} >= {"gpt-4o", "embedding"}
    assert any(row["errors"] for row in expected) and expected[0]["bucket"] is not None
    assert json.loads(json.dumps(StatsRowSerializer(rows, many=True).data)) == expected
