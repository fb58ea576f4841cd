"""Hour and day buckets, totals and ranges are exact in every time zone.

Rollups are kept per UTC period, so a zone whose offset is not a whole number
of hours (India +05:30, Nepal +05:45, South Australia +09:30/+10:30,
Newfoundland -03:30/-02:30) cuts UTC hours in two, and a daylight-saving
change makes a day of 23 or 25 hours. Whatever the zone, the stats read from
rollups must equal the same sums over raw calls, bucketed by the raw calls'
own local time, on both databases.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from logs.ingest.service import ingest_calls
from logs.models import CallRecord
from logs.read.filters import CallFilters, filter_calls
from logs.read.scope import visible_calls
from logs.read.stats import scoped_usage_stats, usage_stats
from logs.read.totals import call_totals, scoped_totals
from tests.api.helpers import token_client, token_for
from tests.conftest import logged_in
from tests.factories import ApiKeyFactory, GroupFactory, StaffUserFactory, owner_of, record_dict

pytestmark = pytest.mark.django_db

# Each zone with a stretch of time around its daylight-saving changes (or, for
# zones without any, around a month end): calls fall on both sides of every
# local midnight and every local hour there.
ZONES = {
    "Asia/Kolkata": datetime(2026, 11, 29, 12, tzinfo=UTC),  # +05:30, month end
    "Asia/Kathmandu": datetime(2028, 2, 28, 12, tzinfo=UTC),  # +05:45, Feb 29
    "Australia/Adelaide": datetime(2026, 10, 3, 12, tzinfo=UTC),  # +09:30 -> +10:30
    "America/St_Johns": datetime(2026, 10, 31, 18, tzinfo=UTC),  # -02:30 -> -03:30
    "Europe/Berlin": datetime(2026, 3, 28, 12, tzinfo=UTC),  # 23-hour day
    "America/New_York": datetime(2026, 10, 31, 12, tzinfo=UTC),  # 25-hour day
}
SPAN = timedelta(days=3)
NOW_AFTER = timedelta(days=4)  # "now", for ingest's clock-skew check


def spread_calls(around: datetime, seed: int = 3) -> list[CallRecord]:
    """Calls every 7 to 23 minutes for three days from ``around``, so every
    quarter of an hour gets some, over two accounts, two models and two keys."""
    rnd = random.Random(seed)
    default, vip = GroupFactory(name="default"), GroupFactory(name="vip")
    keys = [
        ApiKeyFactory(name="prod", group=default),
        ApiKeyFactory(name="batch", group=vip),
        ApiKeyFactory(name="prod", group=default),
    ]
    records = []
    moment = around
    while moment < around + SPAN:
        records.append(
            record_dict(
                rnd.choice(keys),
                created_at=moment,
                model=rnd.choice(["gpt-4o", "claude-3-5-sonnet"]),
                status_code=rnd.choice([200, 200, 200, 429, 503]),
                duration_ms=rnd.choice([40, 800, 1_200, 31_000]),
                ttft_ms=None,
                input_tokens=rnd.randint(0, 4000),
                output_tokens=rnd.randint(0, 600),
                usage=str(Decimal(rnd.randint(0, 10**6)) / 10**6),
                cost=str(Decimal(rnd.randint(0, 10**8)) / 10**8),
            )
        )
        moment += timedelta(minutes=rnd.randint(7, 23), seconds=rnd.randint(0, 59))
    now = around + NOW_AFTER
    for start in range(0, len(records), 500):
        ingest_calls(records[start : start + 500], now=now)
    return keys


def raw_stats(user, filters: CallFilters, interval, group_by=None):
    raw = filter_calls(visible_calls(user), filters)
    return [
        row
        for row in usage_stats(raw, interval=interval, group_by=group_by)
        if row.calls or (interval is None and group_by is None)
    ]


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_hour_and_day_buckets_equal_raw_sums_in_every_zone(zone):
    around = ZONES[zone]
    keys = spread_calls(around)
    staff = StaffUserFactory()
    owner = owner_of(keys[0].account)
    with override_settings(TIME_ZONE=zone), timezone.override(zone):
        ranges = [
            CallFilters(),
            # Odd local minutes at both ends: partial quarters, hours and days.
            CallFilters(start=around + timedelta(hours=5, minutes=7), end=around + SPAN),
            CallFilters(
                start=around + timedelta(minutes=53), end=around + timedelta(days=2, minutes=11)
            ),
        ]
        for user in (staff, owner):
            for filters in ranges:
                for interval in ("hour", "day"):
                    for group_by in (None, "model", "key_name"):
                        expected = raw_stats(user, filters, interval, group_by)
                        got = scoped_usage_stats(
                            user, filters=filters, interval=interval, group_by=group_by
                        )
                        assert got == expected, (user.username, filters, interval, group_by)
                assert scoped_totals(user, filters=filters) == call_totals(
                    filter_calls(visible_calls(user), filters)
                )


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_filtered_hour_and_day_buckets_equal_raw_sums_in_every_zone(zone):
    """Filters that only the full levels (or raw calls) can answer: a key name,
    a group, a status class."""
    around = ZONES[zone]
    spread_calls(around, seed=11)
    staff = StaffUserFactory()
    with override_settings(TIME_ZONE=zone), timezone.override(zone):
        for filters in (
            CallFilters(key_name="prod"),
            CallFilters(group="vip", start=around + timedelta(hours=1, minutes=37)),
            CallFilters(status="server_error", end=around + timedelta(days=2, hours=3)),
            CallFilters(model="gpt-4o", status="success"),
        ):
            for interval in ("hour", "day"):
                expected = raw_stats(staff, filters, interval)
                assert scoped_usage_stats(staff, filters=filters, interval=interval) == expected


@override_settings(TIME_ZONE="Asia/Kolkata")
def test_the_stats_api_puts_calls_half_an_hour_apart_in_their_own_local_hours():
    """10:15Z is 15:45 in India and 10:45Z is 16:15: two hours, one call each,
    with or without a start in the range."""
    key = ApiKeyFactory()
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    ingest_calls(
        [
            record_dict(key, created_at=datetime(2026, 12, 1, 10, 15, tzinfo=UTC)),
            record_dict(key, created_at=datetime(2026, 12, 1, 10, 45, tzinfo=UTC)),
        ],
        now=now,
    )
    client = token_client(token_for(StaffUserFactory()))
    for query in ("", "&start=2026-12-01T00:00:00Z", "&start=2026-12-01T10:20:00Z"):
        response = client.get(f"/api/v1/stats/?interval=hour{query}")
        assert response.status_code == 200, response.content
        buckets = [(row["bucket"], row["calls"]) for row in response.json()["results"]]
        if query.endswith("10:20:00Z"):
            assert buckets == [("2026-12-01T16:00:00+05:30", 1)]
        else:
            assert buckets == [
                ("2026-12-01T15:00:00+05:30", 1),
                ("2026-12-01T16:00:00+05:30", 1),
            ]


@override_settings(TIME_ZONE="Asia/Kathmandu")
def test_the_stats_page_draws_each_call_in_its_local_day_across_midnight():
    """Nepal's midnight is 18:15 UTC: calls at 18:10Z and 18:20Z are on two days."""
    key = ApiKeyFactory()
    ingest_calls(
        [
            record_dict(key, created_at=datetime(2026, 11, 30, 18, 10, tzinfo=UTC)),
            record_dict(key, created_at=datetime(2026, 11, 30, 18, 20, tzinfo=UTC)),
            record_dict(key, created_at=datetime(2026, 11, 30, 18, 25, tzinfo=UTC)),
        ],
        now=datetime(2026, 12, 2, tzinfo=UTC),
    )
    client = logged_in(StaffUserFactory())
    response = client.get(
        "/admin/logs/callrecord/stats/?start=2026-11-20&end=2026-12-05&interval=day"
    )
    assert response.status_code == 200
    calls_table = response.context["stats"].charts[0].rows
    assert [row for row in calls_table if row[1] != "0"] == [
        ["2026-11-30", "1"],
        ["2026-12-01", "2"],
    ]


@override_settings(TIME_ZONE="America/New_York")
def test_the_hour_a_daylight_saving_change_repeats_is_two_hours_not_one():
    """On 2026-11-01 New York's clocks show 01:00-02:00 twice (05:00Z in EDT,
    06:00Z in EST): a call in each is in its own hour, from raw calls and from
    rollups alike, and the day has 25 hours."""
    key = ApiKeyFactory()
    ingest_calls(
        [
            record_dict(key, created_at=datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
            record_dict(key, created_at=datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
        ],
        now=datetime(2026, 11, 2, tzinfo=UTC),
    )
    staff = StaffUserFactory()
    whole_day = CallFilters(
        start=datetime(2026, 11, 1, 4, tzinfo=UTC), end=datetime(2026, 11, 2, 5, tzinfo=UTC)
    )
    part_of_it = CallFilters(start=datetime(2026, 11, 1, 5, 10, tzinfo=UTC))
    for filters in (whole_day, part_of_it):
        rows = scoped_usage_stats(staff, filters=filters, interval="hour")
        assert [(row.bucket.astimezone(UTC).hour, row.calls) for row in rows] == [(5, 1), (6, 1)]
        assert rows == raw_stats(staff, filters, "hour")

    client = logged_in(staff)
    response = client.get(
        "/admin/logs/callrecord/stats/?start=2026-11-01T00:00&end=2026-11-02T00:00&interval=hour"
    )
    assert response.status_code == 200
    calls_table = response.context["stats"].charts[0].rows
    assert len(calls_table) == 25
    assert [row for row in calls_table if row[1] != "0"] == [
        ["2026-11-01 01:00 EDT", "1"],
        ["2026-11-01 01:00 EST", "1"],
    ]
