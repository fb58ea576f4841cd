"""Monthly partitions of the calls and payload tables on PostgreSQL.

Gateways write millions of calls a day and keep them for a few months. With
one partition per month, a month's calls are dropped in milliseconds instead
of deleted row by row, and queries over a time range touch only its months.

Both ``logs_callrecord`` and ``logs_callpayload`` are partitioned by range of
``created_at`` with the same monthly bounds, so a month is pruned from both
at once. The ingest service creates the partitions its calls need (and a few
months ahead) before it writes; ``manage.py ensure_partitions`` does the same
from cron. On other databases (SQLite) nothing here does anything: the tables
are plain and pruning deletes in batches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connection, transaction
from django.db import connection as default_connection

from logs.periods import next_month

PARTITIONED_TABLES = ("logs_callrecord", "logs_callpayload")
MONTHS_AHEAD = 3
# Serialises partition DDL between processes (an arbitrary, fixed key).
_DDL_LOCK = 7_205_118_001


def is_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = %s AND pg_table_is_visible(c.oid)",
            [PARTITIONED_TABLES[0]],
        )
        return cursor.fetchone() is not None


def month_of(moment: datetime) -> date:
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y_%m}"


def ensure_partitions(
    months: Iterable[date], *, ahead: int = MONTHS_AHEAD, using=None
) -> list[str]:
    """Create the monthly partitions for ``months``, this month, and ``ahead``
    months after the latest of them. Returns the partitions it created.

    One catalog query when they all exist (the usual case). No per-process
    cache on purpose: a rolled-back transaction can take a partition with it.
    """
    connection = using or default_connection
    if connection.vendor != "postgresql":
        return []
    wanted = {*months, month_of(datetime.now(UTC))}
    latest = max(wanted)
    for _ in range(ahead):
        latest = next_month(latest)
        wanted.add(latest)
    names = {partition_name(t, m): (t, m) for m in wanted for t in PARTITIONED_TABLES}
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s)", [list(names)])
        missing = set(names) - {row[0] for row in cursor.fetchall()}
    if not missing:
        return []
    created = []
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
        existing = set(_partition_tables(cursor))
        # Calls before payloads, month by month: the order ingest writes in, so
        # a batch being stored and this DDL take their locks in the same order.
        order = {table: position for position, table in enumerate(PARTITIONED_TABLES)}
        for name in sorted(missing, key=lambda n: (names[n][1], order[names[n][0]])):
            if name in existing:
                continue
            table, month = names[name]
            cursor.execute(
                f'CREATE TABLE "{name}" PARTITION OF "{table}" FOR VALUES FROM (%s) TO (%s)',
                [_bound(month), _bound(next_month(month))],
            )
            created.append(name)
    return created


def _bound(month: date) -> str:
    return f"{month.isoformat()} 00:00:00+00"


def _partition_tables(cursor) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = ANY(%s)",
        [list(PARTITIONED_TABLES)],
    )
    return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True)
class Partition:
    table: str
    name: str
    month: date


def partitions() -> list[Partition]:
    """Every monthly partition, oldest first."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        names = _partition_tables(cursor)
    found = []
    for name in names:
        table, _, stamp = name.rpartition("_p")
        year, month = stamp.split("_")
        found.append(Partition(table=table, name=name, month=date(int(year), int(month), 1)))
    return sorted(found, key=lambda p: (p.month, p.table))


def drop_months_before(month: date) -> list[Partition]:
    """Drop every monthly partition (calls and payloads) wholly before ``month``."""
    dropped = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
        for partition in partitions():
            if partition.month < month:
                cursor.execute(f'DROP TABLE "{partition.name}"')
                dropped.append(partition)
    return dropped
