"""Old calls are pruned (whole monthly partitions on PostgreSQL) while the
rollups keep their usage; calls are partitioned by month, created on demand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from logs.ingest.service import ingest_calls
from logs.models import (
    CallPayload,
    CallRecord,
    HourlyCallRollup,
)
from logs.retention.partitions import partition_name, partitions
from logs.retention.prune import prune_calls
from tests.clock import at_instants
from tests.factories import (
    ApiKeyFactory,
    fold_rollups,
    record_dict,
)
from tests.logs.rollups.levels import all_levels


@at_instants(
    "midnight UTC",
    "last minute of November",
    "Feb 29 noon",
    "Berlin, 1 min before spring forward",
    "St. John's, 1 min after fall back",
)
def test_prune_removes_old_calls_and_payloads_and_keeps_rollups(db, clock):
    """At a day's and a month's edge, on Feb 29 and at DST changes: the
    cutoff is exactly 90 days before the instant, wherever that falls."""
    key = ApiKeyFactory()
    now = clock.now
    old = [record_dict(key, created_at=now - timedelta(days=100 + i)) for i in range(3)]
    recent = [record_dict(key, created_at=now - timedelta(days=i)) for i in range(3)]
    ingest_calls(old + recent)
    fold_rollups()
    rollups_before = all_levels()
    assert rollups_before["HourlyCallRollup"]  # something to keep

    result = prune_calls(older_than=timedelta(days=90))

    left = set(CallRecord.objects.values_list("request_id", flat=True))
    assert left == {r["request_id"] for r in recent}
    assert CallPayload.objects.count() == 3
    assert all_levels() == rollups_before
    assert result.cutoff < now


def test_prune_command_validates_its_age(db):
    with pytest.raises(CommandError, match="older-than"):
        call_command("prune_calls", older_than="ninety days")
    with pytest.raises(CommandError, match="older-than"):
        call_command("prune_calls", older_than="0d")


@pytest.mark.postgres
def test_calls_are_partitioned_by_month_and_created_on_demand(db):
    key = ApiKeyFactory()
    long_ago = datetime(2024, 2, 3, 10, 0, tzinfo=UTC)

    ingest_calls([record_dict(key, created_at=long_ago)])

    names = {p.name for p in partitions()}
    assert partition_name("logs_callrecord", long_ago.date().replace(day=1)) in names
    assert partition_name("logs_callpayload", long_ago.date().replace(day=1)) in names
    this_month = timezone.now().astimezone(UTC).date().replace(day=1)
    assert partition_name("logs_callrecord", this_month) in names
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM logs_callrecord WHERE created_at = %s",
            [long_ago],
        )
        assert cursor.fetchone()[0] == "logs_callrecord_p2024_02"


@pytest.mark.postgres
def test_request_id_stays_idempotent_across_partitions(db):
    key = ApiKeyFactory()
    record = record_dict(key, created_at=datetime(2024, 2, 3, 10, 0, tzinfo=UTC))
    ingest_calls([record])

    replay = ingest_calls([record])
    assert (replay.created, replay.duplicates) == (0, 1)
    moved = dict(record, created_at=timezone.now().isoformat())
    with pytest.raises(Exception, match="different content"):
        ingest_calls([moved])
    assert CallRecord.objects.filter(request_id=record["request_id"]).count() == 1


@pytest.mark.postgres
def test_prune_drops_whole_month_partitions(db):
    key = ApiKeyFactory()
    ingest_calls(
        [
            record_dict(key, created_at=datetime(2024, 2, 3, tzinfo=UTC)),
            record_dict(key, created_at=datetime(2024, 3, 3, tzinfo=UTC)),
            record_dict(key, created_at=timezone.now() - timedelta(hours=1)),
        ]
    )

    fold_rollups()

    result = prune_calls(older_than=timedelta(days=90))

    assert "logs_callrecord_p2024_02" in result.partitions_dropped
    assert "logs_callpayload_p2024_03" in result.partitions_dropped
    assert CallRecord.objects.count() == 1
    assert HourlyCallRollup.objects.filter(hour__year=2024).count() == 2
