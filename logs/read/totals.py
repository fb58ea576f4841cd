"""Totals above the list: from raw calls, or from rollups for what a user may see."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import (
    QuerySet,
)

from accounts.models import Account
from logs.models import (
    CallRecord,
    PruneRun,
    RollupMeasures,
)
from logs.read.filters import CallFilters, dimensions_needed
from logs.read.planner import plan_reads, raw_calls_in, rollups_in
from logs.read.snapshot import consistent_read
from logs.read.sums import raw_sums, read_sums, rollup_sums

if TYPE_CHECKING:
    from accounts.scoping import User


@dataclass(frozen=True)
class CallTotals:
    """What the totals bar shows: sums of measures (``logs.models.measures``)."""

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

    @property
    def average_duration_ms(self) -> float | None:
        return self.duration_ms_sum / self.calls if self.calls else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None

    def __add__(self, other: CallTotals) -> CallTotals:
        return CallTotals(
            **{name: getattr(self, name) + getattr(other, name) for name in TOTALS_MEASURES}
        )


TOTALS_MEASURES = tuple(field.name for field in fields(CallTotals))
# The totals of no calls: what an empty selection sums to.
NO_CALLS = CallTotals(**read_sums(dict.fromkeys(raw_sums(TOTALS_MEASURES)), TOTALS_MEASURES))


def call_totals(calls: QuerySet[CallRecord]) -> CallTotals:
    """Sums over a (scoped, filtered) queryset, exact to the last decimal."""
    row = calls.order_by().aggregate(**raw_sums(TOTALS_MEASURES))
    return CallTotals(**read_sums(row, TOTALS_MEASURES))


def _rollup_totals(rollups: QuerySet[RollupMeasures]) -> CallTotals:
    # Only the columns the totals show: the histogram columns are most of a row.
    row = rollups.order_by().aggregate(**rollup_sums(rollups.model, TOTALS_MEASURES))
    return CallTotals(**read_sums(row, TOTALS_MEASURES))


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
    return sum(parts, NO_CALLS)


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
