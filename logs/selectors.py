"""How call records are read.

Every surface that shows calls (admin, portal, filter choices, autocomplete,
export, API, stats) starts from ``visible_calls``: it is the one function that
decides which accounts a user may see. Filters and totals then narrow and sum
that scoped queryset; none of them widens it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connection, connections, router, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    When,
)
from django.db.models.functions import Cast, TruncDay, TruncHour
from django.utils import timezone

from accounts.models import Account, ApiKey, Group
from logs.models import (
    COST_DECIMAL_PLACES,
    DURATION_BUCKET_EDGES_MS,
    HISTOGRAM_FIELDS,
    LEVELS_BY_GRID,
    USAGE_DECIMAL_PLACES,
    AccountGroup,
    AccountModel,
    CallRecord,
    CallRollup,
    CallType,
    PendingRollupDelta,
    PruneRun,
    RollupMeasures,
    StatusClass,
    from_units,
    to_units,
)
from logs.periods import (
    DAY,
    GRIDS,
    HOUR,
    QUARTER_HOUR,
    Grid,
    bucket_boundaries,
    bucket_expression,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser


# --- scoping ----------------------------------------------------------------------


# The permission the staff admin's call list checks. Reading every account's
# calls needs it on every surface (admin, API, exports, stats), together with
# ``is_staff``: see ``reads_every_account``.
READ_EVERY_ACCOUNT_PERMISSION = "logs.view_callrecord"


def reads_every_account(user: User) -> bool:
    """Whether ``user`` is support staff who may read every account's calls.

    It takes both ``is_staff`` and ``READ_EVERY_ACCOUNT_PERMISSION``: the staff
    flag alone only opens the admin site, and the call list there asks for this
    very function (``CallRecordAdmin.has_view_permission``), so the admin's
    check and the scope of the API and exports cannot drift apart. Staff
    without the permission are treated like anyone else. Internal details of a
    call (the upstream) follow the same rule.
    """
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(READ_EVERY_ACCOUNT_PERMISSION)
    )


def visible_account_ids(user: User, *, account: Account | None = None) -> list[int] | None:
    """The ids of the accounts whose calls ``user`` may see; ``None`` means all.

    Support staff (``reads_every_account``: ``is_staff`` and the call list's
    view permission) see every account. Anyone else, staff without that
    permission included, sees the accounts they are a member of, if any.
    ``account`` narrows the answer to that one account (the portal's current
    account); asking for an account the user may not see gives an empty list,
    never an error that would confirm it exists.
    """
    if not user.is_authenticated or not user.is_active:
        return []
    allowed = None if reads_every_account(user) else _member_account_ids(user)
    if account is None:
        return allowed
    if allowed is None or account.pk in allowed:
        return [account.pk]
    return []


# Memberships read during the current request, by user id (see remember_memberships).
_request_memberships: ContextVar[dict[int, list[int]] | None] = ContextVar(
    "request_memberships", default=None
)


@contextmanager
def remember_memberships() -> Iterator[None]:
    """Within this block, read each user's memberships once.

    A page asks many times (the list, each filter's choices, each rollup level
    of the totals); ``logs.middleware.ScopeCacheMiddleware`` wraps every
    request in this. Outside it (commands, the shell, tests calling selectors
    directly) every call reads the memberships afresh, so a change is seen at once.
    """
    token = _request_memberships.set({})
    try:
        yield
    finally:
        _request_memberships.reset(token)


def _member_account_ids(user: User) -> list[int]:
    remembered = _request_memberships.get()
    if remembered is not None and user.pk in remembered:
        return list(remembered[user.pk])
    ids = list(user.memberships.values_list("account_id", flat=True))
    if remembered is not None:
        remembered[user.pk] = ids
    return list(ids)


def visible_calls(user: User, *, account: Account | None = None) -> QuerySet[CallRecord]:
    """Calls ``user`` may see. The start of every read of calls."""
    return _scope(CallRecord.objects.all(), "account_id", user, account)


def visible_accounts(user: User) -> QuerySet[Account]:
    return _scope(Account.objects.all(), "pk", user, None)


def visible_keys(user: User, *, account: Account | None = None) -> QuerySet[ApiKey]:
    return _scope(ApiKey.objects.all(), "account_id", user, account)


def visible_groups(user: User, *, account: Account | None = None) -> QuerySet[Group]:
    """Pricing groups are shared, but which ones an account uses is its own
    business: non-staff see only groups their keys belong to or that their
    calls were made in (AccountGroup, kept by ingest)."""
    ids = visible_account_ids(user, account=account)
    if ids is None:
        return Group.objects.all()
    key_groups = ApiKey.objects.filter(account_id__in=ids).values("group_id")
    call_groups = AccountGroup.objects.filter(account_id__in=ids).values("group_id")
    return Group.objects.filter(Q(pk__in=key_groups) | Q(pk__in=call_groups))


def model_names(user: User, *, account: Account | None = None) -> list[str]:
    """Model names for filter choices, read from AccountModel (kept by ingest),
    not from a DISTINCT over the calls table."""
    rows = _scope(AccountModel.objects.all(), "account_id", user, account)
    return sorted(set(rows.values_list("model", flat=True)))


def key_names(user: User, *, account: Account | None = None) -> list[str]:
    return sorted(set(visible_keys(user, account=account).values_list("name", flat=True)))


def _scope(queryset: QuerySet, field: str, user: User, account: Account | None) -> QuerySet:
    ids = visible_account_ids(user, account=account)
    if ids is None:
        return queryset
    return queryset.filter(**{f"{field}__in": ids})


# --- one moment -------------------------------------------------------------------

# The database alias every read of call data goes to inside consistent_read
# (the read-replica router asks pinned_read_alias()).
_pinned_alias: ContextVar[str | None] = ContextVar("pinned_read_alias", default=None)


def pinned_read_alias() -> str | None:
    return _pinned_alias.get()


@contextmanager
def consistent_read() -> Iterator[None]:
    """Within this block, every read of calls and rollups sees one moment.

    Totals and stats add what ingest appended and the folder has not folded
    (pending deltas) to the rollup levels; a fold in between two of those reads
    would move calls from one to the other, counting them twice or not at all.
    On PostgreSQL the block is one REPEATABLE READ transaction (one snapshot)
    on one database (a replica, if there are any); on SQLite a transaction,
    which readers see one state of the file in. Blocks nest; inside a
    transaction that is already open (a test's, say) it changes nothing.
    Only reads: a write here (the cache, say) could conflict with another's.
    """
    if _pinned_alias.get() is not None:
        yield
        return
    alias = router.db_for_read(CallRecord) or DEFAULT_DB_ALIAS
    token = _pinned_alias.set(alias)
    try:
        database = connections[alias]
        if database.in_atomic_block:
            yield
            return
        with transaction.atomic(using=alias):
            if database.vendor == "postgresql":
                with database.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield
    finally:
        _pinned_alias.reset(token)


# --- filters ----------------------------------------------------------------------


# The instants a time filter can hold. Outside these years converting to UTC,
# or to the database's range, can overflow; PostgreSQL takes zone offsets up
# to ±15:59 and no further (Python's own limit is a day).
EARLIEST_YEAR, LATEST_YEAR = 1900, 9998
LARGEST_UTC_OFFSET = timedelta(hours=15, minutes=59)


def filter_moment(moment: datetime) -> datetime:
    """An aware ``moment`` as a filter holds it, in UTC; ValueError saying
    why it cannot be one."""
    offset = moment.utcoffset()
    if offset is not None and abs(offset) > LARGEST_UTC_OFFSET:
        raise ValueError("has a time zone offset beyond ±15:59")
    try:
        year = moment.astimezone(UTC).year
    except (OverflowError, ValueError):
        year = 0
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise ValueError(f"is outside the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class CallFilters:
    """The filters every surface offers. ``start`` is inclusive, ``end`` exclusive."""

    start: datetime | None = None
    end: datetime | None = None
    model: str | None = None
    key_name: str | None = None
    group: str | None = None
    call_type: str | None = None
    status: str | None = None
    request_id: str | None = None
    account_id: int | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (None, "") for f in fields(self))


def filter_calls(calls: QuerySet[CallRecord], filters: CallFilters) -> QuerySet[CallRecord]:
    """Narrow an already scoped queryset. Each filter is an indexed condition."""
    if filters.start is not None:
        calls = calls.filter(created_at__gte=filters.start)
    if filters.end is not None:
        calls = calls.filter(created_at__lt=filters.end)
    if filters.model:
        calls = calls.filter(model=filters.model)
    if filters.key_name:
        calls = calls.filter(api_key__in=ids_named(ApiKey, filters.key_name))
    if filters.group:
        calls = calls.filter(group__in=ids_named(Group, filters.group))
    if filters.call_type:
        if filters.call_type not in CallType.values:
            raise ValueError(f"unknown call type {filters.call_type!r}")
        calls = calls.filter(call_type=filters.call_type)
    if filters.status:
        calls = calls.filter(StatusClass.q(filters.status))
    if filters.request_id:
        calls = calls.filter(request_id=filters.request_id)
    if filters.account_id is not None:
        calls = calls.filter(account_id=filters.account_id)
    return calls


# Up to this many ids go into a filter as a list of values; more, as a subquery.
NAMED_IDS_MAX = 1000


def ids_named(model: type[ApiKey] | type[Group], name: str) -> list[int] | QuerySet:
    """The ids of the keys (or groups) called ``name``, as literal values.

    Given the values, PostgreSQL estimates how many calls match and picks the
    right index; given a subquery it guesses, and for a deep page of one
    account's calls of one key name it can guess a scan of millions of rows.
    """
    named = model.objects.filter(name=name).order_by("pk").values_list("pk", flat=True)
    ids = list(named[: NAMED_IDS_MAX + 1])
    return ids if len(ids) <= NAMED_IDS_MAX else named


# --- totals -----------------------------------------------------------------------


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
        usage=_exact(row["usage"]),
        cost=_exact(row["cost"]),
        duration_ms=row["duration_ms"] or 0,
    )


def _exact(value: Decimal | None) -> Decimal:
    # Sums are exact Decimals already (FixedDecimalField sums integers); an
    # empty selection sums to NULL, which reads as zero.
    return Decimal("0") if value is None else value


# --- usage stats ------------------------------------------------------------------

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


# --- totals and stats from rollups -----------------------------------------------
#
# A time range is cut into whole periods of the coarsest rollup grid that fits
# (months, then days, hours and quarter hours, all in UTC) and, at either end,
# the partial quarter hours left over, which are read from raw calls (an indexed
# range of minutes each); anything filtered by request id is read from raw
# calls. Each grid's periods are read from the smallest level on it that has
# every dimension the question needs; where no level on a grid does, its
# periods go to the next finer grid. When the answer is per hour or per day of
# the current time zone, a grid period that a bucket boundary falls inside
# (a UTC hour cut in two by India's half-hour offset, a UTC day by any zone's
# midnight) is cut finer too. The answer is exact either way: every level is
# kept in the same transaction as the calls it sums. An open end needs no
# cutting: the current month's row already holds everything up to now.

Range = tuple[datetime | None, datetime | None]


def _rollups(
    level: type[RollupMeasures], user: User, account: Account | None, filters: CallFilters
) -> QuerySet[RollupMeasures]:
    rollups = _scope(level.objects.all(), "account_id", user, account)
    if filters.model:
        rollups = rollups.filter(model=filters.model)
    if filters.key_name:
        rollups = rollups.filter(api_key__in=ids_named(ApiKey, filters.key_name))
    if filters.group:
        rollups = rollups.filter(group__in=ids_named(Group, filters.group))
    if filters.call_type:
        rollups = rollups.filter(call_type=filters.call_type)
    if filters.status:
        rollups = rollups.filter(status_class=filters.status)
    if filters.account_id is not None:
        rollups = rollups.filter(account_id=filters.account_id)
    return rollups


# The rollup dimension each filter (and each stats grouping) reads.
_FILTER_DIMENSIONS = {
    "model": "model",
    "key_name": "api_key",
    "group": "group",
    "call_type": "call_type",
    "status": "status_class",
    "account_id": "account",
}


def _dimensions_needed(
    user: User, account: Account | None, filters: CallFilters, grouped_by: Iterable[str] = ()
) -> set[str]:
    """The rollup dimensions a question filters or groups by, the account
    included whenever the user's scope is narrower than every account."""
    needed = set(grouped_by)
    needed.update(
        dimension
        for name, dimension in _FILTER_DIMENSIONS.items()
        if getattr(filters, name) not in (None, "")
    )
    if visible_account_ids(user, account=account) is not None:
        needed.add("account")
    return needed


def _answering_level(grid: Grid, needed: set[str]) -> type[RollupMeasures] | None:
    """The smallest level on ``grid`` that has every dimension needed, if any."""
    for level in LEVELS_BY_GRID[grid]:
        if needed <= set(level.DIMENSIONS[1:]):
            return level
    return None


def _errors(level: type[RollupMeasures]) -> Sum:
    """Calls with an error status: summaries count them, full levels have the class."""
    if "errors" in level.MEASURES:
        return Sum("errors")
    return Sum("calls", filter=~Q(status_class=StatusClass.SUCCESS))


@dataclass(frozen=True)
class _Plan:
    """Which parts of a time range are read from which rollup level, and which
    from raw calls. Each range is [start, end); None is unbounded.

    The last level in ``periods`` is the pending deltas (``PendingRollupDelta``,
    quarter hours with every dimension) over every range read from rollups:
    what ingest added and the folder has not moved into the levels yet."""

    periods: tuple[tuple[type[RollupMeasures], tuple[Range, ...]], ...]
    raw: tuple[Range, ...]


def _plan(
    filters: CallFilters, needed: set[str], boundaries: Sequence[datetime] | None = None
) -> _Plan:
    """Cut the filters' time range into whole periods, coarsest grid first.

    ``boundaries`` (UTC, ascending) are where one bucket of the answer ends
    and the next begins: no period read from rollups may contain one. With
    boundaries, the range must be bounded at both ends.
    """
    if filters.request_id:
        return _Plan(periods=(), raw=((filters.start, filters.end),))
    pieces: dict[type[RollupMeasures], list[Range]] = {}
    raw: list[Range] = []

    def cover(start: datetime | None, end: datetime | None, depth: int) -> None:
        if start is not None and end is not None and start >= end:
            return
        if depth == len(GRIDS):
            raw.append((start, end))
            return
        grid = GRIDS[depth]
        level = _answering_level(grid, needed)
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
    return _Plan(periods=tuple(periods), raw=_joined(raw))


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


def _within(field_name: str, ranges: Sequence[Range]) -> Q:
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


def _raw_piece(
    user: User, account: Account | None, filters: CallFilters, ranges: Sequence[Range]
) -> QuerySet[CallRecord]:
    calls = filter_calls(
        visible_calls(user, account=account), replace(filters, start=None, end=None)
    )
    return calls.filter(_within("created_at", ranges))


def _period_piece(
    user: User,
    account: Account | None,
    filters: CallFilters,
    piece: tuple[type[RollupMeasures], Sequence[Range]],
) -> QuerySet[RollupMeasures]:
    level, ranges = piece
    return _rollups(level, user, account, filters).filter(_within(level.PERIOD_FIELD, ranges))


def _rollup_totals(rollups: QuerySet[RollupMeasures]) -> CallTotals:
    # Only the columns the totals show: the histogram columns are most of a row.
    # (Prefixed names: an aggregate may not share a field's name.)
    row = rollups.order_by().aggregate(
        agg_calls=Sum("calls"),
        agg_errors=_errors(rollups.model),
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
        usage=_exact(row["agg_usage"]),
        cost=_exact(row["agg_cost"]),
        duration_ms=row["agg_duration_ms"] or 0,
    )


@consistent_read()
def scoped_totals(
    user: User, *, account: Account | None = None, filters: CallFilters | None = None
) -> CallTotals:
    """Totals of the calls ``user`` may see that match ``filters``, from rollups."""
    filters = filters or CallFilters()
    plan = _plan(filters, _dimensions_needed(user, account, filters))
    parts = [call_totals(_raw_piece(user, account, filters, plan.raw))] if plan.raw else []
    parts.extend(
        _rollup_totals(_period_piece(user, account, filters, piece)) for piece in plan.periods
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
    if offset < SEEK_MIN_OFFSET or filters.request_id:
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

    needed = _dimensions_needed(user, account, filters)
    skipped, boundary, position_day = _skip_periods(
        _answering_level(DAY, needed), user, account, filters,
        (first_day, last_day), offset, skipped, boundary, newest_first,
    )  # fmt: skip
    # Within the day that holds the page, whole hours too, when a small hourly
    # summary can count them (the full hourly level has thousands of rows a day:
    # reading them costs about what the walk it would save does).
    hourly = _answering_level(HOUR, needed)
    still_deep = offset - skipped >= SEEK_MIN_OFFSET
    if position_day is not None and hourly is not CallRollup and still_deep:
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
    folded = _rollups(level, user, account, filters).filter(_within(period, [span]))
    pending = _rollups(PendingRollupDelta, user, account, filters).filter(
        _within("quarter", [span])
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
    from raw calls (``_plan``).
    """
    if interval not in (*STATS_INTERVALS, None):
        raise ValueError(f"interval must be one of {STATS_INTERVALS}")
    if group_by is not None and group_by not in ROLLUP_GROUP_BY:
        raise ValueError(f"group_by must be one of {tuple(ROLLUP_GROUP_BY)}")
    filters = filters or CallFilters()
    needed = _dimensions_needed(user, account, filters, _grouped_dimensions(group_by))
    boundaries = None
    if interval is not None and not filters.request_id:
        bounded = _bounded_by_stored_calls(filters)
        if bounded is None:
            return []
        filters = bounded
        boundaries = bucket_boundaries(filters.start, filters.end, interval)
    plan = _plan(filters, needed, boundaries)
    rows = []
    if plan.raw:
        rows.extend(
            usage_stats(
                _raw_piece(user, account, filters, plan.raw),
                interval=interval,
                group_by=group_by,
                histogram=histogram,
            )
        )
    for piece in plan.periods:
        rows.extend(
            _rollup_stats(
                _period_piece(user, account, filters, piece), interval, group_by, histogram
            )
        )
    merged = _merge(rows)
    if not merged and interval is None and group_by is None:
        # A range nothing can fall in (a start after the drill-down's year, say)
        # still answers its one all-zero row, as a sum over no calls does.
        return usage_stats(CallRecord.objects.none(), interval=None, histogram=histogram)
    return merged


def _stored_extent(
    hourly: QuerySet[CallRollup], pending: QuerySet[PendingRollupDelta]
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


def _bounded_by_stored_calls(filters: CallFilters) -> CallFilters | None:
    """``filters`` with an open end of its time range closed at the first (or
    after the last) hour any call is stored in; None when nothing is stored there.
    Buckets can then be listed, and no rollup period can hold one's boundary."""
    if filters.start is not None and filters.end is not None:
        return filters
    first, after = _stored_extent(CallRollup.objects.all(), PendingRollupDelta.objects.all())
    if first is None:
        return None
    start = filters.start if filters.start is not None else first
    end = filters.end if filters.end is not None else after
    if start >= end:
        return None
    return replace(filters, start=start, end=end)


def _grouped_dimensions(group_by: str | None) -> tuple[str, ...]:
    return () if group_by is None else (_FILTER_DIMENSIONS[group_by],)


def _rollup_stats(
    rollups: QuerySet[RollupMeasures], interval, group_by, histogram: bool = True
) -> list[StatsRow]:
    dimensions = {}
    if interval is not None:
        period = rollups.model.PERIOD_FIELD
        if period == interval:
            # Periods lie inside buckets (_plan) and are as long: they are the
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
    measures["agg_errors"] = _errors(rollups.model)
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
        usage=_exact(row["agg_usage"]),
        cost=_exact(row["agg_cost"]),
        duration_ms_sum=row["agg_duration_ms_sum"] or 0,
        output_ms_sum=row["agg_output_ms_sum"] or 0,
        histogram=tuple(
            row[f"agg_{name}"] or 0 for name in HISTOGRAM_FIELDS if f"agg_{name}" in row
        ),
    )


def sum_stats_rows(rows: Iterable[StatsRow]) -> StatsRow:
    """Rows of one selection (say, one per model) added up into its total row."""
    return _merge([replace(row, bucket=None, key=None) for row in rows])[0]


def _merge(rows: list[StatsRow]) -> list[StatsRow]:
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


# --- slow calls -------------------------------------------------------------------
#
# "Slow for that model": slower than the model's p95 duration over the last
# SLOW_WINDOW_DAYS whole UTC days and today, within what the user may see, once
# the model has at least SLOW_MIN_CALLS calls there (a p95 of a handful of calls
# says nothing). Whole days so the daily rollups answer it: one small query.

SLOW_WINDOW_DAYS = 7
SLOW_QUANTILE = 0.95
SLOW_MIN_CALLS = 20
# A week's p95 moves slowly: each scope's answer is kept this long (Django's
# cache), so paging through a list asks the rollups once.
SLOW_CACHE_SECONDS = 300


def slow_call_thresholds(
    user: User,
    *,
    account: Account | None = None,
    models: Iterable[str] | None = None,
    now: datetime | None = None,
) -> dict[str, float]:
    """{model: p95 duration in ms} for ``models`` (all if None) that have enough calls."""
    today = DAY.floor(now or timezone.now())
    wanted = sorted(models) if models is not None else None
    scope = visible_account_ids(user, account=account)
    cache_key = (
        "slow-call-thresholds:"
        + hashlib.sha256(repr((scope, wanted, today.isoformat())).encode()).hexdigest()
    )
    cached = cache.get(cache_key)
    if cached is not None:
        return cached
    level = _answering_level(DAY, _dimensions_needed(user, account, CallFilters(), ("model",)))
    since = today - timedelta(days=SLOW_WINDOW_DAYS)
    rollups = _rollups(level, user, account, CallFilters()).filter(day__gte=since)
    pending = _rollups(PendingRollupDelta, user, account, CallFilters()).filter(quarter__gte=since)
    if wanted is not None:
        rollups = rollups.filter(model__in=wanted)
        pending = pending.filter(model__in=wanted)
    thresholds = {}
    with consistent_read():
        rows = _rollup_stats(rollups, None, "model") + _rollup_stats(pending, None, "model")
    for row in _merge(rows):
        p95 = row.duration_percentile(SLOW_QUANTILE)
        if row.key and row.calls >= SLOW_MIN_CALLS and p95 is not None:
            thresholds[row.key] = p95
    cache.set(cache_key, thresholds, SLOW_CACHE_SECONDS)
    return thresholds


# --- usage stats page: per-key usage ------------------------------------------------
#
# Added for the usage stats page (logs/stats.py). Keys are grouped by the key
# itself, not by name: two accounts may both call a key "prod", and support
# staff must see them apart, each with its account's name.


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
        .annotate(
            agg_calls=Count("pk"),
            agg_errors=Count("pk", filter=Q(status_code__gte=400)),
            agg_total_tokens=Sum("total_tokens"),
            agg_usage=Sum("usage"),
            agg_cost=Sum("cost"),
        )
        .order_by(*KEY_USAGE_ORDER[order_by], "api_key__name", "api_key_id")[:limit]
    )
    return [
        KeyUsage(
            key_id=row["api_key_id"],
            key_name=row["api_key__name"],
            account_id=row["account_id"],
            account_name=row["account__name"],
            calls=row["agg_calls"],
            errors=row["agg_errors"],
            total_tokens=row["agg_total_tokens"] or 0,
            usage=_exact(row["agg_usage"]),
            cost=_exact(row["agg_cost"]),
        )
        for row in rows
    ]


# --- stats sources for the usage stats page ----------------------------------------


class RawCallStats:
    """Stats straight from a scoped, filtered queryset of calls (small selections,
    and any the rollups cannot answer)."""

    def __init__(self, calls: QuerySet[CallRecord]):
        self.calls = calls

    def usage_stats(
        self, *, interval: str | None, group_by: str | None = None, histogram: bool = True
    ) -> list[StatsRow]:
        return usage_stats(self.calls, interval=interval, group_by=group_by, histogram=histogram)

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
        self, *, interval: str | None, group_by: str | None = None, histogram: bool = True
    ) -> list[StatsRow]:
        return scoped_usage_stats(
            self.user,
            account=self.account,
            filters=self.filters,
            interval=interval,
            group_by=group_by,
            histogram=histogram,
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
        folded = _rollups(CallRollup, self.user, self.account, self.filters)
        pending = _rollups(PendingRollupDelta, self.user, self.account, self.filters)
        # The periods the time range touches: the calls' extent within it, not
        # the range itself (a wide range's chart covers its calls only).
        if self.filters.start is not None:
            folded = folded.filter(hour__gte=HOUR.floor(self.filters.start))
            pending = pending.filter(quarter__gte=QUARTER_HOUR.floor(self.filters.start))
        if self.filters.end is not None:
            folded = folded.filter(hour__lt=self.filters.end)
            pending = pending.filter(quarter__lt=self.filters.end)
        with consistent_read():
            first, after = _stored_extent(folded, pending)
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
        needed = _dimensions_needed(self.user, self.account, self.filters, ("api_key", "account"))
        plan = _plan(self.filters, needed)
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
            raw = _raw_piece(self.user, self.account, self.filters, plan.raw)
            for key in top_keys(raw, limit=10**9):
                self._names[key.key_id] = (key.key_name, key.account_name)
                add(key.key_id, key.account_id, key.calls, key.errors, key.total_tokens,
                    to_units(key.usage, USAGE_DECIMAL_PLACES),
                    to_units(key.cost, COST_DECIMAL_PLACES))  # fmt: skip
        for period_piece in plan.periods:
            rollups = _period_piece(self.user, self.account, self.filters, period_piece)
            # Grouped by ids alone, names looked up afterwards for the few keys
            # ranked: grouping by the joined names makes PostgreSQL sort every row.
            rows = (
                rollups.order_by()
                .values("api_key_id", "account_id")
                .annotate(
                    agg_calls=Sum("calls"),
                    agg_errors=_errors(rollups.model),
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
