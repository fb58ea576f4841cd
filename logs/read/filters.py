"""The filters every surface offers (``CallFilters``), applied to raw calls
(``filter_calls``) and to any rollup level (``filter_rollups``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet

from accounts.models import Account, ApiKey, Group
from accounts.scoping import scope_to_visible, visible_account_ids
from logs.models import (
    COST_DECIMAL_PLACES,
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
    # Token accounting: the customer's own labels (raw calls only).
    tag: str | None = None
    end_user: str | None = None
    # --- investigation filters (raw calls only; see INVESTIGATION_FILTERS) ---
    status_code: int | None = None
    slower_than_ms: int | None = None
    cost_above: Decimal | None = None
    client_ip: str | None = None
    endpoint: str | None = None
    streamed: bool | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (None, "") for f in fields(self))


def filter_calls(calls: QuerySet[CallRecord], filters: CallFilters) -> QuerySet[CallRecord]:
    """Narrow an already scoped queryset. Each filter is an indexed condition."""
    if filters.start is not None:
        calls = calls.filter(created_at__gte=filters.start)
    if filters.end is not None:
        calls = calls.filter(created_at__lt=filters.end)
    for vocabulary_filter, value in _given(filters):
        calls = calls.filter(vocabulary_filter.on_calls(value))
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


# --- the vocabulary ------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """One filter besides the time range: how it narrows raw calls, and which
    rollup dimension it reads and how it narrows rollup rows (None: rollups
    keep nothing it reads, so a question with it is answered from raw calls)."""

    name: str  # the CallFilters field
    on_calls: Callable[[Any], Q]
    dimension: str | None = None
    on_rollups: Callable[[Any], Q] | None = None


def _equals(column: str) -> Callable[[Any], Q]:
    return lambda value: Q(**{column: value})


def _named(column: str, model: type[ApiKey] | type[Group]) -> Callable[[Any], Q]:
    return lambda name: Q(**{f"{column}__in": ids_named(model, name)})


def _status(value: str) -> Q:
    if value == STATUS_ANY_ERROR:
        return Q(status_code__gte=400)
    return StatusClass.q(value)


def _status_rollups(value: str) -> Q:
    if value == STATUS_ANY_ERROR:
        return Q(status_class__in=[StatusClass.CLIENT_ERROR, StatusClass.SERVER_ERROR])
    if value not in StatusClass.values:
        raise ValueError(f"unknown status class {value!r}")
    return Q(status_class=value)


def _call_type(value: str) -> Q:
    if value not in CallType.values:
        raise ValueError(f"unknown call type {value!r}")
    return Q(call_type=value)


def _has_tag(value: str) -> Q:
    return Q(tags__has_tag=value)


# --- investigation filters (issue 15) ------------------------------------------------
#
# What a support engineer narrows an incident down with. Rollups keep none of
# these columns, so each is raw-calls-only (``dimension=None``): totals, the
# deep-page seek and stats read raw calls for them. Every surface reads a value
# with the same reader (``read_filter_value``), so the admin, the portal and the
# API refuse the same input with the same words.

STATUS_ANY_ERROR = "error"
STATUS_CHOICES: tuple[tuple[str, str], ...] = (
    *StatusClass.choices,
    (STATUS_ANY_ERROR, "Any error (4xx, 5xx)"),
)
STREAMED_CHOICES: tuple[tuple[str, str], ...] = (("yes", "Streamed"), ("no", "Not streamed"))
LARGEST_DURATION_MS = 2**31 - 1  # duration_ms is a 32-bit column
# Costs are stored as integers of 1e-8 USD in a 64-bit column.
COST_PLACES = COST_DECIMAL_PLACES
COST_PATTERN = re.compile(rf"[0-9]{{1,10}}(\.[0-9]{{0,{COST_PLACES}}})?|\.[0-9]{{1,{COST_PLACES}}}")
ENDPOINT_MAX_CHARS = 255


def _read_status_code(raw: str) -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdigit() and len(text) == 3 and 100 <= int(text) <= 599):
        raise ValueError("must be an HTTP status code, 100 to 599")
    return int(text)


def _read_milliseconds(raw: str) -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        raise ValueError("must be a whole number of milliseconds")
    if int(text) > LARGEST_DURATION_MS:
        raise ValueError(f"must be at most {LARGEST_DURATION_MS:,} ms")
    return int(text)


def _read_cost(raw: str) -> Decimal:
    text = raw.strip()
    # Plain digits only: Decimal would also take "1e3", "1_000", "+1" and "NaN".
    if not COST_PATTERN.fullmatch(text):
        raise ValueError(
            f"must be an amount in USD below 10,000,000,000, such as 0.5, "
            f"with up to {COST_PLACES} decimals"
        )
    return Decimal(text)


def _read_client_ip(raw: str) -> str:
    try:
        return str(ip_address(raw.strip()))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


def _read_endpoint(raw: str) -> str:
    text = raw.strip()
    if not text.isprintable() or len(text) > ENDPOINT_MAX_CHARS:
        raise ValueError(f"must be a path of up to {ENDPOINT_MAX_CHARS} characters")
    return text


def _read_streamed(raw: str) -> bool:
    text = raw.strip()
    if text not in ("yes", "no"):
        raise ValueError("must be yes or no")
    return text == "yes"


# CallFilters field -> (label, reader of the text a person or a program sends).
INVESTIGATION_READERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "status_code": ("HTTP status code", _read_status_code),
    "slower_than_ms": ("Slower than (ms)", _read_milliseconds),
    "cost_above": ("Cost above (USD)", _read_cost),
    "client_ip": ("Client IP", _read_client_ip),
    "endpoint": ("Endpoint", _read_endpoint),
    "streamed": ("Streamed", _read_streamed),
}


def read_filter_value(name: str, raw: str) -> Any:
    """The value of investigation filter ``name`` that ``raw`` gives (None for
    nothing typed); ValueError saying what it must be."""
    if raw.strip() == "":
        return None
    _, reader = INVESTIGATION_READERS[name]
    return reader(raw)


INVESTIGATION_FILTERS: tuple[Filter, ...] = (
    Filter("status_code", _equals("status_code")),
    Filter("slower_than_ms", lambda ms: Q(duration_ms__gt=ms)),
    Filter("cost_above", lambda cost: Q(cost__gt=cost)),
    Filter("client_ip", _equals("client_ip")),
    Filter("endpoint", _equals("endpoint")),
    Filter("streamed", _equals("is_stream")),
)
# --- end of investigation filters -----------------------------------------------------


FILTERS: tuple[Filter, ...] = (
    Filter("model", _equals("model"), "model", _equals("model")),
    Filter("key_name", _named("api_key", ApiKey), "api_key", _named("api_key", ApiKey)),
    Filter("group", _named("group", Group), "group", _named("group", Group)),
    Filter("call_type", _call_type, "call_type", _call_type),
    Filter("status", _status, "status_class", _status_rollups),
    # Exact and case-sensitive (request ids are identifiers): the unique key
    # (request_id, account_id, created_at) serves it on every monthly partition.
    Filter("request_id", _equals("request_id")),
    Filter("account_id", _equals("account_id"), "account", _equals("account_id")),
    # Token accounting: labels the gateway's customer sets. Rollups keep neither
    # (one row per tag or end user would multiply them), so both read raw calls.
    Filter("tag", _has_tag),
    Filter("end_user", _equals("end_user")),
    *INVESTIGATION_FILTERS,
)
FILTERS_BY_NAME = {vocabulary_filter.name: vocabulary_filter for vocabulary_filter in FILTERS}


def _given(filters: CallFilters) -> Iterator[tuple[Filter, Any]]:
    """The filters of the vocabulary ``filters`` gives a value, with it."""
    for vocabulary_filter in FILTERS:
        value = getattr(filters, vocabulary_filter.name)
        if value not in (None, ""):
            yield vocabulary_filter, value


def filter_rollups(
    level: type[RollupMeasures], user: User, account: Account | None, filters: CallFilters
) -> QuerySet[RollupMeasures]:
    """``level``'s rows of what ``user`` may see that ``filters`` select (all
    but the time range, which the read plan cuts into periods)."""
    rollups = scope_to_visible(level.objects.all(), "account_id", user, account)
    for vocabulary_filter, value in _given(filters):
        if vocabulary_filter.on_rollups is None:
            raise ValueError(f"rollups keep nothing {vocabulary_filter.name} filters on")
        rollups = rollups.filter(vocabulary_filter.on_rollups(value))
    return rollups


def raw_calls_only(filters: CallFilters) -> bool:
    """Whether a filter is given that no rollup level can answer (a request id)."""
    return any(vocabulary_filter.dimension is None for vocabulary_filter, _ in _given(filters))


def dimension_of(name: str) -> str:
    """The rollup dimension a filter (or a stats grouping of the same name) reads."""
    dimension = FILTERS_BY_NAME[name].dimension
    if dimension is None:
        raise ValueError(f"rollups keep nothing {name} reads")
    return dimension


def dimensions_needed(
    user: User, account: Account | None, filters: CallFilters, grouped_by: Iterable[str] = ()
) -> set[str]:
    """The rollup dimensions a question filters or groups by, the account
    included whenever the user's scope is narrower than every account."""
    needed = set(grouped_by)
    needed.update(
        vocabulary_filter.dimension
        for vocabulary_filter, _ in _given(filters)
        if vocabulary_filter.dimension is not None
    )
    if visible_account_ids(user, account=account) is not None:
        needed.add("account")
    return needed
