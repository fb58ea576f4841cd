"""How call records are read.

Every surface that shows calls (admin, portal, filter choices, autocomplete,
export, API, stats) starts from ``visible_calls``: it is the one function that
decides which accounts a user may see. Filters and totals then narrow and sum
that scoped queryset; none of them widens it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Count, Q, QuerySet, Sum

from accounts.models import Account, ApiKey, Group
from logs.models import AccountModel, CallRecord, CallType, StatusClass

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
    from datetime import timedelta

    window = timedelta(minutes=minutes)
    return CallRecord.objects.filter(
        api_key_id=call.api_key_id,
        created_at__gte=call.created_at - window,
        created_at__lt=call.created_at + window,
    )
