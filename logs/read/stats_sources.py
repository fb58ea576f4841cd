"""What the usage stats page reads, from raw calls (``RawCallStats``) or from
rollups (``ScopedCallStats``): stats, the busiest keys and the calls' extent.

Keys are grouped by the key itself, not by name: two accounts may both call a
key "prod", and support staff must see them apart, each with its account's name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import (
    BigIntegerField,
    Max,
    Min,
    QuerySet,
    Sum,
)

from accounts.models import Account, ApiKey
from logs.models import (
    COST_DECIMAL_PLACES,
    USAGE_DECIMAL_PLACES,
    CallRecord,
    HourlyCallRollup,
    PendingRollupDelta,
    from_units,
    to_units,
)
from logs.periods import (
    HOUR,
    QUARTER_HOUR,
)
from logs.read.filters import (
    CallFilters,
    dimensions_needed,
    filter_calls,
    filter_rollups,
    raw_calls_only,
)
from logs.read.planner import plan_reads, raw_calls_in, rollups_in, stored_extent
from logs.read.scope import visible_calls
from logs.read.snapshot import consistent_read
from logs.read.stats import ROW_SUMS, StatsRow, scoped_usage_stats, usage_stats
from logs.read.sums import errors_sum, raw_sums, read_sums

if TYPE_CHECKING:
    from accounts.scoping import User


@dataclass(frozen=True)
class KeyUsage:
    key_id: int
    key_name: str
    account_id: int
    account_name: str
    calls: int
    errors: int
    total_tokens: int
    usage: Decimal
    cost: Decimal


# The sums a key's line shows.
KEY_MEASURES = ("calls", "errors", "total_tokens", "usage", "cost")
KEY_USAGE_ORDER = {"calls": ("-agg_calls", "-agg_cost"), "cost": ("-agg_cost", "-agg_calls")}


def top_keys(
    calls: QuerySet[CallRecord], *, order_by: str = "calls", limit: int = 10
) -> list[KeyUsage]:
    """The ``limit`` keys with the most calls (or cost) in an already scoped queryset."""
    if order_by not in KEY_USAGE_ORDER:
        raise ValueError(f"order_by must be one of {tuple(KEY_USAGE_ORDER)}")
    rows = (
        calls.order_by()
        .values("api_key_id", "api_key__name", "account_id", "account__name")
        .annotate(**raw_sums(KEY_MEASURES))
        .order_by(*KEY_USAGE_ORDER[order_by], "api_key__name", "api_key_id")[:limit]
    )
    return [
        KeyUsage(
            key_id=row["api_key_id"],
            key_name=row["api_key__name"],
            account_id=row["account_id"],
            account_name=row["account__name"],
            **read_sums(row, KEY_MEASURES),
        )
        for row in rows
    ]


class RawCallStats:
    """Stats straight from a scoped, filtered queryset of calls (small selections,
    and any the rollups cannot answer)."""

    def __init__(self, calls: QuerySet[CallRecord]):
        self.calls = calls

    def usage_stats(
        self,
        *,
        interval: str | None,
        group_by: str | None = None,
        histogram: bool = True,
        sums: tuple[str, ...] = ROW_SUMS,
    ) -> list[StatsRow]:
        return usage_stats(
            self.calls, interval=interval, group_by=group_by, histogram=histogram, sums=sums
        )

    def top_keys(self, *, order_by: str, limit: int) -> list[KeyUsage]:
        return top_keys(self.calls, order_by=order_by, limit=limit)

    def extent(self) -> tuple[datetime | None, datetime | None]:
        row = self.calls.order_by().aggregate(first=Min("created_at"), last=Max("created_at"))
        return row["first"], row["last"]

    def since(self, moment: datetime) -> RawCallStats:
        """The same calls from ``moment`` on (a time axis shortened to fit a chart)."""
        return RawCallStats(self.calls.filter(created_at__gte=moment))


class ScopedCallStats:
    """The same answers from the hourly rollups (raw calls only for the partial
    hours at either end of the time range): milliseconds at any table size."""

    def __init__(self, user: User, *, account: Account | None, filters: CallFilters):
        self.user, self.account, self.filters = user, account, filters
        self._sums: dict[int, list] | None = None
        self._names: dict[int, tuple[str, str]] = {}

    def since(self, moment: datetime) -> ScopedCallStats:
        """The same calls from ``moment`` on (a time axis shortened to fit a chart)."""
        start = moment if self.filters.start is None else max(self.filters.start, moment)
        return ScopedCallStats(
            self.user, account=self.account, filters=replace(self.filters, start=start)
        )

    def usage_stats(
        self,
        *,
        interval: str | None,
        group_by: str | None = None,
        histogram: bool = True,
        sums: tuple[str, ...] = ROW_SUMS,
    ) -> list[StatsRow]:
        return scoped_usage_stats(
            self.user,
            account=self.account,
            filters=self.filters,
            interval=interval,
            group_by=group_by,
            histogram=histogram,
            sums=sums,
        )

    def top_keys(self, *, order_by: str, limit: int) -> list[KeyUsage]:
        """The ``limit`` busiest keys by calls or cost (ties by name, then id).

        Both rankings come from one read of every key's sums; only the keys that
        can make a ranking (its first ``limit``, and any tied with the last of
        them, whose order the names decide) have their names looked up."""
        if order_by not in KEY_USAGE_ORDER:
            raise ValueError(f"order_by must be one of {tuple(KEY_USAGE_ORDER)}")
        if self._sums is None:
            self._sums = self._key_sums()

        def measure(calls: int, cost: Decimal) -> tuple:
            return (-calls, -cost) if order_by == "calls" else (-cost, -calls)

        ranked = sorted(self._sums.items(), key=lambda item: measure(item[1][1], item[1][5]))
        if len(ranked) > limit:
            cut = limit
            last = measure(ranked[limit - 1][1][1], ranked[limit - 1][1][5])
            while cut < len(ranked) and measure(ranked[cut][1][1], ranked[cut][1][5]) == last:
                cut += 1
            ranked = ranked[:cut]
        missing = {key_id for key_id, _ in ranked if key_id not in self._names}
        self._names.update(_key_names(missing))
        keys = [
            KeyUsage(
                key_id=key_id,
                key_name=self._names[key_id][0],
                account_id=account_id,
                account_name=self._names[key_id][1],
                calls=calls,
                errors=errors,
                total_tokens=tokens,
                usage=from_units(usage, USAGE_DECIMAL_PLACES),
                cost=from_units(cost, COST_DECIMAL_PLACES),
            )
            for key_id, (account_id, calls, errors, tokens, usage, cost) in ranked
        ]
        keys.sort(key=lambda k: (*measure(k.calls, k.cost), k.key_name, k.key_id))
        return keys[:limit]

    def extent(self) -> tuple[datetime | None, datetime | None]:
        if raw_calls_only(self.filters):
            # A request id: the one call's time, not every hour its filters touch.
            return RawCallStats(
                filter_calls(visible_calls(self.user, account=self.account), self.filters)
            ).extent()
        folded = filter_rollups(HourlyCallRollup, self.user, self.account, self.filters)
        pending = filter_rollups(PendingRollupDelta, self.user, self.account, self.filters)
        # The periods the time range touches: the calls' extent within it, not
        # the range itself (a wide range's chart covers its calls only).
        if self.filters.start is not None:
            folded = folded.filter(hour__gte=HOUR.floor(self.filters.start))
            pending = pending.filter(quarter__gte=QUARTER_HOUR.floor(self.filters.start))
        if self.filters.end is not None:
            folded = folded.filter(hour__lt=self.filters.end)
            pending = pending.filter(quarter__lt=self.filters.end)
        with consistent_read():
            first, after = stored_extent(folded, pending)
        if first is None:
            return None, None
        last = after - timedelta(microseconds=1)
        if self.filters.start is not None:
            first = max(first, self.filters.start)
        if self.filters.end is not None:
            last = min(last, self.filters.end - timedelta(microseconds=1))
        return first, last

    @consistent_read()
    def _key_sums(self) -> dict[int, list]:
        """{key id: [account id, calls, errors, total tokens, usage, cost]} of every
        key with calls in the selection (names of keys seen in raw calls noted);
        usage and cost in stored units (``FixedDecimalField``), which rank alike."""
        needed = dimensions_needed(self.user, self.account, self.filters, ("api_key", "account"))
        plan = plan_reads(self.filters, needed)
        sums: dict[int, list] = {}

        def add(key_id, account_id, calls, errors, total_tokens, usage, cost) -> None:
            seen = sums.get(key_id)
            if seen is None:
                sums[key_id] = [account_id, calls, errors, total_tokens, usage, cost]
                return
            seen[1] += calls
            seen[2] += errors
            seen[3] += total_tokens
            seen[4] += usage
            seen[5] += cost

        if plan.raw:
            raw = raw_calls_in(self.user, self.account, self.filters, plan.raw)
            for key in top_keys(raw, limit=10**9):
                self._names[key.key_id] = (key.key_name, key.account_name)
                add(key.key_id, key.account_id, key.calls, key.errors, key.total_tokens,
                    to_units(key.usage, USAGE_DECIMAL_PLACES),
                    to_units(key.cost, COST_DECIMAL_PLACES))  # fmt: skip
        for period_piece in plan.periods:
            rollups = rollups_in(self.user, self.account, self.filters, period_piece)
            # Grouped by ids alone, names looked up afterwards for the few keys
            # ranked: grouping by the joined names makes PostgreSQL sort every row.
            rows = (
                rollups.order_by()
                .values("api_key_id", "account_id")
                .annotate(
                    agg_calls=Sum("calls"),
                    agg_errors=errors_sum(rollups.model),
                    agg_total_tokens=Sum("total_tokens"),
                    # Scaled integers: every key's sums are read (all 500 of a
                    # gateway's keys, per piece) and only the ranked few shown,
                    # so Decimals are made for those alone (see top_keys).
                    agg_usage=Sum("usage", output_field=BigIntegerField()),
                    agg_cost=Sum("cost", output_field=BigIntegerField()),
                )
                .values_list(
                    "api_key_id",
                    "account_id",
                    "agg_calls",
                    "agg_errors",
                    "agg_total_tokens",
                    "agg_usage",
                    "agg_cost",
                )
            )
            for key_id, account_id, calls, errors, tokens, usage, cost in rows:
                add(key_id, account_id, calls or 0, errors or 0, tokens or 0,
                    usage or 0, cost or 0)  # fmt: skip
        return {key_id: row for key_id, row in sums.items() if row[1]}


def _key_names(key_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """{key id: (key name, account name)} for the given keys."""
    key_ids = set(key_ids)
    if not key_ids:
        return {}
    return {
        pk: (name, account_name)
        for pk, name, account_name in ApiKey.objects.filter(pk__in=key_ids).values_list(
            "pk", "name", "account__name"
        )
    }
