"""Usage stats: totals per time bucket (hour or day, in the current time zone)
and per model, key name, group or call type, from raw calls (``usage_stats``)
or, for what a user may see, from rollups where they answer (``scoped_usage_stats``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import (
    F,
    QuerySet,
)

from accounts.models import Account
from logs.models import (
    CallRecord,
    RollupMeasures,
)
from logs.models.measures import (
    DURATION_BUCKET_EDGES_MS,
    ERRORS,
    HISTOGRAM_FIELDS,
    MEASURES,
)
from logs.periods import (
    bucket_boundaries,
    bucket_expression,
)
from logs.read.filters import CallFilters, dimension_of, dimensions_needed, raw_calls_only
from logs.read.planner import (
    bounded_by_stored_calls,
    plan_reads,
    raw_calls_in,
    rollups_in,
)
from logs.read.snapshot import consistent_read
from logs.read.sums import PREFIX, raw_sums, read_sums, rollup_sums

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
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    usage: Decimal
    cost: Decimal
    cache_savings: Decimal
    duration_ms_sum: int
    output_ms_sum: int
    histogram: tuple[int, ...]

    @property
    def cached_input_share(self) -> float | None:
        """The part of the input tokens read from the prompt cache."""
        return self.cached_input_tokens / self.input_tokens if self.input_tokens else None

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


# A StatsRow's sums besides the histogram: every measure but the buckets, and errors.
ROW_SUMS = (
    ERRORS.name,
    *(measure.name for measure in MEASURES if not measure.is_histogram),
)


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


def usage_stats(
    calls: QuerySet[CallRecord],
    *,
    interval: str | None = "day",
    group_by: str | None = None,
    histogram: bool = True,
    sums: tuple[str, ...] = ROW_SUMS,
) -> list[StatsRow]:
    """Totals per time bucket (hour or day, in the current time zone) and,
    optionally, per model, key name, group or call type. ``interval=None``
    gives one row per key over the whole selection. ``histogram=False`` leaves
    out the duration histogram (no percentiles: most of the work of a long series);
    ``sums`` names the measures to read (the others read as zero), for a
    long series that draws a few of them."""
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
    aggregates = raw_sums(_summed(histogram, sums))
    if dimensions:
        results = rows.annotate(**aggregates).order_by(*dimensions)
    else:
        results = [rows.aggregate(**aggregates)]
    return _stats_rows(results)


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
    sums: tuple[str, ...] = ROW_SUMS,
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
    if interval is not None and not raw_calls_only(filters):
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
                sums=sums,
            )
        )
    for piece in plan.periods:
        rows.extend(
            rollup_stats(
                rollups_in(user, account, filters, piece), interval, group_by, histogram, sums
            )
        )
    merged = merge_stats_rows(rows)
    if not merged and interval is None and group_by is None:
        # A range nothing can fall in (a start after the drill-down's year, say)
        # still answers its one all-zero row, as a sum over no calls does.
        return usage_stats(CallRecord.objects.none(), interval=None, histogram=histogram)
    return merged


def _grouped_dimensions(group_by: str | None) -> tuple[str, ...]:
    return () if group_by is None else (dimension_of(group_by),)


def rollup_stats(
    rollups: QuerySet[RollupMeasures],
    interval: str | None,
    group_by: str | None,
    histogram: bool = True,
    sums: tuple[str, ...] = ROW_SUMS,
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
    measures = rollup_sums(rollups.model, _summed(histogram, sums))
    rows = rollups.order_by()
    if dimensions:
        results = rows.annotate(**dimensions).values(*dimensions).annotate(**measures)
    else:
        results = [rows.aggregate(**measures)]
    return _stats_rows(results)


def _summed(histogram: bool, sums: tuple[str, ...] = ROW_SUMS) -> tuple[str, ...]:
    """The measures a stats row sums: ``sums`` (all, or the few a chart draws) and
    the histogram's buckets unless left out (no percentiles, most of the work of
    a long series)."""
    unknown = set(sums) - set(ROW_SUMS)
    if unknown:
        raise ValueError(f"not a stats row's sum: {', '.join(sorted(unknown))}")
    return (*sums, *(HISTOGRAM_FIELDS if histogram else ()))


# A row's sums that were not read are zero (``sums`` asked for fewer).
_ZERO_SUMS = read_sums(dict.fromkeys(f"agg_{name}" for name in ROW_SUMS), ROW_SUMS)


def _stats_rows(rows: Iterable[Mapping]) -> list[StatsRow]:
    """StatsRows from aggregate rows (raw calls or rollups name them alike).

    The rows of one read all have the same columns, so which sums and which
    histogram buckets they hold is worked out from the first: a month of hours
    is 720 rows, and looking each name up in each row cost more than the read.
    """
    made: list[StatsRow] = []
    columns: list[tuple[str, str, int | Decimal]] | None = None
    for row in rows:
        if columns is None:
            columns = [
                (name, f"{PREFIX}{name}", _ZERO_SUMS[name])
                for name in ROW_SUMS
                if f"{PREFIX}{name}" in row
            ]
            unread = {
                name: zero for name, zero in _ZERO_SUMS.items() if f"{PREFIX}{name}" not in row
            }
            buckets = [f"{PREFIX}{name}" for name in HISTOGRAM_FIELDS if f"{PREFIX}{name}" in row]
        values = dict(unread)
        for name, column, zero in columns:
            value = row[column]
            values[name] = zero if value is None else value
        made.append(
            StatsRow(
                bucket=row.get("bucket"),
                key=row.get("key"),
                **values,
                histogram=tuple([row[column] or 0 for column in buckets]),
            )
        )
    return made


def sum_stats_rows(rows: Iterable[StatsRow]) -> StatsRow:
    """Rows of one selection (say, one per model) added up into its total row."""
    rows = list(rows)
    if not rows:
        raise ValueError("no rows to add up")
    histograms = {len(row.histogram) for row in rows}
    if len(histograms) > 1:
        raise ValueError("rows with and without a duration histogram cannot be added up")
    return replace(
        rows[0],
        bucket=None,
        key=None,
        **{
            name: sum(getattr(row, name) for row in rows[1:]) + getattr(rows[0], name)
            for name in ROW_SUMS
        },
        histogram=tuple(map(sum, zip(*(row.histogram for row in rows), strict=True))),
    )


def merge_stats_rows(rows: list[StatsRow]) -> list[StatsRow]:
    """Add up rows of the same bucket and key (raw edges + rollup hours)."""
    # Summed in lists and made into rows once a slot: a month of hours is 720
    # slots, and a frozen dataclass is slow to copy.
    slots: dict[tuple, tuple[StatsRow, list, list]] = {}
    for row in rows:
        slot = (row.bucket, row.key)
        seen = slots.get(slot)
        if seen is None:
            slots[slot] = (row, None, None)
            continue
        first, totals, histogram = seen
        if totals is None:
            totals = [getattr(first, name) for name in ROW_SUMS]
            histogram = list(first.histogram)
            slots[slot] = (first, totals, histogram)
        for index, name in enumerate(ROW_SUMS):
            totals[index] += getattr(row, name)
        if len(histogram) != len(row.histogram):
            raise ValueError("rows with and without a duration histogram cannot be merged")
        for index, count in enumerate(row.histogram):
            histogram[index] += count
    merged = [
        first
        if totals is None
        else replace(first, **dict(zip(ROW_SUMS, totals, strict=True)), histogram=tuple(histogram))
        for first, totals, histogram in slots.values()
    ]
    merged.sort(
        key=lambda r: (r.bucket is None, r.bucket or datetime.min.replace(tzinfo=UTC), r.key or "")
    )
    # An empty selection still answers one all-zero row when nothing is grouped.
    return [r for r in merged if r.calls] or merged[:1]
