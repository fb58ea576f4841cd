"""Rollups are kept outside the ingest transaction: ingest appends pending
deltas, a folder moves them into every level. Every read that uses rollups
adds what is still pending, so it is exact at every moment, folded or not,
and a fold that dies midway loses and doubles nothing."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection, connections
from django.test import override_settings

from accounts.models import ApiKey
from logs.ingest import store as ingest_store
from logs.ingest.service import ingest_calls
from logs.models import (
    CallRecord,
    FoldStatus,
    HourlyCallRollup,
    PendingRollupDelta,
)
from logs.read import seek, slow
from logs.read.filters import CallFilters, filter_calls
from logs.read.scope import visible_calls
from logs.read.seek import seek_page
from logs.read.slow import slow_call_thresholds
from logs.read.snapshot import consistent_read
from logs.read.stats import scoped_usage_stats, usage_stats
from logs.read.totals import call_totals, scoped_totals
from logs.rollups import apply as rollup_apply
from logs.rollups import deltas as rollup_deltas
from logs.rollups import fold as rollup_fold
from logs.rollups.fold import fold_pending_rollups
from logs.rollups.rebuild import rebuild_rollups
from tests.api.helpers import token_client, token_for
from tests.conftest import logged_in
from tests.factories import (
    ApiKeyFactory,
    GroupFactory,
    StaffUserFactory,
    fold_rollups,
    owner_of,
    record_dict,
)
from tests.logs.rollups.levels import ALL_LEVELS, all_levels

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 7, tzinfo=UTC)


def batch(keys, rnd: random.Random, count: int, *, days: int = 9) -> list[dict]:
    return [
        record_dict(
            rnd.choice(keys),
            created_at=NOW - timedelta(minutes=rnd.randint(1, days * 24 * 60)),
            model=rnd.choice(["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet"]),
            call_type=rnd.choice(["chat", "chat", "embedding"]),
            status_code=rnd.choice([200, 200, 200, 429, 503]),
            duration_ms=rnd.choice([30, 700, 1_400, 45_000]),
            ttft_ms=None,
            input_tokens=rnd.randint(0, 3000),
            output_tokens=rnd.randint(0, 500),
            usage=str(Decimal(rnd.randint(0, 10**6)) / 10**6),
            cost=str(Decimal(rnd.randint(0, 10**8)) / 10**8),
        )
        for _ in range(count)
    ]


@pytest.fixture(autouse=True)
def _seek_from_the_second_call(monkeypatch):
    """Deep pages seek from page 11 on; here from the second call, to check every offset."""
    monkeypatch.setattr(seek, "SEEK_MIN_OFFSET", 1)


@pytest.fixture
def keys():
    default, vip = GroupFactory(name="default"), GroupFactory(name="vip")
    first = ApiKeyFactory(name="prod", group=default)
    return [
        first,
        ApiKeyFactory(name="batch", group=vip, account=first.account),
        ApiKeyFactory(name="prod", group=default),
    ]


def assert_reads_exact(user, *, account=None) -> None:
    """Totals, stats in every shape, the deep-page seek and the slow-call
    thresholds read from rollups (+ pending) equal the same over raw calls."""
    start = NOW - timedelta(days=6, minutes=17)
    for filters in (CallFilters(), CallFilters(start=start), CallFilters(model="gpt-4o")):
        raw = filter_calls(visible_calls(user, account=account), filters)
        assert scoped_totals(user, account=account, filters=filters) == call_totals(raw)
        for interval in ("hour", "day", None):
            for group_by in (None, "model", "key_name"):
                expected = [
                    row
                    for row in usage_stats(raw, interval=interval, group_by=group_by)
                    if row.calls or (interval is None and group_by is None)
                ]
                got = scoped_usage_stats(
                    user, account=account, filters=filters, interval=interval, group_by=group_by
                )
                assert got == expected, (filters, interval, group_by)
        ordered = list(raw.order_by("-created_at", "-id").values_list("created_at", flat=True))
        for offset in (1, len(ordered) // 3, len(ordered) - 1):
            if not 0 < offset < len(ordered):
                continue
            seek = seek_page(user, account=account, filters=filters, offset=offset)
            # The boundary skips exactly the calls it says it skips.
            skipped = sum(1 for moment in ordered if seek.boundary and moment >= seek.boundary)
            assert skipped == offset - seek.offset, (filters, offset)
    by_model = usage_stats(visible_calls(user, account=account).filter(
        created_at__gte=NOW.replace(hour=0, minute=0) - timedelta(days=slow.SLOW_WINDOW_DAYS)
    ), interval=None, group_by="model")  # fmt: skip
    expected_thresholds = {
        row.key: row.duration_percentile(slow.SLOW_QUANTILE)
        for row in by_model
        if row.calls >= slow.SLOW_MIN_CALLS
    }
    from django.core.cache import cache

    cache.clear()  # the thresholds are cached for minutes; this must see the calls now
    assert slow_call_thresholds(user, account=account, now=NOW) == expected_thresholds


def test_ingest_appends_pending_deltas_and_leaves_the_levels_to_the_folder(keys):
    records = batch(keys, random.Random(1), 40)

    ingest_calls(records, now=NOW)

    assert all(not level.objects.exists() for level in ALL_LEVELS)
    assert sum(PendingRollupDelta.objects.values_list("calls", flat=True)) == 40
    assert ApiKey.objects.filter(last_used_at__isnull=False).count() == 0
    waiting = PendingRollupDelta.objects.count()

    folded = fold_pending_rollups()

    assert folded.deltas == waiting
    assert not PendingRollupDelta.objects.exists()
    for level in ALL_LEVELS:
        assert sum(level.objects.values_list("calls", flat=True)) == 40, level.__name__
    newest = max(
        datetime.fromisoformat(r["created_at"]) for r in records if r["api_key"] == keys[0].prefix
    )
    assert ApiKey.objects.get(pk=keys[0].pk).last_used_at == newest
    status = FoldStatus.objects.get()
    assert (status.last_fold_deltas, status.folds) == (folded.deltas, 1)


@pytest.mark.parametrize("who", ["staff", "owner"])
def test_reads_are_exact_before_between_and_after_folds(keys, who):
    rnd = random.Random(5)
    user = StaffUserFactory() if who == "staff" else owner_of(keys[0].account)
    fold_at = {1: 7, 3: None}  # after batch 1, fold a few deltas; after batch 3, all
    for number in range(5):
        ingest_calls(batch(keys, rnd, 120), now=NOW)
        assert_reads_exact(user)
        if number in fold_at:
            fold_pending_rollups(batch=fold_at[number] or rollup_fold.FOLD_BATCH)
            assert_reads_exact(user)
    assert PendingRollupDelta.objects.exists()  # the last batches are still pending
    fold_rollups()
    assert_reads_exact(user)

    folded = all_levels()
    rebuild_rollups()
    assert all_levels() == folded


def test_the_call_list_and_stats_pages_count_pending_calls(keys):
    ingest_calls(batch(keys, random.Random(8), 60), now=NOW)
    fold_rollups()
    ingest_calls(batch(keys, random.Random(9), 25), now=NOW)
    client = logged_in(StaffUserFactory())

    listing = client.get("/admin/logs/callrecord/?start=2026-11-01")
    stats = client.get("/admin/logs/callrecord/stats/?start=2026-11-01&interval=day")

    assert listing.context["cl"].result_count == 85
    assert listing.context["totals"].calls == 85
    assert stats.context["stats"].totals.calls == 85
    assert sum(int(row[1].replace(",", "")) for row in stats.context["stats"].charts[0].rows) == 85


def test_a_fold_that_fails_midway_loses_and_doubles_nothing(keys, monkeypatch):
    ingest_calls(batch(keys, random.Random(3), 80), now=NOW)
    fold_rollups()
    ingest_calls(batch(keys, random.Random(4), 80), now=NOW)
    pending = list(PendingRollupDelta.objects.order_by("pk").values())
    levels = all_levels()

    def broken_on_the_third_level(real):
        def statements(*args, **kwargs):
            produced = real(*args, **kwargs)
            return [
                *produced[:2],
                "SELECT no_such_column FROM logs_hourlycallrollup",
                *produced[2:],
            ]

        return statements

    def broken_apply(real):
        def apply_rows(rows):
            rollup_apply._upsert_rollups(
                HourlyCallRollup, rollup_deltas.coarsen_deltas(rows, HourlyCallRollup)
            )
            raise OperationalError("the database went away")

        return apply_rows

    if connection.vendor == "postgresql":
        monkeypatch.setattr(
            rollup_fold,
            "staged_rollup_statements",
            broken_on_the_third_level(rollup_fold.staged_rollup_statements),
        )
    else:
        monkeypatch.setattr(rollup_fold, "apply_rollup_deltas", broken_apply(None))
    with pytest.raises(Exception):  # noqa: B017 (whatever the database says)
        fold_pending_rollups()
    monkeypatch.undo()

    assert list(PendingRollupDelta.objects.order_by("pk").values()) == pending
    assert all_levels() == levels
    staff = StaffUserFactory()
    assert_reads_exact(staff)

    fold_rollups()
    assert_reads_exact(staff)
    folded = all_levels()
    rebuild_rollups()
    assert all_levels() == folded


def test_a_rebuild_drops_the_pending_deltas_of_its_range_and_keeps_the_rest(keys):
    rnd = random.Random(12)
    ingest_calls(batch(keys, rnd, 100), now=NOW)
    start, end = NOW - timedelta(days=4), NOW - timedelta(days=2)

    rebuild_rollups(start=start, end=end)

    # Whole hours: the rebuild covers [12:00, 12:00) of those days.
    start, end = start.replace(minute=0), end.replace(minute=0)
    assert not PendingRollupDelta.objects.filter(quarter__gte=start, quarter__lt=end).exists()
    assert PendingRollupDelta.objects.exclude(quarter__gte=start, quarter__lt=end).exists()
    assert_reads_exact(StaffUserFactory())
    fold_rollups()
    folded = all_levels()
    rebuild_rollups()
    assert all_levels() == folded


def test_the_fold_command_folds_everything_and_refuses_a_bad_interval(keys, capsys):
    ingest_calls(batch(keys, random.Random(2), 30), now=NOW)
    waiting = PendingRollupDelta.objects.count()

    call_command("fold_rollups")

    assert f"Folded {waiting} pending deltas." in capsys.readouterr().out
    assert not PendingRollupDelta.objects.exists()
    assert sum(HourlyCallRollup.objects.values_list("calls", flat=True)) == 30
    for bad in ("0", "-1", "7200"):
        with pytest.raises(CommandError, match="--interval"):
            call_command("fold_rollups", "--loop", "--interval", bad)


def test_staff_see_how_far_behind_folding_is(keys, settings):
    ingest_calls(batch(keys, random.Random(6), 20), now=NOW)
    staff = StaffUserFactory()
    waiting = PendingRollupDelta.objects.count()

    page = logged_in(staff).get("/admin/logs/foldstatus/")
    assert page.status_code == 200
    assert f"{waiting:,} deltas, the oldest for".encode() in page.content

    settings.USAGELOGS_FOLD_BEHIND_SECONDS = 3600
    health = token_client(token_for(staff)).get("/api/v1/health/")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["pending_deltas"] == waiting

    PendingRollupDelta.objects.update(added_at=NOW - timedelta(hours=2))
    health = token_client(token_for(staff)).get("/api/v1/health/")
    assert health.json()["status"] == "behind"
    assert health.json()["oldest_pending_seconds"] > 3600

    fold_rollups()
    health = token_client(token_for(staff)).get("/api/v1/health/")
    assert health.json() | {"last_fold_at": None} == {
        "status": "ok",
        "pending_deltas": 0,
        "oldest_pending_seconds": 0.0,
        "last_fold_at": None,
        "last_fold_deltas": waiting,
        "last_fold_ms": health.json()["last_fold_ms"],
    }
    assert logged_in(staff).get("/admin/logs/foldstatus/").content.count(b"nothing") >= 1


def test_folding_is_not_shown_to_account_owners_or_anonymous_callers(keys):
    owner = owner_of(keys[0].account)
    assert logged_in(owner).get("/portal/logs/foldstatus/").status_code == 404
    assert logged_in(owner).get("/admin/logs/foldstatus/").status_code == 302
    assert token_client("ult_not-a-token").get("/api/v1/health/").status_code == 401


# --- PostgreSQL: real concurrency -------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(USAGELOGS_FOLD_AFTER_INGEST=True)
def test_concurrent_ingest_folding_and_reads_stay_exact_at_every_moment():
    """Three gateways ingest while a folder folds (and each ingest request folds
    when it can); meanwhile every read, taken in one snapshot with the raw
    calls it stands for, agrees with them."""
    keys = [ApiKeyFactory(name=f"k{n}", group=GroupFactory(name="default")) for n in range(3)]
    staff = StaffUserFactory()
    stop = threading.Event()
    failures: list[BaseException] = []

    def ingester(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for _ in range(6):
                ingest_calls(batch(keys, rnd, 150), now=NOW)
        except BaseException as error:  # reported below
            failures.append(error)
        finally:
            connections.close_all()

    def folder() -> None:
        try:
            while not stop.is_set():
                fold_pending_rollups(batch=40)
                time.sleep(0.01)
        except BaseException as error:
            failures.append(error)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=ingester, args=(seed,)) for seed in (1, 2, 3)]
    folding = threading.Thread(target=folder)
    for thread in (*workers, folding):
        thread.start()
    checks = 0
    while any(thread.is_alive() for thread in workers) or checks < 3:
        with consistent_read():
            filters = CallFilters(start=NOW - timedelta(days=5, minutes=3))
            raw = filter_calls(visible_calls(staff), filters)
            assert scoped_totals(staff, filters=filters) == call_totals(raw)
            assert scoped_usage_stats(staff, filters=filters, interval="day") == [
                row for row in usage_stats(raw, interval="day") if row.calls
            ]
        checks += 1
    stop.set()
    for thread in (*workers, folding):
        thread.join(timeout=60)
    assert not failures, failures
    assert CallRecord.objects.count() == 3 * 6 * 150

    fold_rollups()
    folded = all_levels()
    rebuild_rollups()
    assert all_levels() == folded


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(USAGELOGS_FOLD_AFTER_INGEST=False)
def test_a_folder_whose_connection_is_killed_mid_fold_loses_and_doubles_nothing(monkeypatch):
    key = ApiKeyFactory()
    rnd = random.Random(4)
    ingest_calls(batch([key], rnd, 200), now=NOW)
    pending = sorted(PendingRollupDelta.objects.values_list("pk", flat=True))
    real = rollup_fold.staged_rollup_statements

    def slow_statements(*args, **kwargs):
        produced = real(*args, **kwargs)
        return [*produced[:3], "SELECT pg_sleep(30)", *produced[3:]]

    monkeypatch.setattr(rollup_fold, "staged_rollup_statements", slow_statements)
    outcome: list = []

    def fold() -> None:
        try:
            outcome.append(fold_pending_rollups())
        except BaseException as error:
            outcome.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=fold)
    thread.start()
    deadline = time.monotonic() + 20
    killed = False
    while time.monotonic() < deadline and not killed:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'SELECT pg_sleep(30)%%' AND pid <> pg_backend_pid()"
            )
            killed = any(row[0] for row in cursor.fetchall())
        time.sleep(0.05)
    thread.join(timeout=30)
    monkeypatch.undo()

    assert killed, "the folder never reached the middle of its fold"
    assert isinstance(outcome[0], Exception), outcome
    assert sorted(PendingRollupDelta.objects.values_list("pk", flat=True)) == pending
    assert not any(level.objects.exists() for level in ALL_LEVELS)

    fold_rollups()
    assert not PendingRollupDelta.objects.exists()
    assert sum(HourlyCallRollup.objects.values_list("calls", flat=True)) == 200
    folded = all_levels()
    rebuild_rollups()
    assert all_levels() == folded


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@override_settings(USAGELOGS_FOLD_AFTER_INGEST=False)
def test_concurrent_batches_of_the_same_key_and_hour_do_not_wait_on_rollup_rows(monkeypatch):
    """A batch still open does not hold up another batch of the same key,
    model and hour: neither touches a rollup row, only appends."""
    key = ApiKeyFactory()
    ingest_calls([record_dict(key, created_at=NOW - timedelta(minutes=9))], now=NOW)
    fold_rollups()  # the key's model and group are known: no first-use rows either
    holding = threading.Event()
    release = threading.Event()
    real = ingest_store.execute_together

    def hold_open(cursor, statements):
        real(cursor, statements)
        if threading.current_thread().name == "first":
            holding.set()
            release.wait(timeout=30)

    monkeypatch.setattr(ingest_store, "execute_together", hold_open)
    finished: dict[str, float] = {}

    def ingest(name: str, minute: int) -> None:
        try:
            record = record_dict(
                key, request_id=f"req-{name}", created_at=NOW - timedelta(minutes=minute)
            )
            ingest_calls([record], now=NOW)
            finished[name] = time.monotonic()
        finally:
            connections.close_all()

    first = threading.Thread(target=ingest, args=("first", 5), name="first")
    first.start()
    assert holding.wait(timeout=20)
    second = threading.Thread(target=ingest, args=("second", 4), name="second")
    second.start()
    second.join(timeout=10)
    waited = second.is_alive()
    release.set()
    first.join(timeout=20)
    second.join(timeout=20)

    assert not waited, "the second batch waited for the first one's transaction"
    assert finished["second"] < finished["first"]
    assert CallRecord.objects.count() == 3
