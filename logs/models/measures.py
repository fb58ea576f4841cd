"""The measures: what a rollup row sums for its calls, defined once.

Each measure says what one call adds to it, in Python (ingest's pending
deltas, the SQLite paths) and in SQL over the calls table's columns
(``rebuild_rollups`` on PostgreSQL), and how raw calls sum it as an ORM
aggregate (the raw edges of a time range, small selections, filters rollups
cannot answer). Read from rollups, a measure is the sum of its column. The
duration histogram's buckets are measures too, one per bucket, so p50 and p95
come from rollups as from raw calls.

The rollup models (``logs.models.rollups``, beside this module) have one column per measure; a
new measure is a line here, a column there and a migration.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.db.models import Aggregate, Case, Count, F, IntegerField, Q, Sum, Value, When
from django.db.models.functions import Coalesce, Greatest


class CallFacts(Protocol):
    """What a measure is computed from: a stored call, or one validated for ingest."""

    created_at: datetime
    account_id: int
    api_key_id: int
    group_id: int
    model: str
    call_type: str
    status_code: int
    duration_ms: int
    ttft_ms: int | None
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    usage: Decimal
    cost: Decimal
    cache_savings: Decimal


# Upper edges of the duration histogram (ms); the last bucket is open-ended.
DURATION_BUCKET_EDGES_MS: tuple[int, ...] = (
    50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000,
    7_500, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000,
)  # fmt: skip
HISTOGRAM_FIELDS = tuple(f"h{index:02d}" for index in range(len(DURATION_BUCKET_EDGES_MS) + 1))


def duration_bucket(duration_ms: int) -> int:
    """Index of the histogram bucket a duration falls in."""
    return bisect.bisect_right(DURATION_BUCKET_EDGES_MS, duration_ms)


def generation_ms(duration_ms: int, ttft_ms: int | None, output_tokens: int) -> int:
    """Time spent producing output (what output tokens per second divides by):
    the duration after the first token, for calls that produced output."""
    if output_tokens <= 0:
        return 0
    return max(duration_ms - (ttft_ms or 0), 0)


@dataclass(frozen=True)
class Measure:
    """One sum a rollup row keeps (its column is ``name``)."""

    name: str
    # What one call adds, in SQL over the calls table's columns (PostgreSQL).
    call_sql: str
    # The same in Python.
    of_call: Callable[[CallFacts], int | Decimal]
    # The sum over raw calls, as a new ORM aggregate of CallRecord.
    raw: Callable[[], Aggregate]
    # Sums of money are Decimals (FixedDecimalField columns); counts are ints.
    is_money: bool = False
    is_histogram: bool = False

    @property
    def zero(self) -> int | Decimal:
        return Decimal(0) if self.is_money else 0


def _column(name: str, *, is_money: bool = False, call_name: str | None = None) -> Measure:
    """A measure that sums one column of the call (``call_name``, default ``name``)."""
    column = call_name or name
    return Measure(
        name=name,
        call_sql=column,
        of_call=lambda call: getattr(call, column),
        raw=lambda: Sum(column),
        is_money=is_money,
    )


def _bucket(index: int) -> Measure:
    lower = DURATION_BUCKET_EDGES_MS[index - 1] if index else None
    upper = DURATION_BUCKET_EDGES_MS[index] if index < len(DURATION_BUCKET_EDGES_MS) else None
    sql_bounds = [f"duration_ms >= {lower}"] if lower is not None else []
    sql_bounds += [f"duration_ms < {upper}"] if upper is not None else []
    condition = Q()
    if lower is not None:
        condition &= Q(duration_ms__gte=lower)
    if upper is not None:
        condition &= Q(duration_ms__lt=upper)
    return Measure(
        name=HISTOGRAM_FIELDS[index],
        call_sql=f"CASE WHEN {' AND '.join(sql_bounds)} THEN 1 ELSE 0 END",
        of_call=lambda call: int(duration_bucket(call.duration_ms) == index),
        raw=lambda: Count("pk", filter=condition),
        is_histogram=True,
    )


MEASURES: tuple[Measure, ...] = (
    Measure("calls", "1", lambda call: 1, lambda: Count("pk")),
    _column("input_tokens"),
    _column("output_tokens"),
    Measure(
        "total_tokens",
        "input_tokens::bigint + output_tokens::bigint",
        lambda call: call.input_tokens + call.output_tokens,
        lambda: Sum("total_tokens"),
    ),
    # Parts of the input (prompt cache reads and writes) and of the output.
    _column("cached_input_tokens"),
    _column("cache_write_tokens"),
    _column("reasoning_tokens"),
    _column("usage", is_money=True),
    _column("cost", is_money=True),
    _column("cache_savings", is_money=True),
    _column("duration_ms_sum", call_name="duration_ms"),
    Measure(
        "output_ms_sum",
        "CASE WHEN output_tokens > 0 "
        "THEN greatest(duration_ms::bigint - coalesce(ttft_ms, 0), 0) ELSE 0 END",
        lambda call: generation_ms(call.duration_ms, call.ttft_ms, call.output_tokens),
        lambda: Sum(
            Case(
                When(
                    output_tokens__gt=0,
                    then=Greatest(F("duration_ms") - Coalesce(F("ttft_ms"), Value(0)), Value(0)),
                ),
                default=Value(0),
                output_field=IntegerField(),
            )
        ),
    ),
    *(_bucket(index) for index in range(len(HISTOGRAM_FIELDS))),
)
MEASURE_NAMES: tuple[str, ...] = tuple(measure.name for measure in MEASURES)
BY_NAME: dict[str, Measure] = {measure.name: measure for measure in MEASURES}

# Calls with an error status. The summary levels keep it as a column (they
# keep no status class); the full levels have the status class as a dimension.
ERRORS = Measure(
    "errors",
    "CASE WHEN status_code >= 400 THEN 1 ELSE 0 END",
    lambda call: int(call.status_code >= 400),
    lambda: Count("pk", filter=Q(status_code__gte=400)),
)


def raw_aggregates(names: tuple[str, ...] | None = None, *, prefix: str = "agg_") -> dict:
    """ORM aggregates over raw calls for ``names`` (default: every measure and
    ``errors``), keyed ``prefix + name``. (Prefixed: an aggregate may not share
    a field's name.)"""
    chosen = (*MEASURE_NAMES, ERRORS.name) if names is None else names
    everything = {**BY_NAME, ERRORS.name: ERRORS}
    return {f"{prefix}{name}": everything[name].raw() for name in chosen}
