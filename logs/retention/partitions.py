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


# --- months loaded without indexes (history imports) ----------------------------------
#
# A past month that has no partition yet can be loaded far faster as a plain
# table of its own: no index is kept up to date row by row and no foreign key
# is checked per row. Its indexes are then built once, in bulk, and the table
# becomes the month's partition (``attach_loaded_month``). Until then its rows
# are in no query: a backfill shows a month once it is whole.


def loading_name(table: str, month: date) -> str:
    """The table a month of ``table`` is loaded into before it is attached."""
    return f"{partition_name(table, month)}_load"


def create_loading_month(month: date, cursor) -> bool:
    """Create the loading tables of ``month`` (calls and payloads) when the
    month has no partition yet; False when it has one (load it the usual way).
    Runs inside the caller's transaction, holding the partition DDL lock."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
    names = [partition_name(table, month) for table in PARTITIONED_TABLES]
    loading = [loading_name(table, month) for table in PARTITIONED_TABLES]
    cursor.execute(
        "SELECT relname FROM pg_class WHERE relname = ANY(%s) AND relkind IN ('r', 'p')",
        [names + loading],
    )
    found = {row[0] for row in cursor.fetchall()}
    if found & set(names):
        return False
    for table, name in zip(PARTITIONED_TABLES, loading, strict=True):
        if name in found:
            continue
        # The parent's columns, defaults and CHECK constraints (ATTACH needs them),
        # plus the month's bounds, so ATTACH need not scan the rows to prove them.
        cursor.execute(
            f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
            f'CONSTRAINT "{name}_bounds" CHECK (created_at >= %s AND created_at < %s))',
            [_bound(month), _bound(next_month(month))],
        )
    return True


def _index_statements(table: str, target: str) -> list[str]:
    """The parent ``table``'s indexes as statements building them on ``target``:
    a primary key or unique constraint as a constraint (ATTACH only takes a
    constraint's index for a constraint), any other index as an index."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid), c.conname, "
            "pg_get_constraintdef(c.oid) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid "
            "WHERE x.indrelid = %s::regclass ORDER BY i.relname",
            [table],
        )
        found = cursor.fetchall()
    statements = []
    for index, definition, constraint, constraint_definition in found:
        name = f"{target}_{index}"[:63]
        if constraint is not None:
            statements.append(
                f'ALTER TABLE "{target}" ADD CONSTRAINT "{name}" {constraint_definition}'
            )
            continue
        _, _, rest = definition.partition(" USING ")
        statements.append(f'CREATE INDEX "{name}" ON "{target}" USING {rest}')
    return statements


def attach_loaded_month(month: date) -> str:
    """Index the loading tables of ``month`` and make them its partitions, in
    one transaction (a crash leaves them as they were, to be attached again).
    Should the month have got a partition meanwhile (a late call ingested into
    it), the loaded rows are copied into it instead. Returns what was done."""
    done = "attached"
    with transaction.atomic(), connection.cursor() as cursor:
        # Index builds may sort in memory and in parallel: one month at a time.
        cursor.execute("SET LOCAL maintenance_work_mem TO '256MB'")
        for table in PARTITIONED_TABLES:
            loading = loading_name(table, month)
            final = partition_name(table, month)
            cursor.execute("SELECT to_regclass(%s), to_regclass(%s)", [loading, final])
            loading_exists, final_exists = cursor.fetchone()
            if loading_exists is None:
                continue
            if final_exists is not None:
                cursor.execute(
                    f'INSERT INTO "{table}" SELECT * FROM "{loading}" ON CONFLICT DO NOTHING'
                )
                cursor.execute(f'DROP TABLE "{loading}"')
                done = "copied into the existing partition"
                continue
            for statement in _index_statements(table, loading):
                cursor.execute(statement)
            cursor.execute(
                f'ALTER TABLE "{table}" ATTACH PARTITION "{loading}" FOR VALUES FROM (%s) TO (%s)',
                [_bound(month), _bound(next_month(month))],
            )
            cursor.execute(f'ALTER TABLE "{loading}" DROP CONSTRAINT "{loading}_bounds"')
            cursor.execute(f'ALTER TABLE "{loading}" RENAME TO "{final}"')
    return done
