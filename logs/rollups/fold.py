"""Folding: moving pending deltas into the rollup levels.

Ingest appends what its calls add to the rollups (``PendingRollupDelta``) in
the transaction that stores them, and nothing else: concurrent batches never
wait on each other's rollup rows. The folder moves pending deltas into every
level, one transaction per fold, one folder at a time (an advisory lock on
PostgreSQL). By default each ingest request folds right after its commit when
no other folder is at work; ``fold_rollups --loop`` does it in a process of
its own (USAGELOGS_FOLD_AFTER_INGEST=0 then keeps ingest requests short).
Reads are exact either way: they add what is still pending (``logs.read``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Min
from django.utils import timezone

from accounts.models import ApiKey
from logs.models import (
    FoldStatus,
    PendingRollupDelta,
)
from logs.rollups.apply import apply_rollup_deltas, staged_rollup_statements

# Serialises folders, and rebuilds with them (an arbitrary, fixed key).
_FOLD_LOCK = 7_205_118_002


# Deltas moved per fold: a backlog is worked off in transactions of bounded size.
FOLD_BATCH = 50_000


@dataclass(frozen=True)
class FoldResult:
    deltas: int
    milliseconds: int


def fold_if_free() -> FoldResult | None:
    """Fold one batch of pending deltas unless another folder is at work."""
    return fold_pending_rollups(wait=False)


def fold_pending_rollups(*, wait: bool = True, batch: int = FOLD_BATCH) -> FoldResult | None:
    """Move up to ``batch`` pending deltas, oldest first, into every rollup level.

    One transaction: the deltas leave the pending table and reach every level
    together, or not at all (a folder killed midway loses and doubles nothing).
    Keys' ``last_used_at`` moves forward to their newest folded call. Returns
    None when ``wait`` is false and another folder holds the lock.
    """
    started = time.monotonic()
    with transaction.atomic():
        if not take_fold_lock(wait=wait):
            return None
        if connection.vendor == "postgresql":
            folded = _fold_on_postgresql(batch)
        else:
            folded = _fold_elsewhere(batch)
        elapsed = int((time.monotonic() - started) * 1000)
        if folded:
            status, _ = FoldStatus.objects.get_or_create(pk=1)
            status.last_fold_at = timezone.now()
            status.last_fold_deltas = folded
            status.last_fold_ms = elapsed
            status.folds += 1
            status.deltas_folded += folded
            status.save()
    return FoldResult(deltas=folded, milliseconds=elapsed)


def take_fold_lock(*, wait: bool, shared: bool = False) -> bool:
    """The folders' lock for this transaction (PostgreSQL; SQLite has one writer anyway).

    ``shared``: for rebuilds of ranges that share no rollup row (whole months,
    ``logs.imports``), which may then run side by side; folding still waits
    for them all, and they for it."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
            cursor.execute(f"SELECT {function}(%s)", [_FOLD_LOCK])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_FOLD_LOCK])
        return cursor.fetchone()[0]


_FOLD_STAGE = "fold_moved_deltas"


def _fold_on_postgresql(batch: int) -> int:
    quote = connection.ops.quote_name
    pending = quote(PendingRollupDelta._meta.db_table)
    stage = quote(_FOLD_STAGE)
    keys = quote(ApiKey._meta.db_table)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {pending}) ON COMMIT DELETE ROWS"
        )
        cursor.execute(
            f"WITH moved AS (DELETE FROM {pending} WHERE id IN "
            f"(SELECT id FROM {pending} ORDER BY id LIMIT %s) RETURNING *) "
            f"INSERT INTO {stage} SELECT * FROM moved",
            [batch],
        )
        folded = cursor.rowcount
        if not folded:
            return 0
        for statement in staged_rollup_statements(source=_FOLD_STAGE):
            cursor.execute(statement)
        # Keys in id order, each moved only forward (batches arrive out of order).
        cursor.execute(
            f"WITH newest AS (SELECT api_key_id AS id, max(latest_at) AS moment FROM {stage} "
            f"GROUP BY 1), moved AS (SELECT k.id, newest.moment FROM {keys} k "
            "JOIN newest ON k.id = newest.id "
            "WHERE k.last_used_at IS NULL OR k.last_used_at < newest.moment "
            "ORDER BY k.id FOR NO KEY UPDATE OF k) "
            f"UPDATE {keys} SET last_used_at = moved.moment FROM moved WHERE {keys}.id = moved.id"
        )
        cursor.execute(f"DELETE FROM {stage}")
    return folded


def _fold_elsewhere(batch: int) -> int:
    rows = list(
        PendingRollupDelta.objects.order_by("id").values_list(
            "id", *(f"{name}_id" if name in ("account", "api_key", "group") else name
                    for name in PendingRollupDelta.DIMENSIONS),
            *PendingRollupDelta.MEASURES, "latest_at",
        )[:batch]
    )  # fmt: skip
    if not rows:
        return 0
    width = len(PendingRollupDelta.DIMENSIONS)
    deltas: dict[tuple, dict[str, Any]] = {}
    newest: dict[int, datetime] = {}
    for _, *values in rows:
        key, measures, latest_at = values[:width], values[width:-1], values[-1]
        row = deltas.setdefault(tuple(key), dict.fromkeys(PendingRollupDelta.MEASURES, 0))
        for name, value in zip(PendingRollupDelta.MEASURES, measures, strict=True):
            row[name] += value
        key_id = key[2]
        if key_id not in newest or latest_at > newest[key_id]:
            newest[key_id] = latest_at
    apply_rollup_deltas(deltas)
    for key_id, moment in sorted(newest.items()):
        ApiKey.objects.filter(pk=key_id).exclude(last_used_at__gte=moment).update(
            last_used_at=moment
        )
    PendingRollupDelta.objects.filter(pk__in=[row[0] for row in rows]).delete()
    return len(rows)


def fold_lag() -> dict[str, Any]:
    """How far behind folding is: the deltas waiting, the oldest one's age, the last fold."""
    waiting = PendingRollupDelta.objects.aggregate(count=Count("pk"), oldest=Min("added_at"))
    status = FoldStatus.objects.filter(pk=1).first()
    now = timezone.now()
    return {
        "pending_deltas": waiting["count"],
        "oldest_pending_seconds": (
            (now - waiting["oldest"]).total_seconds() if waiting["oldest"] else 0.0
        ),
        "last_fold_at": status.last_fold_at if status else None,
        "last_fold_deltas": status.last_fold_deltas if status else 0,
        "last_fold_ms": status.last_fold_ms if status else 0,
    }
