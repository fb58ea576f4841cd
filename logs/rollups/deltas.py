"""What calls add to the rollups: deltas, computed in Python.

At the finest grain any level keeps (a UTC quarter hour, every dimension of
the full levels), then regrouped into any level's periods and dimensions.
Ingest writes them as pending deltas (``pending_rows``); on SQLite the folder
and ``rebuild_rollups`` add them to the levels with ``logs.rollups.apply``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from logs.models import (
    HourlyCallRollup,
    PendingRollupDelta,
    RollupMeasures,
    StatusClass,
)
from logs.models.measures import (
    HISTOGRAM_FIELDS,
    MEASURES,
    CallFacts,
    duration_bucket,
)
from logs.periods import QUARTER_HOUR


def rollup_deltas(
    calls: Sequence[CallFacts], *, latest: dict[tuple, datetime] | None = None
) -> dict[tuple, dict[str, Any]]:
    """What a set of new calls adds to the rollups, at the finest grain any level
    keeps: per UTC quarter hour and every dimension of the full levels (in
    ``HourlyCallRollup.DIMENSIONS`` order, the quarter's start in the period's place).
    ``coarsen_deltas`` regroups them into each level. ``latest``, if given,
    receives each key's newest call time."""
    deltas: dict[tuple, dict[str, Any]] = {}
    success, client_error, server_error = (
        StatusClass.SUCCESS.value,
        StatusClass.CLIENT_ERROR.value,
        StatusClass.SERVER_ERROR.value,
    )
    for call in calls:
        status_code = call.status_code
        key = (
            QUARTER_HOUR.floor(call.created_at),
            call.account_id,
            call.api_key_id,
            call.group_id,
            call.model,
            call.call_type,
            # StatusClass.of, without building an enum member per call
            server_error if status_code >= 500 else client_error if status_code >= 400 else success,
        )
        row = deltas.get(key)
        if row is None:
            row = deltas[key] = {measure.name: measure.zero for measure in MEASURES}
        if latest is not None and (key not in latest or call.created_at > latest[key]):
            latest[key] = call.created_at
        for measure in SUMS:
            row[measure.name] += measure.of_call(call)
        # One bucket a call: the histogram's measures all at once.
        row[HISTOGRAM_FIELDS[duration_bucket(call.duration_ms)]] += 1
    return deltas


# The measures that are not histogram buckets.
SUMS = tuple(measure for measure in MEASURES if not measure.is_histogram)


def coarsen_deltas(
    deltas: Mapping[tuple, Mapping[str, Any]], level: type[RollupMeasures]
) -> dict[tuple, dict[str, Any]]:
    """Deltas with every dimension (quarter-hour deltas, or hourly rows) regrouped
    into ``level``'s periods and dimensions (a summary level sums the dimensions
    it does not keep, and counts errors)."""
    positions = full_dimension_positions(level)
    counts_errors = "errors" in level.MEASURES
    status_at = HourlyCallRollup.DIMENSIONS.index("status_class")
    success = StatusClass.SUCCESS.value
    coarse: dict[tuple, dict[str, Any]] = {}
    for dimensions, measures in deltas.items():
        key = (level.period_start(dimensions[0]), *(dimensions[i] for i in positions))
        row = coarse.get(key)
        if row is None:
            row = coarse[key] = dict.fromkeys(level.MEASURES, 0)
        for name, value in measures.items():
            row[name] += value
        if counts_errors and dimensions[status_at] != success:
            row["errors"] += measures["calls"]
    return coarse


def full_dimension_positions(level: type[RollupMeasures]) -> list[int]:
    """Where each of ``level``'s dimensions but the period sits in a key with
    every dimension (an hourly row's, or a quarter-hour delta's)."""
    return [HourlyCallRollup.DIMENSIONS.index(name) for name in level.DIMENSIONS[1:]]


# The fields of a pending row, in the order ingest writes them.
_DELTA_KEY_FIELDS = ("quarter", "account_id", "api_key_id", "group_id", "model", "call_type",
                     "status_class")  # fmt: skip


PENDING_FIELDS = (*_DELTA_KEY_FIELDS, *PendingRollupDelta.MEASURES, "latest_at", "added_at")


def pending_columns() -> list[str]:
    return [PendingRollupDelta._meta.get_field(name).column for name in PENDING_FIELDS]


# What one raw call adds, in SQL over the calls table's columns: the finest
# grain's dimensions (as ``rollup_deltas`` keys them) and each measure's sum.
# (rebuild_rollups on PostgreSQL, and ingest's pending deltas there.)
def delta_dimensions_sql() -> list[str]:
    return [
        "date_bin('15 minutes', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')",
        "account_id",
        "api_key_id",
        "group_id",
        "model",
        "call_type",
        f"CASE WHEN status_code >= 500 THEN '{StatusClass.SERVER_ERROR.value}' "
        f"WHEN status_code >= 400 THEN '{StatusClass.CLIENT_ERROR.value}' "
        f"ELSE '{StatusClass.SUCCESS.value}' END",
    ]


def delta_sums_sql() -> list[str]:
    """One sum per measure, in ``MEASURES`` order."""
    return [f"sum({measure.call_sql})" for measure in MEASURES]


def pending_from_calls_sql(calls_table: str) -> str:
    """PostgreSQL: append the pending deltas of the calls just written, summed by
    the server from their rows (no per-call work in Python). Parameters: the
    calls' ids (an int array literal), their first and last ``created_at`` (so
    only the partitions holding them are probed) and ``added_at``."""
    from django.db import connection

    quote = connection.ops.quote_name
    dimensions = delta_dimensions_sql()
    measures = {measure.name: f"sum({measure.call_sql})" for measure in MEASURES}
    selected = [*dimensions, *(measures[name] for name in PendingRollupDelta.MEASURES)]
    return (
        f"INSERT INTO {quote(PendingRollupDelta._meta.db_table)} "
        f"({', '.join(quote(c) for c in pending_columns())}) "
        f"SELECT {', '.join(selected)}, max(created_at), %s::timestamptz "
        f"FROM {quote(calls_table)} "
        "WHERE id = ANY(%s::bigint[]) AND created_at BETWEEN %s AND %s "
        f"GROUP BY {', '.join(str(i) for i in range(1, len(dimensions) + 1))}"
    )


def pending_rows(calls: Sequence[CallFacts], *, added_at: datetime) -> list[dict[str, Any]]:
    """The pending deltas of new calls (``rollup_deltas``), each with its newest call's time."""
    latest: dict[tuple, datetime] = {}
    deltas = rollup_deltas(calls, latest=latest)
    rows = []
    for key, measures in deltas.items():
        row = dict(zip(_DELTA_KEY_FIELDS, key, strict=True))
        row.update(measures)
        row["latest_at"] = latest[key]
        row["added_at"] = added_at
        rows.append(row)
    return rows
