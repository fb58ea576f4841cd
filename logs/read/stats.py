"""Usage stats: totals per time bucket (hour or day, in the current time zone)
and per model, key name, group or call type, from raw calls (``usage_stats``)
or, for what a user may see, from rollups where they answer (``scoped_usage_stats``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Q,
    QuerySet,
    Sum,
    When,
)
from django.db.models.functions import Cast

from accounts.models import Account
from logs.models import (
    DURATION_BUCKET_EDGES_MS,
    HISTOGRAM_FIELDS,
    CallRecord,
    CallRollup,
    RollupMeasures,
)
from logs.periods import (
    bucket_boundaries,
    bucket_expression,
)
from logs.read.filters import FILTER_DIMENSIONS, CallFilters, dimensions_needed
from logs.read.planner import (
    bounded_by_stored_calls,
    errors_sum,
    plan_reads,
    raw_calls_in,
    rollups_in,
)
from logs.read.snapshot import consistent_read
from logs.read.totals import zero_if_none

if TYPE_CHECKING:
    from accounts.scoping import User


STATS_INTERVALS = ("hour", "day")


STATS_GROUP_BY = {
    "model": "model",
    "key_name": "api_key__name",
    "group": "group__name",
    "call_type": "call_type",
}


@dataclass(frozen=True)
class StatsRow:
    bucket: datetime | None
    key: str | None
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    usage: Decimal
    cost: Decimal
    duration_ms_sum: int
    output_ms_sum: int
    histogram: tuple[int, ...]

    @property
    def average_duration_ms(self) -> float | None:
        return self.duration_ms_sum / self.calls if self.calls else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None

    @property
    def output_tokens_per_second(self) -> float | None:
        return self.output_tokens * 1000 / self.output_ms_sum if self.output_ms_sum else None

    def duration_percentile(self, q: float) -> float | None:
        return histogram_percentile(self.histogram, q)


def histogram_percentile(counts: tuple[int, ...], q: float) -> float | None:
    """The q-quantile (0 < q ≤ 1) of durations, interpolated inside its bucket.

    Exact to the bucket; within a bucket, linear. The open last bucket reports
    its lower edge (a floor: "at least two minutes").
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = DURATION_BUCKET_EDGES_MS[index - 1] if index else 0
            if index >= len(DURATION_BUCKET_EDGES_MS):
                return float(lower)
            upper = DURATION_BUCKET_EDGES_MS[index]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return float(DURATION_BUCKET_EDGES_MS[-1])


def _histogram_aggregates() -> dict:
    aggregates = {}
    lower = None
    for name, upper in zip(HISTOGRAM_FIELDS, (*DURATION_BUCKET_EDGES_MS, None), strict=True):
        condition = Q()
        if lower is not None:
            condition &= Q(duration_ms__gte=lower)
        if upper is not None:
            condition &= Q(duration_ms__lt=upper)
        aggregates[f"agg_{name}"] = Count("pk", filter=condition)
        lower = upper
    return aggregates


def usage_stats(
    calls: QuerySet[CallRecord],
    *,
    interval: str | None = "day",
    group_by: str | None = None,
    histogram: bool = True,
) -> list[StatsRow]:
    """Totals per time bucket (hour or day, in the current time zone) and,
    optionally, per model, key name, group or call type. ``interval=None``
    gives one row per key over the whole selection. ``histogram=False`` leaves
    out the duration histogram (no percentiles: most of the work of a long series)."""
    if interval not in (*STATS_INTERVALS, None):
        raise ValueError(f"interval must be one of {STATS_INTERVALS}")
    if group_by is not None and group_by not in STATS_GROUP_BY:
        raise ValueError(f"group_by must be one of {tuple(STATS_GROUP_BY)}")

    dimensions = {}
    if interval is not None:
        dimensions["bucket"] = bucket_expression("created_at", interval)
    if group_by is not None:
        dimensions["key"] = F(STATS_GROUP_BY[group_by])

    rows = calls.order_by()
    if dimensions:
        rows = rows.annotate(**dimensions).values(*dimensions)
    histogram_aggregates = _histogram_aggregates() if histogram else {}
    # Prefixed names: an annotation called "output_tokens" would shadow the
    # field that the generation-time expression below reads.
    aggregates = {
        "agg_calls": Count("pk"),
        "agg_errors": Count("pk", filter=Q(status_code__gte=400)),
        "agg_input_tokens": Sum("input_tokens"),
        "agg_output_tokens": Sum("output_tokens"),
        "agg_total_tokens": Sum("total_tokens"),
        "agg_usage": Sum("usage"),
        "agg_cost": Sum("cost"),
        "agg_duration_ms_sum": Sum("duration_ms"),
        # Generation time of calls that produced output: duration minus the
        # wait for the first token, so tokens/s measures the model, not the queue.
        "agg_output_ms_sum": Sum(
            Case(
                When(
                    output_tokens__gt=0,
                    then=F("duration_ms")
                    - Case(When(ttft_ms__isnull=False, then=F("ttft_ms")), default=0),
                ),
                default=0,
                output_field=IntegerField(),
            )
        ),
        **histogram_aggregates,
    }
    if dimensions:
        results = rows.annotate(**aggregates).order_by(*dimensions)
    else:
        results = [rows.aggregate(**aggregates)]
    return [_stats_row(row) for row in results]


ROLLUP_GROUP_BY = {
    "model": "model",
    "key_name": "api_key__name",
    "group": "group__name",
    "call_type": "call_type",
}


@consistent_read()
def scoped_usage_stats(
    user: User,
    *,
    account: Account | None = None,
    filters: CallFilters | None = None,
    interval: str | None = "day",
    group_by: str | None = None,
    histogram: bool = True,
) -> list[StatsRow]:
    """``usage_stats`` for what ``user`` may see, read from rollups where it can be.

    Hour and day buckets are those of the current time zone, exactly: rollup
    periods that a bucket boundary falls inside are read from a finer grid, or
    from raw calls (``plan_reads``).
    """
    if interval not in (*STATS_INTERVALS, None):
        raise ValueError(f"interval must be one of {STATS_INTERVALS}")
    if group_by is not None and group_by not in ROLLUP_GROUP_BY:
        raise ValueError(f"group_by must be one of {tuple(ROLLUP_GROUP_BY)}")
    filters = filters or CallFilters()
    needed = dimensions_needed(user, account, filters, _grouped_dimensions(group_by))
    boundaries = None
    if interval is not None and not filters.request_id:
        bounded = bounded_by_stored_calls(filters)
        if bounded is None:
            return []
        filters = bounded
        boundaries = bucket_boundaries(filters.start, filters.end, interval)
    plan = plan_reads(filters, needed, boundaries)
    rows = []
    if plan.raw:
        rows.extend(
            usage_stats(
                raw_calls_in(user, account, filters, plan.raw),
                interval=interval,
                group_by=group_by,
                histogram=histogram,
            )
        )
    for piece in plan.periods:
        rows.extend(
            rollup_stats(rollups_in(user, account, filters, piece), interval, group_by, histogram)
        )
    merged = merge_stats_rows(rows)
    if not merged and interval is None and group_by is None:
        # A range nothing can fall in (a start after the drill-down's year, say)
        # still answers its one all-zero row, as a sum over no calls does.
        return usage_stats(CallRecord.objects.none(), interval=None, histogram=histogram)
    return merged


def _grouped_dimensions(group_by: str | None) -> tuple[str, ...]:
    return () if group_by is None else (FILTER_DIMENSIONS[group_by],)


def rollup_stats(
    rollups: QuerySet[RollupMeasures], interval, group_by, histogram: bool = True
) -> list[StatsRow]:
    dimensions = {}
    if interval is not None:
        period = rollups.model.PERIOD_FIELD
        if period == interval:
            # Periods lie inside buckets (plan_reads) and are as long: they are the
            # buckets, so group by the column itself.
            dimensions["bucket"] = F(period)
        else:
            dimensions["bucket"] = bucket_expression(period, interval)
    if group_by is not None:
        dimensions["key"] = F(ROLLUP_GROUP_BY[group_by])
    measures = {
        f"agg_{name}": _bigint_sum(name, rollups.model)
        for name in CallRollup.MEASURES
        if histogram or name not in HISTOGRAM_FIELDS
    }
    measures["agg_errors"] = errors_sum(rollups.model)
    rows = rollups.order_by()
    if dimensions:
        results = rows.annotate(**dimensions).values(*dimensions).annotate(**measures)
    else:
        results = [rows.aggregate(**measures)]
    return [_stats_row(row) for row in results]


def _bigint_sum(name: str, level: type[RollupMeasures]) -> Sum | Cast:
    """SUM of a rollup column, as a 64-bit integer on PostgreSQL.

    PostgreSQL sums bigints as numeric, which the driver reads as Decimal and
    Django then converts: 28 columns of 720 rows for a month per hour. Every
    measure is an integer count or stored units, and a month of them is far
    from 2**63."""
    total = Sum(name)
    if connection.vendor != "postgresql":
        return total
    return Cast(total, output_field=level._meta.get_field(name))


def _stats_row(row: dict) -> StatsRow:
    """A StatsRow from one aggregate row (raw calls or rollups name them alike)."""
    return StatsRow(
        bucket=row.get("bucket"),
        key=row.get("key"),
        calls=row["agg_calls"] or 0,
        errors=row["agg_errors"] or 0,
        input_tokens=row["agg_input_tokens"] or 0,
        output_tokens=row["agg_output_tokens"] or 0,
        total_tokens=row["agg_total_tokens"] or 0,
        usage=zero_if_none(row["agg_usage"]),
        cost=zero_if_none(row["agg_cost"]),
        duration_ms_sum=row["agg_duration_ms_sum"] or 0,
        output_ms_sum=row["agg_output_ms_sum"] or 0,
        histogram=tuple(
            row[f"agg_{name}"] or 0 for name in HISTOGRAM_FIELDS if f"agg_{name}" in row
        ),
    )


def sum_stats_rows(rows: Iterable[StatsRow]) -> StatsRow:
    """Rows of one selection (say, one per model) added up into its total row."""
    return merge_stats_rows([replace(row, bucket=None, key=None) for row in rows])[0]


def merge_stats_rows(rows: list[StatsRow]) -> list[StatsRow]:
    """Add up rows of the same bucket and key (raw edges + rollup hours)."""
    merged: dict[tuple, StatsRow] = {}
    for row in rows:
        slot = (row.bucket, row.key)
        seen = merged.get(slot)
        if seen is None:
            merged[slot] = row
            continue
        merged[slot] = StatsRow(
            bucket=row.bucket,
            key=row.key,
            calls=seen.calls + row.calls,
            errors=seen.errors + row.errors,
            input_tokens=seen.input_tokens + row.input_tokens,
            output_tokens=seen.output_tokens + row.output_tokens,
            total_tokens=seen.total_tokens + row.total_tokens,
            usage=seen.usage + row.usage,
            cost=seen.cost + row.cost,
            duration_ms_sum=seen.duration_ms_sum + row.duration_ms_sum,
            output_ms_sum=seen.output_ms_sum + row.output_ms_sum,
            histogram=tuple(a + b for a, b in zip(seen.histogram, row.histogram, strict=True)),
        )
    ordered = sorted(
        merged.values(),
        key=lambda r: (r.bucket is None, r.bucket or datetime.min.replace(tzinfo=UTC), r.key or ""),
    )
    # An empty selection still answers one all-zero row when nothing is grouped.
    return [r for r in ordered if r.calls] or ordered[:1]
