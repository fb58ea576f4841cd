"""Deep pages of the call list start from a time boundary found in the daily
rollups (``logs.read.seek.seek_page``) instead of a long OFFSET, and the list
counts only calls that were not pruned. Whatever the filters and the order,
every page must show exactly the calls plain OFFSET pagination would."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from logs.ingest.service import ingest_calls
from logs.models import CallRecord, PruneRun
from logs.read import seek
from logs.read.filters import CallFilters, filter_calls
from logs.read.seek import seek_page
from logs.retention.prune import prune_calls
from tests.clock import Instant, at_instants, instants
from tests.conftest import logged_in
from tests.factories import ApiKeyFactory, GroupFactory, owner_of, record_dict

pytestmark = pytest.mark.django_db

LIST = "/admin/logs/callrecord/"
PORTAL_LIST = "/portal/logs/callrecord/"
PER_PAGE = 100


@pytest.fixture
def spread(monkeypatch, clock):
    """~650 calls of two accounts over the six days before the test's instant,
    at random times (several per second at times, so ties in created_at
    happen), of three models and two call types. Seeking is switched on from
    the second page."""
    monkeypatch.setattr(seek, "SEEK_MIN_OFFSET", 1)
    rng = random.Random(7)
    now = clock.now
    key_a = ApiKeyFactory(name="prod")
    key_b = ApiKeyFactory(name="prod")
    records = []
    for key, count in ((key_a, 450), (key_b, 200)):
        for _ in range(count):
            moment = now - timedelta(seconds=rng.randrange(6 * 86400))
            records.append(
                record_dict(
                    key,
                    created_at=moment.replace(microsecond=0),
                    model=rng.choice(["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet"]),
                    call_type=rng.choice(["chat", "chat", "embedding"]),
                )
            )
    result = ingest_calls(records)
    assert len(result.created_ids) == 650
    return key_a, key_b, now


def page_ids(client, url: str) -> list[int]:
    response = client.get(url)
    assert response.status_code == 200
    return [call.pk for call in response.context["cl"].result_list]


def expected_ids(calls, newest_first: bool) -> list[int]:
    order = ("-created_at", "-id") if newest_first else ("created_at", "-id")
    return list(calls.order_by(*order).values_list("pk", flat=True))


def iso_minute(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


# Each case at an instant of its own: where the hours and days the seek
# skips begin and end, relative to the calls, is what moves with the clock.
PAGINATION_CASES = [
    ("none", True, "pinned"),
    ("none", False, "midnight UTC"),
    ("model", True, "1 min after an hour"),
    ("model", False, "last minute of November"),
    ("call type", True, "3 s before midnight UTC"),
    ("call type", False, "last minute of Feb 29"),
    ("time range", True, "Berlin, 1 min after fall back"),
    ("time range", False, "St. John's, 1 min before spring forward"),
]


@pytest.mark.parametrize(
    "filtered, newest_first, clock",
    [
        pytest.param(
            filtered,
            newest_first,
            *instants(instant),
            id=f"{filtered}-{'newest' if newest_first else 'oldest'} first-{instant}",
        )
        for filtered, newest_first, instant in PAGINATION_CASES
    ],
    indirect=["clock"],
)
def test_every_admin_page_shows_what_offset_pagination_shows(
    staff_client, spread, filtered, newest_first
):
    """Every filter in both orders, each case at another instant: on the hour
    and day edges of UTC, and (the time range, typed in the site's zone)
    across daylight saving changes in Berlin and St. John's."""
    _, _, now = spread
    calls = CallRecord.objects.all()
    query = {}
    if filtered == "model":
        query = {"model": "gpt-4o"}
        calls = calls.filter(model="gpt-4o")
    elif filtered == "call type":
        query = {"call_type": "embedding"}
        calls = calls.filter(call_type="embedding")
    elif filtered == "time range":
        # Neither end on a day or an hour: partial days at both ends.
        start, end = now - timedelta(days=5, minutes=437), now - timedelta(hours=7, minutes=13)
        query = {"start": iso_minute(start), "end": iso_minute(end)}
        start = start.replace(second=0, microsecond=0)
        end = end.replace(second=0, microsecond=0)
        calls = calls.filter(created_at__gte=start, created_at__lt=end)
    if not newest_first:
        query["o"] = "0"
    expected = expected_ids(calls, newest_first)
    assert len(expected) > 2 * PER_PAGE  # at least three pages

    pages = (len(expected) + PER_PAGE - 1) // PER_PAGE
    for page in range(1, pages + 1):
        params = "&".join(f"{k}={v}" for k, v in {**query, "p": page}.items())
        shown = page_ids(staff_client, f"{LIST}?{params}")
        assert shown == expected[(page - 1) * PER_PAGE : page * PER_PAGE], f"page {page}"


@at_instants("midnight UTC", "Berlin, 1 min after spring forward")
def test_every_portal_page_shows_what_offset_pagination_shows(spread):
    key_a, _, _ = spread
    client = logged_in(owner_of(key_a.account))
    expected = expected_ids(CallRecord.objects.filter(account=key_a.account), True)
    for page in range(1, 6):
        shown = page_ids(client, f"{PORTAL_LIST}?p={page}")
        assert shown == expected[(page - 1) * PER_PAGE : page * PER_PAGE], f"page {page}"


# With "now" from 16:09 to 16:15 (any day), the hour just before the boundary
# the hourly walk stops at holds none of the spread's gpt-4o calls: a check
# that looked only at that hour failed then (CI runs did, at 16:12 UTC).
TWELVE_PAST = Instant("12 min past an hour", datetime(2026, 12, 16, 16, 12, tzinfo=UTC))


def period_start(moment: datetime, unit: timedelta) -> datetime:
    """The UTC hour or day ``moment`` falls in: the rollups' periods."""
    start = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if unit == timedelta(days=1) else start


# A model filter over every account: the hourly per-model summary counts hours.
TO_THE_HOUR = (CallFilters(model="gpt-4o"), timedelta(hours=1))
# A key name: only the full hourly level could count hours, so days only.
TO_THE_DAY = (CallFilters(key_name="prod", call_type="chat"), timedelta(days=1))


@pytest.mark.parametrize(
    "filters, unit, clock",
    [
        *(
            pytest.param(*TO_THE_HOUR, instant, id=f"to the hour-{instant}")
            for instant in instants(
                TWELVE_PAST, "1 min before an hour", "midnight UTC", "last minute of November"
            )
        ),
        *(
            pytest.param(*TO_THE_DAY, instant, id=f"to the day-{instant}")
            for instant in instants(
                "midnight UTC", "3 s before midnight UTC", "last minute of Feb 29"
            )
        ),
    ],
    indirect=["clock"],
)
def test_the_seek_skips_whole_periods_counted_exactly(staff_user, spread, filters, unit):
    """Hours at 12 minutes past an hour (an hour before the boundary is empty
    then), a minute before an hour, at midnight and at a month's end; days at
    and just before midnight and at the end of Feb 29: the seek's periods are
    UTC hours and days, so these are its edges."""
    matching = filter_calls(CallRecord.objects.all(), filters)
    offset = matching.count() // 2
    seek = seek_page(staff_user, filters=filters, offset=offset)

    assert seek.boundary is not None
    boundary = seek.boundary.astimezone(UTC)
    assert boundary == period_start(boundary, unit)
    skipped = matching.filter(created_at__gte=seek.boundary).count()
    assert skipped == offset - seek.offset
    assert 0 <= seek.offset < offset  # the walk got shorter
    # The boundary is the newest whole period whose calls reach the offset:
    # the next period beyond it that holds matching calls (an hour, or even a
    # day, may hold none) would take the walk past the offset.
    newest_beyond = matching.filter(created_at__lt=seek.boundary).latest("created_at").created_at
    next_period = period_start(newest_beyond, unit)
    in_next_period = matching.filter(
        created_at__gte=next_period, created_at__lt=next_period + unit
    ).count()
    assert in_next_period > 0
    assert skipped + in_next_period > offset


def test_a_shallow_page_or_a_request_id_search_does_not_seek(staff_user, db):
    assert seek_page(staff_user, filters=CallFilters(), offset=0).boundary is None
    assert seek_page(staff_user, filters=CallFilters(request_id="req-x"), offset=5000) == (
        seek.PageSeek(boundary=None, offset=5000)
    )


@at_instants(
    "midnight UTC",
    "last minute of November",
    "last minute of Feb 29",
    "Berlin, 1 min before spring forward",
    "Berlin, 1 min after fall back",
    "St. John's, 1 min after fall back",
)
def test_the_list_counts_only_calls_kept_after_a_prune(staff_client, clock):
    """At a day's and a month's edges, on Feb 29 (the cutoff 90 days back is
    in November) and at daylight saving changes (the stats page's start is
    typed in the site's zone)."""
    key = ApiKeyFactory(group=GroupFactory(name="default"))
    now = clock.now
    old = [record_dict(key, created_at=now - timedelta(days=100, minutes=i)) for i in range(5)]
    recent = [record_dict(key, created_at=now - timedelta(hours=2, minutes=i)) for i in range(3)]
    ingest_calls(old + recent)

    result = prune_calls(older_than=timedelta(days=90))

    response = staff_client.get(LIST)
    assert [c.pk for c in response.context["cl"].result_list] == expected_ids(
        CallRecord.objects.all(), True
    )
    assert response.context["cl"].result_count == 3
    assert response.context["totals"].calls == 3
    assert response.content.count(b"/logs/callrecord/") >= 3
    # Usage history outlives the raw calls: the stats page still counts all eight.
    stats = staff_client.get(LIST + "stats/?start=" + iso_minute(now - timedelta(days=120)))
    assert stats.context["stats"].totals.calls == 8
    # And support staff can see why.
    run = PruneRun.objects.get()
    assert run.cutoff == result.cutoff
    assert run.calls_deleted + 0 == result.calls_deleted
    listing = staff_client.get("/admin/logs/prunerun/")
    assert listing.status_code == 200
    assert timezone.localtime(run.cutoff).strftime("%Y").encode() in listing.content


@at_instants("midnight UTC", "1 min after an hour", "last minute of Feb 29")
def test_pages_from_the_oldest_start_at_the_oldest_kept_call(staff_client, monkeypatch, clock):
    """The first kept call's day and hour move with the clock: at midnight, a
    minute after an hour and at the end of Feb 29."""
    monkeypatch.setattr(seek, "SEEK_MIN_OFFSET", 1)
    key = ApiKeyFactory()
    now = clock.now
    records = [record_dict(key, created_at=now - timedelta(days=100, minutes=i)) for i in range(40)]
    records += [record_dict(key, created_at=now - timedelta(minutes=13 * i)) for i in range(250)]
    ingest_calls(records)
    prune_calls(older_than=timedelta(days=90))

    expected = expected_ids(CallRecord.objects.all(), False)
    assert len(expected) == 250
    for page in (1, 2, 3):
        shown = page_ids(staff_client, f"{LIST}?o=0&p={page}")
        assert shown == expected[(page - 1) * PER_PAGE : page * PER_PAGE], f"page {page}"


def test_prune_runs_are_read_only_and_not_shown_to_account_owners(staff_client, owner_a_client):
    key = ApiKeyFactory()
    ingest_calls([record_dict(key, created_at=timezone.now() - timedelta(days=100))])
    prune_calls(older_than=timedelta(days=90))
    run = PruneRun.objects.get()
    before = list(PruneRun.objects.values())

    # Staff can read the list and a run, never add, change or delete one.
    assert staff_client.get("/admin/logs/prunerun/").status_code == 200
    assert staff_client.get("/admin/logs/prunerun/add/").status_code == 403
    assert (
        staff_client.post(f"/admin/logs/prunerun/{run.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    changed = staff_client.post(f"/admin/logs/prunerun/{run.pk}/change/", {"calls_deleted": 0})
    assert changed.status_code == 403
    assert list(PruneRun.objects.values()) == before

    # Owners: the portal has no such page, and the staff admin lets them in nowhere.
    assert owner_a_client.get("/portal/logs/prunerun/").status_code == 404
    assert owner_a_client.get("/admin/logs/prunerun/").status_code == 302
