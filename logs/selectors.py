"""How call records are read.

Every surface that shows calls (admin, portal, filter choices, autocomplete,
export, API, stats) starts from ``visible_calls``: it is the one function that
decides which accounts a user may see. Filters and totals then narrow and sum
that scoped queryset; none of them widens it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Sum, When
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from accounts.models import Account, ApiKey, Group
from logs.models import (
    DURATION_BUCKET_EDGES_MS,
    AccountModel,
    CallRecord,
    CallType,
    StatusClass,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser


# --- scoping ----------------------------------------------------------------------


def visible_account_ids(user: User, *, account: Account | None = None) -> list[int] | None:
    """The ids of the accounts whose calls ``user`` may see; ``None`` means all.

    Support staff (``is_staff``) see every account. Anyone else sees the
    accounts they are a member of. ``account`` narrows the answer to that one
    account (the portal's current account); asking for an account the user
    may not see gives an empty list, never an error that would confirm it exists.
    """
    if not user.is_authenticated or not user.is_active:
        return []
    allowed = None if user.is_staff else list(user.memberships.values_list("account_id", flat=True))
    if account is None:
        return allowed
    if allowed is None or account.pk in allowed:
        return [account.pk]
    return []


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
    calls were made in (per account, from the small AccountModel-style table)."""
    ids = visible_account_ids(user, account=account)
    if ids is None:
        return Group.objects.all()
    key_groups = ApiKey.objects.filter(account_id__in=ids).values("group_id")
    return Group.objects.filter(pk__in=key_groups)


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


# --- filters ----------------------------------------------------------------------


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
        calls = calls.filter(api_key__in=ApiKey.objects.filter(name=filters.key_name).values("pk"))
    if filters.group:
        calls = calls.filter(group__in=Group.objects.filter(name=filters.group).values("pk"))
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


def calls_near(call: CallRecord, *, minutes: int = 30) -> QuerySet[CallRecord]:
    """The same key's calls around a call's time (detail page link)."""
    window = timedelta(minutes=minutes)
    return CallRecord.objects.filter(
        api_key_id=call.api_key_id,
        created_at__gte=call.created_at - window,
        created_at__lt=call.created_at + window,
    )


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
    for index, upper in enumerate((*DURATION_BUCKET_EDGES_MS, None)):
        condition = Q()
        if lower is not None:
            condition &= Q(duration_ms__gte=lower)
        if upper is not None:
            condition &= Q(duration_ms__lt=upper)
        aggregates[f"h{index}"] = Count("pk", filter=condition)
        lower = upper
    return aggregates


def usage_stats(
    calls: QuerySet[CallRecord], *, interval: str | None = "day", group_by: str | None = None
) -> list[StatsRow]:
    """Totals per time bucket (hour or day, in the current time zone) and,
    optionally, per model, key name, group or call type. ``interval=None``
    gives one row per key over the whole selection."""
    if interval not in (*STATS_INTERVALS, None):
        raise ValueError(f"interval must be one of {STATS_INTERVALS}")
    if group_by is not None and group_by not in STATS_GROUP_BY:
        raise ValueError(f"group_by must be one of {tuple(STATS_GROUP_BY)}")

    dimensions = {}
    if interval is not None:
        trunc = TruncHour if interval == "hour" else TruncDay
        dimensions["bucket"] = trunc("created_at", tzinfo=timezone.get_current_timezone())
    if group_by is not None:
        dimensions["key"] = F(STATS_GROUP_BY[group_by])

    rows = calls.order_by()
    if dimensions:
        rows = rows.annotate(**dimensions).values(*dimensions)
    histogram = _histogram_aggregates()
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
        **histogram,
    }
    if dimensions:
        results = rows.annotate(**aggregates).order_by(*dimensions)
    else:
        results = [rows.aggregate(**aggregates)]
    return [
        StatsRow(
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
            histogram=tuple(row[name] or 0 for name in histogram),
        )
        for row in results
    ]
