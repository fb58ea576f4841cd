"""Deep pages of the call list start from a time boundary, not a long OFFSET."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.db.models import (
    Sum,
)
from django.db.models.functions import TruncDay, TruncHour

from accounts.models import Account
from logs.models import (
    HourlyCallRollup,
    PendingRollupDelta,
    RollupMeasures,
)
from logs.periods import (
    DAY,
    HOUR,
)
from logs.read.filters import CallFilters, dimensions_needed, filter_rollups, raw_calls_only
from logs.read.planner import answering_level, within_ranges
from logs.read.snapshot import consistent_read
from logs.read.totals import scoped_totals

if TYPE_CHECKING:
    from accounts.scoping import User


# A page this deep or deeper is found from the daily rollups' counts (below it
# the index walk is already short).
SEEK_MIN_OFFSET = 1_000


@dataclass(frozen=True)
class PageSeek:
    """Where a deep page starts: among the calls beyond ``boundary`` (older
    than it when newest come first, from it on when oldest come first), at
    position ``offset``. No boundary: at ``offset`` of all matching calls."""

    boundary: datetime | None
    offset: int


@consistent_read()
def seek_page(
    user: User,
    *,
    account: Account | None = None,
    filters: CallFilters,
    offset: int,
    newest_first: bool = True,
) -> PageSeek:
    """Turn a deep OFFSET into a time boundary and a short OFFSET.

    OFFSET 9,900 of one account's calls of one model walks every index entry
    of that account until 9,900 of them match: ~200,000 at ten million calls.
    The daily rollups count each day's matching calls exactly (kept in the
    ingest transaction), so whole days before the page are skipped by time
    and the walk covers only the page's own day, or its own hour where an
    hourly summary answers the filters. ``filters`` must already be
    narrowed to kept calls (``kept_calls_filters``): pruned days still have
    rollups. A partial day at the counting end is counted by ``scoped_totals``.
    """
    if offset < SEEK_MIN_OFFSET or raw_calls_only(filters):
        return PageSeek(boundary=None, offset=offset)
    low = filters.start.astimezone(UTC) if filters.start else None
    high = filters.end.astimezone(UTC) if filters.end else None
    first_day = DAY.ceil(low) if low else None
    last_day = DAY.floor(high) if high else None  # exclusive
    if first_day is not None and last_day is not None and first_day >= last_day:
        return PageSeek(boundary=None, offset=offset)

    skipped, boundary = 0, None
    edge = (last_day, high) if newest_first else (low, first_day)
    if None not in edge and edge[0] != edge[1]:
        edge_filters = replace(filters, start=edge[0], end=edge[1])
        skipped = scoped_totals(user, account=account, filters=edge_filters).calls
        if skipped > offset:
            return PageSeek(boundary=None, offset=offset)
        boundary = edge[0] if newest_first else edge[1]

    needed = dimensions_needed(user, account, filters)
    skipped, boundary, position_day = _skip_periods(
        answering_level(DAY, needed), user, account, filters,
        (first_day, last_day), offset, skipped, boundary, newest_first,
    )  # fmt: skip
    # Within the day that holds the page, whole hours too, when a small hourly
    # summary can count them (the full hourly level has thousands of rows a day:
    # reading them costs about what the walk it would save does).
    hourly = answering_level(HOUR, needed)
    still_deep = offset - skipped >= SEEK_MIN_OFFSET
    if position_day is not None and hourly is not HourlyCallRollup and still_deep:
        hours = (position_day, DAY.next(position_day))
        skipped, boundary, _ = _skip_periods(
            hourly, user, account, filters, hours, offset, skipped, boundary, newest_first
        )
    return PageSeek(boundary=boundary, offset=offset - skipped)


def _skip_periods(
    level: type[RollupMeasures],
    user: User,
    account: Account | None,
    filters: CallFilters,
    span: tuple[datetime | None, datetime | None],
    offset: int,
    skipped: int,
    boundary: datetime | None,
    newest_first: bool,
) -> tuple[int, datetime | None, datetime | None]:
    """Skip ``level``'s whole periods in ``span`` (from the end the page counts
    from) while the calls skipped stay within ``offset``. Returns the calls
    skipped, the boundary reached, and the start of the period holding the
    position (None if the span ran out first)."""
    period = level.PERIOD_FIELD
    folded = filter_rollups(level, user, account, filters).filter(within_ranges(period, [span]))
    pending = filter_rollups(PendingRollupDelta, user, account, filters).filter(
        within_ranges("quarter", [span])
    )
    by_period: dict[datetime, int] = defaultdict(int)
    for start, calls in folded.values_list(period).annotate(calls=Sum("calls")).order_by():
        by_period[start] += calls
    trunc = TruncDay if level.GRID is DAY else TruncHour
    not_folded = pending.annotate(period=trunc("quarter", tzinfo=UTC)).values_list("period")
    for start, calls in not_folded.annotate(calls=Sum("calls")).order_by():
        by_period[start] += calls
    counts = sorted(by_period.items(), reverse=newest_first)
    for start, calls in counts:
        if skipped + calls > offset:
            return skipped, boundary, start
        skipped += calls
        boundary = start if newest_first else level.next_period(start)
    return skipped, boundary, None
