"""Which parts of a time range are read from which rollup level, and which
from raw calls.

A time range is cut into whole periods of the coarsest rollup grid that fits
(months, then days, hours and quarter hours, all in UTC) and, at either end,
the partial quarter hours left over, which are read from raw calls (an
indexed range of minutes each); anything filtered by request id is read from
raw calls. Each grid's periods are read from the smallest level on it that
has every dimension the question needs; where no level on a grid does, its
periods go to the next finer grid. When the answer is per hour or per day of
the current time zone, a grid period that a bucket boundary falls inside (a
UTC hour cut in two by India's half-hour offset, a UTC day by any zone's
midnight) is cut finer too. The pending deltas over every range read from
rollups are read as one more level: what ingest added and the folder has not
moved into the levels yet. An open end needs no cutting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.db.models import (
    Max,
    Min,
    Q,
    QuerySet,
)

from accounts.models import Account
from logs.models import (
    LEVELS_BY_GRID,
    CallRecord,
    HourlyCallRollup,
    PendingRollupDelta,
    RollupMeasures,
)
from logs.periods import (
    GRIDS,
    HOUR,
    QUARTER_HOUR,
    Grid,
)
from logs.read.filters import CallFilters, filter_calls, filter_rollups, raw_calls_only
from logs.read.scope import visible_calls

if TYPE_CHECKING:
    from accounts.scoping import User


Range = tuple[datetime | None, datetime | None]


def answering_level(grid: Grid, needed: set[str]) -> type[RollupMeasures] | None:
    """The smallest level on ``grid`` that has every dimension needed, if any."""
    for level in LEVELS_BY_GRID[grid]:
        if needed <= set(level.DIMENSIONS[1:]):
            return level
    return None


@dataclass(frozen=True)
class ReadPlan:
    """Which parts of a time range are read from which rollup level, and which
    from raw calls. Each range is [start, end); None is unbounded.

    The last level in ``periods`` is the pending deltas (``PendingRollupDelta``,
    quarter hours with every dimension) over every range read from rollups:
    what ingest added and the folder has not moved into the levels yet."""

    periods: tuple[tuple[type[RollupMeasures], tuple[Range, ...]], ...]
    raw: tuple[Range, ...]


def plan_reads(
    filters: CallFilters, needed: set[str], boundaries: Sequence[datetime] | None = None
) -> ReadPlan:
    """Cut the filters' time range into whole periods, coarsest grid first.

    ``boundaries`` (UTC, ascending) are where one bucket of the answer ends
    and the next begins: no period read from rollups may contain one. With
    boundaries, the range must be bounded at both ends.
    """
    if raw_calls_only(filters):
        return ReadPlan(periods=(), raw=((filters.start, filters.end),))
    pieces: dict[type[RollupMeasures], list[Range]] = {}
    raw: list[Range] = []

    def cover(start: datetime | None, end: datetime | None, depth: int) -> None:
        if start is not None and end is not None and start >= end:
            return
        if depth == len(GRIDS):
            raw.append((start, end))
            return
        grid = GRIDS[depth]
        level = answering_level(grid, needed)
        if level is None:
            cover(start, end, depth + 1)
            return
        first = grid.ceil(start) if start is not None else None
        last = grid.floor(end) if end is not None else None
        if first is not None and last is not None and first >= last:
            cover(start, end, depth + 1)
            return
        if boundaries is None:
            pieces.setdefault(level, []).append((first, last))
        else:
            run: datetime | None = None  # start of the current run of whole periods
            for period in grid.periods(first, last):
                if grid.straddles(period, boundaries):
                    if run is not None:
                        pieces.setdefault(level, []).append((run, period))
                        run = None
                    cover(period, grid.next(period), depth + 1)
                elif run is None:
                    run = period
            if run is not None:
                pieces.setdefault(level, []).append((run, last))
        if start is not None and first != start:
            cover(start, first, depth + 1)
        if end is not None and last != end:
            cover(last, end, depth + 1)

    cover(
        filters.start.astimezone(UTC) if filters.start else None,
        filters.end.astimezone(UTC) if filters.end else None,
        0,
    )
    periods = [(level, _joined(ranges)) for level, ranges in pieces.items()]
    if periods:
        everywhere = [r for _, ranges in periods for r in ranges]
        periods.append((PendingRollupDelta, _joined(everywhere)))
    return ReadPlan(periods=tuple(periods), raw=_joined(raw))


def _joined(ranges: list[Range]) -> tuple[Range, ...]:
    """Ranges in order, each run of adjacent ones as one."""
    ordered = sorted(ranges, key=lambda r: r[0] or datetime.min.replace(tzinfo=UTC))
    joined: list[Range] = []
    for start, end in ordered:
        if joined and joined[-1][1] == start:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return tuple(joined)


def within_ranges(field_name: str, ranges: Sequence[Range]) -> Q:
    """``field_name`` in any of ``ranges``."""
    condition = Q()
    for start, end in ranges:
        bounds = {}
        if start is not None:
            bounds[f"{field_name}__gte"] = start
        if end is not None:
            bounds[f"{field_name}__lt"] = end
        condition |= Q(**bounds)
    return condition


def raw_calls_in(
    user: User, account: Account | None, filters: CallFilters, ranges: Sequence[Range]
) -> QuerySet[CallRecord]:
    calls = filter_calls(
        visible_calls(user, account=account), replace(filters, start=None, end=None)
    )
    return calls.filter(within_ranges("created_at", ranges))


def rollups_in(
    user: User,
    account: Account | None,
    filters: CallFilters,
    piece: tuple[type[RollupMeasures], Sequence[Range]],
) -> QuerySet[RollupMeasures]:
    level, ranges = piece
    return filter_rollups(level, user, account, filters).filter(
        within_ranges(level.PERIOD_FIELD, ranges)
    )


def stored_extent(
    hourly: QuerySet[HourlyCallRollup], pending: QuerySet[PendingRollupDelta]
) -> tuple[datetime | None, datetime | None]:
    """[first, after) of the hours and quarter hours holding calls, folded or not."""
    folded = hourly.aggregate(first=Min("hour"), last=Max("hour"))
    waiting = pending.aggregate(first=Min("quarter"), last=Max("quarter"))
    firsts = [m for m in (folded["first"], waiting["first"]) if m is not None]
    afters = [
        m + step
        for m, step in ((folded["last"], HOUR.step), (waiting["last"], QUARTER_HOUR.step))
        if m is not None
    ]
    return (min(firsts), max(afters)) if firsts else (None, None)


def bounded_by_stored_calls(filters: CallFilters) -> CallFilters | None:
    """``filters`` with an open end of its time range closed at the first (or
    after the last) hour any call is stored in; None when nothing is stored there.
    Buckets can then be listed, and no rollup period can hold one's boundary."""
    if filters.start is not None and filters.end is not None:
        return filters
    first, after = stored_extent(HourlyCallRollup.objects.all(), PendingRollupDelta.objects.all())
    if first is None:
        return None
    start = filters.start if filters.start is not None else first
    end = filters.end if filters.end is not None else after
    if start >= end:
        return None
    return replace(filters, start=start, end=end)
