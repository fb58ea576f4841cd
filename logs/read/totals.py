"""Totals above the list: from raw calls, or from rollups for what a user may see."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import (
    Count,
    Q,
    QuerySet,
    Sum,
)

from accounts.models import Account
from logs.models import (
    CallRecord,
    PruneRun,
    RollupMeasures,
)
from logs.read.filters import CallFilters, dimensions_needed
from logs.read.planner import errors_sum, plan_reads, raw_calls_in, rollups_in
from logs.read.snapshot import consistent_read

if TYPE_CHECKING:
    from accounts.scoping import User


@dataclass(frozen=True)
class CallTotals:
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    usage: Decimal
    cost: Decimal
    duration_ms: int

    @property
    def average_duration_ms(self) -> float | None:
        return self.duration_ms / self.calls if self.calls else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


def call_totals(calls: QuerySet[CallRecord]) -> CallTotals:
    """Sums over a (scoped, filtered) queryset, exact to the last decimal."""
    row = calls.order_by().aggregate(
        calls=Count("pk"),
        errors=Count("pk", filter=Q(status_code__gte=400)),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        total_tokens=Sum("total_tokens"),
        usage=Sum("usage"),
        cost=Sum("cost"),
        duration_ms=Sum("duration_ms"),
    )
    return CallTotals(
        calls=row["calls"],
        errors=row["errors"],
        input_tokens=row["input_tokens"] or 0,
        output_tokens=row["output_tokens"] or 0,
        total_tokens=row["total_tokens"] or 0,
        usage=zero_if_none(row["usage"]),
        cost=zero_if_none(row["cost"]),
        duration_ms=row["duration_ms"] or 0,
    )


def zero_if_none(value: Decimal | None) -> Decimal:
    # Sums are exact Decimals already (FixedDecimalField sums integers); an
    # empty selection sums to NULL, which reads as zero.
    return Decimal("0") if value is None else value


def _rollup_totals(rollups: QuerySet[RollupMeasures]) -> CallTotals:
    # Only the columns the totals show: the histogram columns are most of a row.
    # (Prefixed names: an aggregate may not share a field's name.)
    row = rollups.order_by().aggregate(
        agg_calls=Sum("calls"),
        agg_errors=errors_sum(rollups.model),
        agg_input_tokens=Sum("input_tokens"),
        agg_output_tokens=Sum("output_tokens"),
        agg_total_tokens=Sum("total_tokens"),
        agg_usage=Sum("usage"),
        agg_cost=Sum("cost"),
        agg_duration_ms=Sum("duration_ms_sum"),
    )
    return CallTotals(
        calls=row["agg_calls"] or 0,
        errors=row["agg_errors"] or 0,
        input_tokens=row["agg_input_tokens"] or 0,
        output_tokens=row["agg_output_tokens"] or 0,
        total_tokens=row["agg_total_tokens"] or 0,
        usage=zero_if_none(row["agg_usage"]),
        cost=zero_if_none(row["agg_cost"]),
        duration_ms=row["agg_duration_ms"] or 0,
    )


@consistent_read()
def scoped_totals(
    user: User, *, account: Account | None = None, filters: CallFilters | None = None
) -> CallTotals:
    """Totals of the calls ``user`` may see that match ``filters``, from rollups."""
    filters = filters or CallFilters()
    plan = plan_reads(filters, dimensions_needed(user, account, filters))
    parts = [call_totals(raw_calls_in(user, account, filters, plan.raw))] if plan.raw else []
    parts.extend(
        _rollup_totals(rollups_in(user, account, filters, piece)) for piece in plan.periods
    )
    return CallTotals(
        calls=sum(p.calls for p in parts),
        errors=sum(p.errors for p in parts),
        input_tokens=sum(p.input_tokens for p in parts),
        output_tokens=sum(p.output_tokens for p in parts),
        total_tokens=sum(p.total_tokens for p in parts),
        usage=sum((p.usage for p in parts), Decimal(0)),
        cost=sum((p.cost for p in parts), Decimal(0)),
        duration_ms=sum(p.duration_ms for p in parts),
    )


def calls_kept_since() -> datetime | None:
    """The latest prune's cutoff: calls received before it are gone, their
    rollups are not. None when calls have never been pruned."""
    return PruneRun.objects.order_by("-cutoff").values_list("cutoff", flat=True).first()


def kept_calls_filters(filters: CallFilters) -> CallFilters:
    """``filters`` narrowed to the calls still kept, for pages that count
    calls from rollups (the call list) rather than show usage (stats)."""
    kept_since = calls_kept_since()
    if kept_since is None or (filters.start is not None and filters.start >= kept_since):
        return filters
    return replace(filters, start=kept_since)
