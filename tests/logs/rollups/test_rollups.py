"""Rollups stay equal to what rebuilding them from raw calls gives; totals and
stats read from them equal sums over raw calls, whichever level answers."""

from __future__ import annotations

import random
from datetime import UTC, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from logs.admin.stats_page import CHART_SUMS
from logs.ingest.service import ingest_calls
from logs.models import (
    SUMMARY_ROLLUP_LEVELS,
    CallRecord,
    DailyAccountModelRollup,
    DailyCallRollup,
    DailyKeyRollup,
    DailyModelRollup,
    HourlyAccountModelRollup,
    HourlyModelRollup,
    MonthlyCallRollup,
    StatusClass,
)
from logs.read.filters import CallFilters, filter_calls
from logs.read.scope import visible_calls
from logs.read.stats import scoped_usage_stats, usage_stats
from logs.read.stats_sources import RawCallStats, ScopedCallStats
from logs.read.totals import call_totals, scoped_totals
from logs.rollups.rebuild import rebuild_rollups
from tests.clock import PINNED, TIME_SENSITIVE_INSTANTS, at_instants, instants
from tests.factories import (
    ApiKeyFactory,
    GroupFactory,
    ModelPriceFactory,
    StaffUserFactory,
    fold_rollups,
    owner_of,
    record_dict,
)
from tests.logs.rollups.levels import ALL_LEVELS as ROLLUP_LEVELS
from tests.logs.rollups.levels import all_levels

pytestmark = pytest.mark.django_db

# Token parts, and what the cache saved by the price list (money, like cost).
TOKEN_PARTS = ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "cache_savings")


@pytest.fixture
def random_calls(db, clock):
    """~600 calls, two keys, mixed models, types, statuses: half over the 30
    hours before the test's instant, half over the 75 days before it (so
    ranges cross days and months). The first half is folded into the rollup
    levels, the rest left pending, as between two folds: reads must be exact
    in that state too."""
    rnd = random.Random(42)
    keys = [
        ApiKeyFactory(name="prod"),
        ApiKeyFactory(group=GroupFactory(name="vip"), name="staging"),
        ApiKeyFactory(name="prod"),
    ]
    now = clock.now
    # Prices for two of the models (one of them with the vip group's own): the
    # calls report their cost, and what the cache saved is computed per call.
    ModelPriceFactory(model="gpt-4o", valid_from=now - timedelta(days=400))
    ModelPriceFactory(
        model="gpt-4o",
        group=keys[1].group,
        valid_from=now - timedelta(days=20),
        input_per_million=Decimal("3.333333"),
        cached_input_per_million=Decimal("0.000001"),
    )
    ModelPriceFactory(model="gpt-4o-mini", valid_from=now - timedelta(days=10))

    def token_parts(record: dict) -> dict:
        """Cache reads, cache writes and reasoning: random parts of the record's tokens."""
        cached = rnd.randint(0, record["input_tokens"])
        record["cached_input_tokens"] = cached
        record["cache_write_tokens"] = rnd.randint(0, record["input_tokens"] - cached)
        record["reasoning_tokens"] = rnd.randint(0, record["output_tokens"])
        return record

    records = [
        token_parts(
            record_dict(
                rnd.choice(keys),
                created_at=now - timedelta(minutes=rnd.randint(1, rnd.choice([30, 75 * 24]) * 60)),
                model=rnd.choice(["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"]),
                call_type=rnd.choice(["chat", "embedding", "image"]),
                status_code=rnd.choice([200, 200, 200, 400, 429, 500, 503]),
                duration_ms=rnd.choice([0, 49, 50, 999, 1000, 1001, 65_000, 200_000]),
                ttft_ms=None,
                input_tokens=rnd.randint(0, 5000),
                output_tokens=rnd.randint(0, 800),
                usage=str(Decimal(rnd.randint(0, 10**6)) / 10**6),
                cost=str(Decimal(rnd.randint(0, 10**8)) / 10**8),
            )
        )
        for _ in range(600)
    ]
    for start in range(0, len(records), 150):
        ingest_calls(records[start : start + 150])
        if start == 150:
            fold_rollups()
    ingest_calls(records[:50])  # replays add nothing
    return records


@at_instants("last minute of November")
def test_incremental_rollups_equal_a_rebuild_from_raw_calls(random_calls):
    fold_rollups()
    incremental = all_levels()
    for level in ROLLUP_LEVELS:
        assert sum(row.calls for row in level.objects.all()) == len(random_calls)
    assert len(incremental["MonthlyCallRollup"]) < len(incremental["DailyCallRollup"])
    assert len(incremental["DailyCallRollup"]) < len(incremental["HourlyCallRollup"])

    rebuild_rollups()

    assert all_levels() == incremental


@at_instants("last minute of Feb 29")
def test_each_day_and_month_row_sums_the_raw_calls_of_its_period(random_calls):
    fold_rollups()
    for level, unit in ((DailyCallRollup, "day"), (MonthlyCallRollup, "month")):
        for row in level.objects.all():
            start = getattr(row, unit)
            calls = CallRecord.objects.filter(
                created_at__gte=start,
                created_at__lt=level.next_period(start),
                api_key_id=row.api_key_id,
                model=row.model,
                call_type=row.call_type,
            ).filter(StatusClass.q(row.status_class))
            totals = call_totals(calls)
            assert (row.calls, row.input_tokens, row.cost) == (
                totals.calls,
                totals.input_tokens,
                totals.cost,
            ), (unit, start)
            assert (
                [getattr(row, name) for name in TOKEN_PARTS]
                == [getattr(totals, name) for name in TOKEN_PARTS]
                == [sum(calls.values_list(name, flat=True)) for name in TOKEN_PARTS]
            )


def test_each_summary_row_sums_the_raw_calls_of_its_period_and_dimensions(random_calls):
    fold_rollups()
    assert DailyModelRollup.objects.count() < DailyAccountModelRollup.objects.count()
    assert HourlyModelRollup.objects.count() < HourlyAccountModelRollup.objects.count()
    assert DailyModelRollup.objects.count() < HourlyModelRollup.objects.count()
    for level in SUMMARY_ROLLUP_LEVELS:
        assert level.objects.exists()
        for row in level.objects.all():
            start = getattr(row, level.PERIOD_FIELD)
            kept = {
                f"{name}_id" if name in ("account", "api_key", "group") else name: None
                for name in level.DIMENSIONS[1:]
            }
            kept = {name: getattr(row, name) for name in kept}
            calls = CallRecord.objects.filter(
                created_at__gte=start, created_at__lt=level.next_period(start), **kept
            )
            totals = call_totals(calls)
            assert (row.calls, row.errors, row.input_tokens, row.cost, row.duration_ms_sum) == (
                totals.calls,
                totals.errors,
                totals.input_tokens,
                totals.cost,
                totals.duration_ms_sum,
            ), (level.__name__, start, kept)
            assert [getattr(row, name) for name in TOKEN_PARTS] == [
                sum(calls.values_list(name, flat=True)) for name in TOKEN_PARTS
            ], (level.__name__, start, kept)


@at_instants("midnight UTC", "last minute of November")
def test_a_partial_rebuild_recomputes_the_days_and_months_it_touches(random_calls, clock):
    """At midnight and at a month's end: the days and months a range touches."""
    fold_rollups()
    expected = all_levels()
    DailyCallRollup.objects.all().delete()
    DailyKeyRollup.objects.all().delete()
    MonthlyCallRollup.objects.update(calls=0)
    DailyModelRollup.objects.update(errors=0)
    now = clock.now

    rebuild_rollups(start=now - timedelta(days=80), end=now + timedelta(hours=2))

    assert all_levels() == expected


@at_instants("Berlin, 1 min after fall back")
def test_rebuild_command_restores_deleted_rollups(random_calls):
    fold_rollups()
    expected = all_levels()
    for level in ROLLUP_LEVELS:
        level.objects.all().delete()

    call_command("rebuild_rollups")

    assert all_levels() == expected


def test_rebuild_command_rejects_bad_bounds(db):
    with pytest.raises(CommandError, match="--since"):
        call_command("rebuild_rollups", since="yesterday")
    with pytest.raises(CommandError, match="after"):
        call_command("rebuild_rollups", since="2026-01-02T00:00:00Z", until="2026-01-01T00:00:00Z")


# 24 random questions, each at another instant: every instant of
# TIME_SENSITIVE_INSTANTS and PINNED is where one to two of them are asked.
TOTALS_CASES = [
    (who, seed, instant)
    for (who, seed), instant in zip(
        ((who, seed) for seed in range(12) for who in ("staff", "owner")),
        [PINNED, *TIME_SENSITIVE_INSTANTS] * 2,
        strict=False,
    )
]


@pytest.mark.parametrize(
    "who, seed, clock",
    [
        pytest.param(who, seed, instant, id=f"{who}-{seed}-{instant}")
        for who, seed, instant in TOTALS_CASES
    ],
    indirect=["clock"],
)
def test_totals_and_stats_from_rollups_equal_sums_over_raw_calls(random_calls, clock, seed, who):
    """Whichever level answers (full, or a daily summary when the question
    needs few dimensions), for support staff and for one account's owner;
    the ranges ask for hours, days and months cut at every time-sensitive
    instant (hour, day, month and Feb 29 edges, daylight saving changes in
    Berlin and St. John's, where the site's zone is that city's)."""
    rnd = random.Random(seed)
    key = CallRecord.objects.order_by("id").first().api_key
    staff = StaffUserFactory() if who == "staff" else owner_of(key.account)
    now = clock.now
    scale = rnd.choice([31, 80 * 24])  # hours back: within a day or two, or months
    start = now - timedelta(minutes=rnd.randint(0, scale * 60), seconds=rnd.randint(0, 59))
    filters = CallFilters(
        start=rnd.choice([start, None]),
        end=rnd.choice([start + timedelta(minutes=rnd.randint(1, scale * 40)), None]),
        model=rnd.choice([None, "gpt-4o"]),
        status=rnd.choice([None, "success", "client_error", "server_error"]),
        call_type=rnd.choice([None, None, "chat"]),
        key_name=rnd.choice([None, None, "prod"]),
        group=rnd.choice([None, None, "vip"]),
        account_id=rnd.choice([None, None, key.account_id]) if who == "staff" else None,
    )
    raw = filter_calls(visible_calls(staff), filters)

    for folded in ("half folded", "all folded"):
        if folded == "all folded":
            fold_rollups()
        assert scoped_totals(staff, filters=filters) == call_totals(raw), folded
        for interval in ("hour", "day", None):
            for group_by in (None, "model", "key_name", "group", "call_type"):
                expected = [
                    r
                    for r in usage_stats(raw, interval=interval, group_by=group_by)
                    if r.calls or (interval is None and group_by is None)
                ]
                assert (
                    scoped_usage_stats(staff, filters=filters, interval=interval, group_by=group_by)
                    == expected
                ), (folded, interval, group_by)
            # What a chart reads: a few sums, no histogram; the others read as zero.
            drawn = scoped_usage_stats(
                staff, filters=filters, interval=interval, histogram=False, sums=CHART_SUMS
            )
            assert [[r.bucket, *(getattr(r, name) for name in CHART_SUMS)] for r in drawn] == [
                [r.bucket, *(getattr(r, name) for name in CHART_SUMS)]
                for r in usage_stats(raw, interval=interval)
                if r.calls or interval is None
            ], (folded, interval, "chart sums")
            assert all(
                r.histogram == () and r.cached_input_tokens == 0 and r.duration_ms_sum == 0
                for r in drawn
            )


# (the site's zone, or None for the instant's own; the instant)
DAY_BUCKET_CASES = [
    ("UTC", "last minute of November"),
    ("America/New_York", "pinned"),
    ("Asia/Tokyo", "midnight UTC"),
    (None, "Berlin, 1 min after spring forward"),
    (None, "Berlin, 1 min before fall back"),
    (None, "St. John's, 1 min after fall back"),
]


@pytest.mark.parametrize(
    "zone, clock",
    [
        pytest.param(zone, *instants(instant), id=f"{zone or 'its zone'}-{instant}")
        for zone, instant in DAY_BUCKET_CASES
    ],
    indirect=["clock"],
)
def test_day_buckets_follow_the_time_zone_whatever_level_they_come_from(
    random_calls, clock, zone, settings
):
    """50 days back from the instant, in zones east and west of UTC, and in
    Berlin and St. John's (half an hour off whole-hour zones) over their
    daylight saving changes."""
    if zone is not None:
        settings.TIME_ZONE = zone
    staff = StaffUserFactory()
    now = clock.now
    filters = CallFilters(start=now - timedelta(days=50, minutes=7), end=now)

    raw = filter_calls(visible_calls(staff), filters)
    expected = [r for r in usage_stats(raw, interval="day") if r.calls]

    assert scoped_usage_stats(staff, filters=filters, interval="day") == expected
    # Without histograms (the stats page's time series): the same sums, no percentiles.
    lean = scoped_usage_stats(staff, filters=filters, interval="day", histogram=False)
    assert lean == [r for r in usage_stats(raw, interval="day", histogram=False) if r.calls]
    assert [(r.bucket, r.calls, r.cost) for r in lean] == [
        (r.bucket, r.calls, r.cost) for r in expected
    ]
    assert all(r.duration_percentile(0.5) is None for r in lean)


@at_instants("1 min before an hour", "midnight UTC", "last minute of November")
def test_whole_months_and_days_are_read_from_the_coarse_levels(random_calls, clock):
    """Just before an hour, at midnight and at a month's end: the week is cut
    into days and hours from the instant's hour."""
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    fold_rollups()
    staff = StaffUserFactory()
    expected = call_totals(visible_calls(staff))
    with CaptureQueriesContext(conn) as unfiltered:
        assert scoped_totals(staff) == expected
    tables = " ".join(q["sql"] for q in unfiltered.captured_queries)
    assert "logs_monthlycallrollup" in tables
    assert "logs_callrecord" not in tables and '"logs_hourlycallrollup"' not in tables

    # Seven days from a whole hour to an open end: days, plus the hours before
    # the first midnight; no raw calls at all.
    start = clock.now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start -= timedelta(days=7) if start.hour else timedelta(days=7, hours=1)
    filters = CallFilters(start=start)
    expected = call_totals(filter_calls(visible_calls(staff), filters))
    with CaptureQueriesContext(conn) as week:
        assert scoped_totals(staff, filters=filters) == expected
    tables = " ".join(q["sql"] for q in week.captured_queries)
    # All accounts' whole days: the per-model summary; their hours: the hourly
    # totals, one row an hour.
    assert "logs_dailymodelrollup" in tables and "logs_hourlytotalrollup" in tables
    assert "logs_dailycallrollup" not in tables and '"logs_hourlycallrollup"' not in tables
    assert "logs_hourlymodelrollup" not in tables

    # One account's hours: its hourly totals.
    owner = owner_of(CallRecord.objects.order_by("id").first().account)
    expected = call_totals(filter_calls(visible_calls(owner), filters))
    with CaptureQueriesContext(conn) as account_week:
        assert scoped_totals(owner, filters=filters) == expected
    tables = " ".join(q["sql"] for q in account_week.captured_queries)
    assert "logs_hourlyaccountrollup" in tables
    assert "logs_hourlyaccountmodelrollup" not in tables and "logs_callrecord" not in tables
    assert "logs_callrecord" not in tables


@pytest.mark.parametrize("order_by", ["calls", "cost"])
@at_instants("1 min after an hour", "3 s before midnight UTC", "last minute of Feb 29")
def test_busiest_keys_from_rollups_rank_like_raw_calls_ties_included(db, clock, order_by):
    """Thirteen keys, most of them tied: the rollups' top ten (names looked up
    only for the keys that can rank) are the raw calls' top ten, in order.
    Five days back from a minute after an hour, just before midnight and the
    end of Feb 29: partial hours at the start."""
    staff = StaffUserFactory()
    now = clock.now
    keys = [ApiKeyFactory(name=name) for name in "mlkjihgfedcba"]
    records = []
    for index, key in enumerate(keys):
        calls = 3 if index < 9 else 2  # nine tied for first, four tied for last
        records += [
            record_dict(
                key,
                created_at=now - timedelta(days=2, minutes=n),
                cost="0.5" if index % 2 else "0.25",
            )
            for n in range(calls)
        ]
    ingest_calls(records)
    filters = CallFilters(start=now - timedelta(days=5))

    scoped = ScopedCallStats(staff, account=None, filters=filters)
    raw = RawCallStats(filter_calls(visible_calls(staff), filters))

    expected = raw.top_keys(order_by=order_by, limit=10)
    assert [k.key_name for k in expected][:3] != ["m", "l", "k"]  # ties really are broken by name
    assert scoped.top_keys(order_by=order_by, limit=10) == expected
    assert scoped.top_keys(order_by=order_by, limit=3) == raw.top_keys(order_by=order_by, limit=3)
