"""Recomputing rollups from raw calls (``manage.py rebuild_rollups``).

After a bulk load that bypassed ingest, or to prove the incremental upkeep
right: the test suite checks that folding and rebuilding give the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from logs.models import (
    COARSE_ROLLUP_LEVELS,
    FINE_ROLLUP_LEVELS,
    CallRecord,
    HourlyCallRollup,
    PendingRollupDelta,
    RollupMeasures,
)
from logs.periods import HOUR
from logs.rollups.apply import (
    _ROLLUP_STAGE,
    _create_rollup_stage,
    _dimension_columns,
    _regroup_select,
    _rollup_stage_columns,
    _upsert_rollups,
    staged_rollup_statements,
)
from logs.rollups.deltas import (
    coarsen_deltas,
    delta_dimensions_sql,
    delta_sums_sql,
    rollup_deltas,
)
from logs.rollups.fold import take_fold_lock


def rebuild_rollups(
    *, start: datetime | None = None, end: datetime | None = None, beside: bool = False
) -> int:
    """Recompute rollups from raw calls for whole hours in [start, end) (all by default).

    Returns the number of hourly rows written. Incremental upkeep (ingest and
    folding) must give the same rows; the test suite checks that it does.
    The levels kept from each call's own time (hourly, quarter-hourly) are summed
    from the raw calls: on PostgreSQL in one set-based INSERT … SELECT … GROUP BY
    (minutes for tens of millions of calls), elsewhere in Python. The coarser
    levels are then regrouped from the hourly rows.

    It holds the folders' lock, and on PostgreSQL reads one snapshot throughout:
    the pending deltas of the range are dropped (the raw calls they stand for
    are summed here), while a batch that commits meanwhile is neither read nor
    dropped, so folding adds it later, once.
    """
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return _rebuild_rollups(start, end, beside)
    with transaction.atomic():
        return _rebuild_rollups(start, end, beside)


def _rebuild_rollups(start: datetime | None, end: datetime | None, beside: bool = False) -> int:
    take_fold_lock(wait=True, shared=beside)
    calls = CallRecord.objects.all()
    if start is not None:
        start = HOUR.floor(start)
        calls = calls.filter(created_at__gte=start)
    if end is not None:
        end = HOUR.floor(end)
        calls = calls.filter(created_at__lt=end)
    fine_levels = (HourlyCallRollup, *FINE_ROLLUP_LEVELS)
    for level in (PendingRollupDelta, *fine_levels):
        rows = level.objects.all()
        if start is not None:
            rows = rows.filter(**{f"{level.PERIOD_FIELD}__gte": start})
        if end is not None:
            rows = rows.filter(**{f"{level.PERIOD_FIELD}__lt": end})
        rows.delete()
    if connection.vendor == "postgresql":
        _rebuild_rollups_sql(start, end, fine_levels)
    else:
        _rebuild_rollups_python(calls, fine_levels)
    rebuild_coarse_rollups(start=start, end=end)
    hourly = HourlyCallRollup.objects.all()
    if start is not None:
        hourly = hourly.filter(hour__gte=start)
    if end is not None:
        hourly = hourly.filter(hour__lt=end)
    return hourly.count()


def _rebuild_rollups_python(
    calls: QuerySet[CallRecord], levels: Sequence[type[RollupMeasures]]
) -> None:
    batch: list[CallRecord] = []
    fields = ("created_at", "account_id", "api_key_id", "group_id", "model", "call_type")
    fields += ("status_code", "input_tokens", "output_tokens", "usage", "cost")
    fields += ("duration_ms", "ttft_ms")
    fields += ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens", "cache_savings")

    def add(batch: list[CallRecord]) -> None:
        deltas = rollup_deltas(batch)
        for level in levels:
            _upsert_rollups(level, coarsen_deltas(deltas, level))

    # Chunks in time order: each chunk's deltas are summed in Python, then upserted.
    for call in calls.order_by("created_at", "id").only(*fields).iterator(chunk_size=5000):
        batch.append(call)
        if len(batch) >= 20000:
            add(batch)
            batch = []
    if batch:
        add(batch)


@transaction.atomic
def rebuild_coarse_rollups(*, start: datetime | None = None, end: datetime | None = None) -> None:
    """Recompute the rows of every coarser level (days, months, daily summaries)
    for each period touching [start, end) from the hourly rows (all by default):
    each coarse row is the sum of its hours."""
    for level in COARSE_ROLLUP_LEVELS:
        first = level.period_start(start) if start is not None else None
        last = None
        if end is not None:
            last = level.period_start(end)
            if last != end:
                last = level.next_period(last)
        period = level.PERIOD_FIELD
        coarse, hourly = level.objects.all(), HourlyCallRollup.objects.all()
        if first is not None:
            coarse = coarse.filter(**{f"{period}__gte": first})
            hourly = hourly.filter(hour__gte=first)
        if last is not None:
            coarse = coarse.filter(**{f"{period}__lt": last})
            hourly = hourly.filter(hour__lt=last)
        coarse.delete()
        if connection.vendor == "postgresql":
            _regroup_rollups_sql(level, first, last)
            continue
        # Elsewhere (SQLite: small data) the hours are regrouped in Python.
        columns = [*HourlyCallRollup.DIMENSIONS, *HourlyCallRollup.MEASURES]
        columns = [
            f"{name}_id" if name in ("account", "api_key", "group") else name for name in columns
        ]
        deltas: dict[tuple, dict[str, Any]] = {}
        width = len(HourlyCallRollup.DIMENSIONS)
        for values in hourly.order_by().values_list(*columns).iterator(chunk_size=5000):
            deltas[values[:width]] = dict(
                zip(HourlyCallRollup.MEASURES, values[width:], strict=True)
            )
        _upsert_rollups(level, coarsen_deltas(deltas, level))


def _regroup_rollups_sql(
    level: type[RollupMeasures], first: datetime | None, last: datetime | None
) -> None:
    quote = connection.ops.quote_name
    where, params = [], []
    if first is not None:
        where.append(f"{quote('hour')} >= %s")
        params.append(first)
    if last is not None:
        where.append(f"{quote('hour')} < %s")
        params.append(last)
    columns = [
        *_dimension_columns(level),
        *(level._meta.get_field(name).column for name in level.MEASURES),
    ]
    select = _regroup_select(level, quote(HourlyCallRollup._meta.db_table), " AND ".join(where))
    sql = (
        f"INSERT INTO {quote(level._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
        + select
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _rebuild_rollups_sql(
    start: datetime | None, end: datetime | None, levels: Sequence[type[RollupMeasures]]
) -> None:
    """``levels``' rows of [start, end) from raw calls (PostgreSQL): the calls'
    quarter-hour deltas summed into the staging table in one statement, then
    regrouped into each level as ingest does.

    Mirrors ``rollup_deltas``: the UTC quarter hour, the status class of the
    status code, and each measure's SQL (``logs.models.measures``).
    """
    calls_table = connection.ops.quote_name(CallRecord._meta.db_table)
    quote = connection.ops.quote_name
    # One sum per measure, in the order of the staging table's columns.
    measures = delta_sums_sql()
    dimensions = delta_dimensions_sql()
    where, params = [], []
    if start is not None:
        where.append("created_at >= %s")
        params.append(start)
    if end is not None:
        where.append("created_at < %s")
        params.append(end)
    sql = (
        f"INSERT INTO {quote(_ROLLUP_STAGE)} "
        f"({', '.join(quote(c) for c in _rollup_stage_columns())}) "
        f"SELECT {', '.join([*dimensions, *measures])} FROM {calls_table} "
        + (f"WHERE {' AND '.join(where)} " if where else "")
        + f"GROUP BY {', '.join(str(i) for i in range(1, len(dimensions) + 1))}"
    )
    with connection.cursor() as cursor:
        _create_rollup_stage(cursor)
        cursor.execute(sql, params)
        # _rebuild_rollups deleted the levels' rows of the range, under the lock.
        for statement in staged_rollup_statements(levels, into_empty=True):
            cursor.execute(statement)
        cursor.execute(f"DELETE FROM {quote(_ROLLUP_STAGE)}")
