"""Retention: removing old calls (``manage.py prune_calls``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from logs.models import (
    CallPayload,
    CallRecord,
    PruneRun,
)
from logs.retention.partitions import (
    drop_months_before,
    is_partitioned,
    month_of,
)


@dataclass
class PruneResult:
    cutoff: datetime
    partitions_dropped: list[str] = field(default_factory=list)
    calls_deleted: int = 0


def prune_calls(
    *, older_than: timedelta, now: datetime | None = None, batch_size: int = 10_000
) -> PruneResult:
    """Remove calls (and their payloads) received before ``now - older_than``.

    On partitioned PostgreSQL, whole months before the cutoff's month are
    dropped as partitions (constant time whatever their size); what is left
    before the cutoff in its own month, and everything on other databases, is
    deleted in batches so no transaction grows without bound. Rollups, access
    records and the models an account used are kept: usage history outlives
    the raw calls. The run is recorded (``PruneRun``) so pages that count calls
    from rollups know which of them are gone.
    """
    cutoff = (now or timezone.now()) - older_than
    result = PruneResult(cutoff=cutoff)
    if is_partitioned():
        result.partitions_dropped = [p.name for p in drop_months_before(month_of(cutoff))]
    while True:
        ids = list(
            CallRecord.objects.filter(created_at__lt=cutoff)
            .order_by()
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        with transaction.atomic():
            CallPayload.objects.filter(call_id__in=ids).delete()
            CallRecord.objects.filter(id__in=ids).delete()
        result.calls_deleted += len(ids)
    PruneRun.objects.create(
        cutoff=cutoff,
        ran_at=timezone.now(),
        partitions_dropped=result.partitions_dropped,
        calls_deleted=result.calls_deleted,
    )
    return result
