"""Adding deltas to every rollup level.

On PostgreSQL deltas sit in a table shaped like the pending ones (the folder's
temporary table, or the rebuild's staging table) and one ``INSERT … SELECT …
ON CONFLICT DO UPDATE`` per level regroups them into it, levels and rows in a
fixed order. Elsewhere (SQLite) they are regrouped in Python and upserted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection

from logs.models import (
    COARSE_ROLLUP_LEVELS,
    FINE_ROLLUP_LEVELS,
    HourlyCallRollup,
    RollupMeasures,
    StatusClass,
)
from logs.periods import QUARTER_HOUR
from logs.rollups.deltas import coarsen_deltas, full_dimension_positions


def _dimension_columns(level: type[RollupMeasures]) -> list[str]:
    return [level._meta.get_field(name).column for name in level.DIMENSIONS]


def apply_rollup_deltas(deltas: Mapping[tuple, Mapping[str, Any]]) -> None:
    """Add quarter-hour deltas (``rollup_deltas``), regrouped, to every level,
    so all levels stay equal to the calls they sum.

    Levels are written finest first and each level's rows in a fixed order, so
    concurrent ingests lock rows in the same order and cannot deadlock each other.
    """
    if not deltas:
        return
    for level in (HourlyCallRollup, *COARSE_ROLLUP_LEVELS, *FINE_ROLLUP_LEVELS):
        _upsert_rollups(level, coarsen_deltas(deltas, level))


def _regrouped_measures(level: type[RollupMeasures]) -> list[str]:
    """SQL summing hourly rows into ``level``'s measure columns, in MEASURES order."""
    quote = connection.ops.quote_name
    expressions = []
    for name in level.MEASURES:
        if name == "errors":
            expressions.append(
                f"coalesce(sum({quote('calls')}) FILTER (WHERE {quote('status_class')} "
                f"<> '{StatusClass.SUCCESS.value}'), 0)"
            )
        else:
            expressions.append(f"sum({quote(HourlyCallRollup._meta.get_field(name).column)})")
    return expressions


def _upsert_rollups(level: type[RollupMeasures], deltas: Mapping[tuple, Mapping[str, Any]]) -> None:
    """Add deltas to ``level``'s rows with one INSERT … ON CONFLICT DO UPDATE."""
    if not deltas:
        return
    table = level._meta.db_table
    dimension_columns = _dimension_columns(level)
    fields = {f.column: f for f in level._meta.concrete_fields}
    measure_columns = [level._meta.get_field(name).column for name in level.MEASURES]
    columns = [*dimension_columns, *measure_columns]
    quote = connection.ops.quote_name
    updates = ", ".join(
        f"{quote(c)} = {quote(table)}.{quote(c)} + EXCLUDED.{quote(c)}" for c in measure_columns
    )
    conflict = ", ".join(quote(c) for c in dimension_columns)
    ordered = sorted(deltas.items(), key=lambda item: _sortable(item[0]))
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        params: list[Any] = []
        for dimensions, measures in chunk:
            values = [*dimensions, *(measures[name] for name in level.MEASURES)]
            params.extend(
                fields[column].get_db_prep_value(value, connection, prepared=False)
                for column, value in zip(columns, values, strict=True)
            )
        row_placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
        sql = (
            f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES {', '.join([row_placeholder] * len(chunk))} "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


# On PostgreSQL the quarter-hour deltas are copied into a temporary table, from
# which one statement per level adds them up, regrouped by date_trunc (as
# coarsen_deltas does in Python). COPY reads the rows far faster than unnest()
# parses one array per column.
_ROLLUP_STAGE = "ingest_rollup_quarter_deltas"


_STAGE_PERIOD = "quarter"


def _rollup_stage_columns() -> list[str]:
    return [
        _STAGE_PERIOD,
        *_dimension_columns(HourlyCallRollup)[1:],
        *(HourlyCallRollup._meta.get_field(name).column for name in HourlyCallRollup.MEASURES),
    ]


def _create_rollup_stage(cursor) -> None:
    """This session's staging table, shaped like the hourly rows with a quarter
    hour in the period's place (created on first use)."""
    quote = connection.ops.quote_name
    period, *rest = _rollup_stage_columns()
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {quote(_ROLLUP_STAGE)} ON COMMIT DELETE ROWS "
        f"AS SELECT {quote(HourlyCallRollup._meta.get_field('hour').column)} AS {quote(period)}, "
        f"{', '.join(quote(c) for c in rest)} "
        f"FROM {quote(HourlyCallRollup._meta.db_table)} WITH NO DATA"
    )


def staged_rollup_statements(
    levels: Sequence[type[RollupMeasures]] = (),
    *,
    source: str = _ROLLUP_STAGE,
    into_empty: bool = False,
) -> list[str]:
    """Add the quarter-hour deltas in ``source`` (a table shaped like the pending
    deltas) to every level (or to ``levels``).

    ``into_empty``: the levels hold no row of the deltas' periods (a rebuild
    deleted them, in the same transaction, holding the folders' lock), so the
    rows are inserted as they are, without looking for one to add to: a
    quarter less work per row than the upsert.

    Each level's rows are written in a fixed order (ORDER BY its dimensions),
    finest level first, so writers lock rows in the same order and cannot
    deadlock each other."""
    quote = connection.ops.quote_name
    stage = quote(source)
    statements = []
    for level in levels or (HourlyCallRollup, *COARSE_ROLLUP_LEVELS, *FINE_ROLLUP_LEVELS):
        table = quote(level._meta.db_table)
        dimensions = _dimension_columns(level)
        level_measures = [level._meta.get_field(name).column for name in level.MEASURES]
        columns = ", ".join(quote(c) for c in [*dimensions, *level_measures])
        updates = ", ".join(
            f"{quote(c)} = {table}.{quote(c)} + EXCLUDED.{quote(c)}" for c in level_measures
        )
        conflict = ", ".join(quote(c) for c in dimensions)
        select = _regroup_select(level, stage, period_column=_STAGE_PERIOD)
        if into_empty:
            statements.append(f"INSERT INTO {table} ({columns}) {select}")
            continue
        statements.append(
            f"INSERT INTO {table} ({columns}) {select} "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        )
    return statements


def _regroup_select(
    level: type[RollupMeasures], source: str, where: str = "", *, period_column: str = "hour"
) -> str:
    """SELECT rows with every dimension from ``source`` (the hourly table, or
    the staging table of quarter hours) regrouped into ``level``'s periods and
    dimensions, ordered by them."""
    quote = connection.ops.quote_name
    hourly = _dimension_columns(HourlyCallRollup)
    kept = [quote(hourly[i]) for i in full_dimension_positions(level)]
    if level.GRID is QUARTER_HOUR:
        period = quote(period_column)  # the finest grain: already the period
    else:
        period = f"date_trunc('{level.GRID.name}', {quote(period_column)}, 'UTC')"
    expressions = [period, *kept, *_regrouped_measures(level)]
    positions = ", ".join(str(n) for n in range(1, len(kept) + 2))
    return (
        f"SELECT {', '.join(expressions)} FROM {source} "
        + (f"WHERE {where} " if where else "")
        + f"GROUP BY {positions} ORDER BY {positions}"
    )


def _sortable(dimensions: tuple) -> tuple:
    return tuple("" if value is None else value for value in dimensions)
