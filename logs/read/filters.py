"""The filters every surface offers (``CallFilters``), applied to raw calls
(``filter_calls``) and to any rollup level (``filter_rollups``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import (
    QuerySet,
)

from accounts.models import Account, ApiKey, Group
from accounts.scoping import scope_to_visible, visible_account_ids
from logs.models import (
    CallRecord,
    CallType,
    RollupMeasures,
    StatusClass,
)

if TYPE_CHECKING:
    from accounts.scoping import User


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


def filter_rollups(
    level: type[RollupMeasures], user: User, account: Account | None, filters: CallFilters
) -> QuerySet[RollupMeasures]:
    rollups = scope_to_visible(level.objects.all(), "account_id", user, account)
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
FILTER_DIMENSIONS = {
    "model": "model",
    "key_name": "api_key",
    "group": "group",
    "call_type": "call_type",
    "status": "status_class",
    "account_id": "account",
}


def dimensions_needed(
    user: User, account: Account | None, filters: CallFilters, grouped_by: Iterable[str] = ()
) -> set[str]:
    """The rollup dimensions a question filters or groups by, the account
    included whenever the user's scope is narrower than every account."""
    needed = set(grouped_by)
    needed.update(
        dimension
        for name, dimension in FILTER_DIMENSIONS.items()
        if getattr(filters, name) not in (None, "")
    )
    if visible_account_ids(user, account=account) is not None:
        needed.add("account")
    return needed
