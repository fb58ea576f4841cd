"""How call records are written.

``ingest_calls`` is the only way calls get into the database: the REST API,
``import_calls`` and ``seed_demo`` all go through it, so validation,
redaction, size caps and idempotency hold whatever the source.

A batch is all-or-nothing. Every record is validated first and every problem
is reported (by index and field); only a batch with no problem is written, in
one transaction.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Min, QuerySet
from django.utils import timezone

from accounts.models import ApiKey, Group
from logs.fastjson import canonical_dumps, paused_gc
from logs.models import (
    COARSE_ROLLUP_LEVELS,
    COST_DECIMAL_PLACES,
    DURATION_BUCKET_EDGES_MS,
    FINE_ROLLUP_LEVELS,
    HISTOGRAM_FIELDS,
    USAGE_DECIMAL_PLACES,
    AccessRecord,
    AccountGroup,
    AccountModel,
    CallPayload,
    CallRecord,
    CallRollup,
    CallType,
    FixedDecimalField,
    FoldStatus,
    PendingRollupDelta,
    PruneRun,
    RollupMeasures,
    StatusClass,
    duration_bucket,
    to_units,
)
from logs.partitions import drop_months_before, ensure_partitions, is_partitioned, month_of
from logs.periods import HOUR, QUARTER_HOUR
from logs.redaction import (
    looks_like_credential,
    redact,
    redact_field,
    redact_json,
    redact_upstream,
)

MAX_INT32 = 2**31 - 1
MAX_DURATION_MS = 24 * 3600 * 1000
# Gateways' clocks drift; a call "from the future" beyond this is a bug upstream.
MAX_CLOCK_SKEW = timedelta(minutes=10)
# Usage and cost are stored as integers scaled by 10**places (FixedDecimalField).
# These caps per call leave room for the sum of thousands of the largest calls
# in one rollup row, and of millions of realistic ones, inside 64 bits.
MAX_USAGE = Decimal(10) ** 9
MAX_COST = Decimal(10) ** 6
# Calls before this instant are refused: a timestamp that old is a gateway's bug (a
# zeroed clock), and one such call would stretch every stats page back to it.
EARLIEST_CALL = datetime(2000, 1, 1, tzinfo=UTC)

TOP_LEVEL_FIELDS = frozenset(
    {
        "request_id",
        "created_at",
        "api_key",
        "group",
        "call_type",
        "model",
        "endpoint",
        "stream",
        "status_code",
        "error_reason",
        "duration_ms",
        "ttft_ms",
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "usage",
        "cost",
        "client_ip",
        "upstream",
        "request",
        "response",
        "error",
    }
)
REQUIRED_FIELDS = (
    "request_id",
    "created_at",
    "api_key",
    "call_type",
    "model",
    "status_code",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "usage",
    "cost",
)
REQUEST_FIELDS = frozenset({"params", "body", "headers"})


@dataclass(frozen=True)
class RecordError:
    """One problem with one record: ``index`` is its place in the batch (or
    ``None`` for the batch as a whole), ``field`` a dotted path into it."""

    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class IngestError(Exception):
    """The batch was refused; nothing was written. ``errors`` lists every problem."""

    def __init__(self, errors: Sequence[RecordError]):
        self.errors = list(errors)
        first = self.errors[0]
        where = "batch" if first.index is None else f"record {first.index}"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        field = f", {first.field}" if first.field else ""
        super().__init__(f"{where}{field}: {first.message}{more}")


@dataclass
class IngestResult:
    created: int = 0
    duplicates: int = 0
    created_ids: list[int] = field(default_factory=list)


@dataclass
class _StoredPart:
    text: str
    truncated: bool
    original_bytes: int | None


@dataclass(slots=True)
class _ValidCall:
    """A record that passed validation, with its key and group still by name
    (``ingest_calls`` fills in the ids once it has found them)."""

    index: int
    request_id: str
    created_at: datetime
    key_prefix: str
    group_name: str | None
    call_type: str
    model: str
    endpoint: str
    is_stream: bool
    status_code: int
    error_reason: str
    duration_ms: int
    ttft_ms: int | None
    input_tokens: int
    output_tokens: int
    usage: Decimal
    cost: Decimal
    client_ip: str | None
    upstream: str
    parts: dict[str, Any]  # redacted, not yet capped
    # Each part's JSON text as stored (before the cap); None for an absent part.
    texts: dict[str, str | None]
    account_id: int = 0
    api_key_id: int = 0
    group_id: int = 0
    digest: str = ""  # content_hash, once stored_hash has computed it

    def stored_hash(self) -> str:
        """content_hash, computed once, when first needed. Replays need it only
        for the rare request_id already seen; every other call's is computed as
        COPY streams the call to PostgreSQL, which indexes the rows before it
        meanwhile (on a core of its own), instead of before the COPY starts."""
        if not self.digest:
            self.digest = self.content_hash()
        return self.digest

    def content_hash(self) -> str:
        """Everything but the group, which replays compare separately: a replay
        that leaves the group out means "the key's group at call time", whatever
        the key's group is now."""
        canonical = {
            "request_id": self.request_id,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
            "api_key": self.key_prefix,
            "call_type": self.call_type,
            "model": self.model,
            "endpoint": self.endpoint,
            "stream": self.is_stream,
            "status_code": self.status_code,
            "error_reason": self.error_reason,
            "duration_ms": self.duration_ms,
            "ttft_ms": self.ttft_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "usage": str(self.usage.normalize()),
            "cost": str(self.cost.normalize()),
            "client_ip": self.client_ip,
            "upstream": self.upstream,
            "parts": self.parts,
        }
        # Same text as json.dumps(canonical, sort_keys=True, separators=(",", ":"),
        # default=str) (written by orjson where that is the same): stored hashes of
        # earlier calls must keep matching.
        return hashlib.sha256(canonical_dumps(canonical).encode()).hexdigest()


# A valid call with its key and group found.
_Resolved = tuple[_ValidCall, ApiKey, Group]

# How a part is stored: as cap_part writes it (an encoder built once: json.dumps
# with options builds one per call).
_part_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


# --- validation -----------------------------------------------------------------


class _Problems:
    """Collects the problems of one record under their field names."""

    def __init__(self, index: int):
        self.index = index
        self.errors: list[RecordError] = []

    def add(self, field_name: str, message: str) -> None:
        self.errors.append(RecordError(self.index, field_name, message))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(
    record: Mapping, name: str, problems: _Problems, *, minimum: int, maximum: int
) -> int | None:
    value = record.get(name)
    if not _is_int(value):
        problems.add(name, f"must be a whole number, got {_describe(value)}")
        return None
    if not minimum <= value <= maximum:
        problems.add(name, f"must be between {minimum} and {maximum}, got {value}")
        return None
    return value


def _text(
    record: Mapping, name: str, problems: _Problems, *, max_length: int, required: bool
) -> str | None:
    value = record.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        problems.add(name, f"must be a string, got {_describe(value)}")
        return None
    if problem := _unstorable(value):
        problems.add(name, problem)
        return None
    value = value.strip()
    if required and not value:
        problems.add(name, "must not be empty")
        return None
    if len(value) > max_length:
        problems.add(name, f"must be at most {max_length} characters, got {len(value)}")
        return None
    return value


def _decimal(
    record: Mapping, name: str, problems: _Problems, *, places: int, below: Decimal
) -> Decimal | None:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        problems.add(name, f"must be a decimal number (string or number), got {_describe(value)}")
        return None
    try:
        # str() of a float is its shortest exact repr, so 0.1 stays 0.1.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        problems.add(name, f"must be a decimal number, got {value!r}")
        return None
    if not number.is_finite():
        problems.add(name, "must be a finite number")
        return None
    if number < 0:
        problems.add(name, f"must be zero or more, got {number}")
        return None
    if _decimal_places(number) > places:
        problems.add(name, f"has more than {places} decimal places: {value}")
        return None
    if number >= below:
        problems.add(name, f"must be below {below:,f}, got {number:f}")
        return None
    return number


def _decimal_places(number: Decimal) -> int:
    """Places after the point, ignoring trailing zeros, without rounding
    (Decimal.normalize() rounds to the context's 28 digits)."""
    _, digits, exponent = number.as_tuple()
    digits = list(digits)
    while exponent < 0 and len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exponent += 1
    return max(-exponent, 0)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"[:80]


def _printable(name: Any) -> str:
    """A name as it can be shown in a message: escaped (``x\\ud800``) when it holds
    characters that would garble a terminal or cannot be written as UTF-8."""
    text = str(name)
    return text if text.isprintable() else ascii(text)[1:-1]


# PostgreSQL's text type holds neither the NUL character nor a lone surrogate
# (not valid Unicode, which JSON's "\ud800" escape can still spell), and refuses
# the whole statement — the whole batch — when one reaches it. Validation refuses
# them first, naming the field. (In a payload part a NUL is harmless: JSON text
# writes it as the six characters \u0000.)
_NUL_PROBLEM = "must not contain the NUL character (\\u0000): the database cannot store it"
_SURROGATE_PROBLEM = (
    "must not contain a lone surrogate (\\ud800-\\udfff): it is not valid Unicode "
    "and the database cannot store it"
)


def _has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a surrogate, the only code points UTF-8 cannot encode.

    ``isascii`` is O(1) on a str, and encoding a non-ASCII text is several times
    faster than searching it for the range with a regular expression.
    """
    if text.isascii():
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _unstorable(text: str) -> str:
    """Why the database cannot store ``text`` ("" when it can)."""
    if "\x00" in text:
        return _NUL_PROBLEM
    if _has_lone_surrogate(text):
        return _SURROGATE_PROBLEM
    return ""


def _storable(text: str) -> bool:
    """``not _unstorable(text)``, for the fast path."""
    return "\x00" not in text and not _has_lone_surrogate(text)


def parse_datetime_with_zone(value: Any) -> datetime:
    """ISO 8601 with a zone (``Z`` or an offset); raises ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO 8601 string, got {_describe(value)}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"is not an ISO 8601 date and time: {value!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"must include a time zone (Z or +hh:mm): {value!r}")
    return moment


def _validate_record(index: int, record: Any, now: datetime) -> tuple[_ValidCall | None, list]:
    """The record as a _ValidCall, or its problems."""
    call = _validate_usual(index, record, now)
    if call is not None:
        return call, []
    return _validate_record_fully(index, record, now)


_CALL_TYPES = frozenset(CallType.values)
_IP_CACHE: dict[str, str] = {}


def _ip_address(raw: str) -> str:
    """An address as stored: ``str(ipaddress.ip_address(raw))``. Raises ValueError for
    anything else, and for an IPv6 address with a zone (``fe80::1%eth0``), which
    Python reads but the database's inet type cannot hold (the zone only means
    something on the machine that wrote it)."""
    address = ipaddress.ip_address(raw)
    if getattr(address, "scope_id", None) is not None:
        raise ValueError("zone")
    return str(address)


def _ip_text(raw: str) -> str:
    """``_ip_address(raw)``, remembered (gateways repeat their clients)."""
    text = _IP_CACHE.get(raw)
    if text is None:
        text = _ip_address(raw)
        if len(_IP_CACHE) >= 4096:
            _IP_CACHE.clear()
        _IP_CACHE[raw] = text
    return text


def _usual_decimal(value: Any, places: int, below: Decimal) -> Decimal | None:
    """_decimal for a value that passes, else None (without saying why)."""
    kind = type(value)
    if kind is str:
        text = value.strip()
    elif kind is int or kind is float:
        text = str(value)
    else:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite() or number < 0 or number >= below:
        return None
    if number.as_tuple().exponent < -places and _decimal_places(number) > places:
        return None
    return number


def _validate_usual(index: int, record: Any, now: datetime) -> _ValidCall | None:
    """The usual record in one pass: every field of the type and range it must
    have. Returns None at the first thing out of the ordinary, without saying
    what: ``_validate_record_fully`` then judges the record and words every
    problem. So this must accept only records that one accepts, with the same
    result.
    """
    if type(record) is not dict or not record.keys() <= TOP_LEVEL_FIELDS:
        return None
    get = record.get
    request_id = get("request_id")
    created_at = get("created_at")
    key_prefix = get("api_key")
    model = get("model")
    status_code = get("status_code")
    duration_ms = get("duration_ms")
    input_tokens = get("input_tokens")
    output_tokens = get("output_tokens")
    if (
        type(request_id) is not str
        or type(created_at) is not str
        or type(key_prefix) is not str
        or type(model) is not str
        or type(status_code) is not int
        or type(duration_ms) is not int
        or type(input_tokens) is not int
        or type(output_tokens) is not int
        or not 100 <= status_code <= 599
        or not 0 <= duration_ms <= MAX_DURATION_MS
        or not 0 <= input_tokens <= MAX_INT32
        or not 0 <= output_tokens <= MAX_INT32
    ):
        return None
    request_id = request_id.strip()
    if (
        not 0 < len(request_id) <= 128
        or len(request_id.split()) != 1
        or not _storable(request_id)
        or not _storable(key_prefix)
        or not _storable(model)
        or looks_like_credential(request_id)
    ):
        return None
    try:
        created_at = datetime.fromisoformat(created_at.strip())
    except ValueError:
        return None
    if (
        created_at.utcoffset() is None
        or created_at > now + MAX_CLOCK_SKEW
        or created_at < EARLIEST_CALL
    ):
        return None
    key_prefix = key_prefix.strip()
    if not 0 < len(key_prefix) <= ApiKey.PREFIX_LENGTH:
        return None
    group_name = get("group")
    if group_name is not None:
        if type(group_name) is not str:
            return None
        group_name = group_name.strip()
        if len(group_name) > 64 or not _storable(group_name):
            return None
        group_name = group_name or None
    call_type = get("call_type")
    if type(call_type) is not str or call_type not in _CALL_TYPES:
        return None
    model = model.strip()
    if not 0 < len(model) <= 128 or looks_like_credential(model):
        return None
    endpoint = get("endpoint")
    if endpoint is None:
        endpoint = ""
    elif (
        type(endpoint) is not str
        or len(endpoint := endpoint.strip()) > 255
        or not _storable(endpoint)
    ):
        return None
    stream = get("stream", False)
    if type(stream) is not bool:
        return None
    ttft_ms = get("ttft_ms")
    if ttft_ms is not None and (type(ttft_ms) is not int or not 0 <= ttft_ms <= duration_ms):
        return None
    total_tokens = get("total_tokens")
    if total_tokens is not None and (
        type(total_tokens) is not int or total_tokens != input_tokens + output_tokens
    ):
        return None
    usage = _usual_decimal(get("usage"), USAGE_DECIMAL_PLACES, MAX_USAGE)
    cost = _usual_decimal(get("cost"), COST_DECIMAL_PLACES, MAX_COST)
    if usage is None or cost is None:
        return None
    client_ip = get("client_ip")
    if client_ip is not None:
        if type(client_ip) is not str:
            return None
        try:
            client_ip = _ip_text(client_ip)
        except ValueError:
            return None
    upstream = get("upstream")
    if upstream is None:
        upstream = ""
    elif (
        type(upstream) is not str
        or len(upstream := upstream.strip()) > 128
        or not _storable(upstream)
    ):
        return None
    request = get("request")
    if request is None:
        request = {}
    elif type(request) is not dict or not request.keys() <= REQUEST_FIELDS:
        return None
    params = request.get("params")
    headers = request.get("headers")
    if (params is not None and type(params) is not dict) or (
        headers is not None and type(headers) is not dict
    ):
        return None
    error = get("error")
    if error is not None and type(error) is not dict:
        return None
    error_reason = get("error_reason")
    if error_reason is None:
        error_reason = ""
    elif (
        type(error_reason) is not str
        or len(error_reason := error_reason.strip()) > 255
        or not _storable(error_reason)
    ):
        return None
    problems = _Problems(index)
    if error and error_reason == "":
        error_reason = _reason_from_error(error, problems)
        if problems.errors:
            return None

    prepared = _prepare_parts(
        {
            "request_params": params,
            "request_headers": headers,
            "request_body": request.get("body"),
            "response": get("response"),
            "error_detail": error,
        },
        problems,
    )
    if prepared is None:
        return None
    return _ValidCall(
        index=index,
        request_id=request_id,
        created_at=created_at,
        key_prefix=key_prefix,
        group_name=group_name,
        call_type=call_type,
        model=model,
        # Free text a gateway copies from upstream errors can carry a key too.
        endpoint=redact_field(endpoint),
        is_stream=stream,
        status_code=status_code,
        error_reason=redact_field(error_reason),
        duration_ms=duration_ms,
        ttft_ms=ttft_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        usage=usage,
        cost=cost,
        client_ip=client_ip,
        upstream=redact_upstream(upstream),
        parts=prepared[0],
        texts=prepared[1],
    )


# request_id and model are identities: the idempotency key, and what calls are grouped,
# filtered and priced by. Redacting a credential out of one would leave a value that
# no longer identifies anything (two calls whose ids held keys would both become
# "[REDACTED]": a replay, or a conflict); a credential there means the gateway sends
# the wrong field, which it should hear about.
_CREDENTIAL_PROBLEM = (
    "looks like a credential (an API key or token), which is never stored: send the "
    "gateway's own value for this field"
)


def _validate_record_fully(
    index: int, record: Any, now: datetime
) -> tuple[_ValidCall | None, list]:
    problems = _Problems(index)
    if not isinstance(record, Mapping):
        problems.add("", f"each record must be a JSON object, got {_describe(record)}")
        return None, problems.errors

    for name in sorted(set(record) - TOP_LEVEL_FIELDS):
        problems.add(_printable(name), "is not a known field")
    for name in REQUIRED_FIELDS:
        if record.get(name) is None:
            problems.add(name, "is required")
    if problems.errors:
        return None, problems.errors

    request_id = _text(record, "request_id", problems, max_length=128, required=True)
    if request_id and any(ch.isspace() for ch in request_id):
        problems.add("request_id", "must not contain white space")
    elif request_id and looks_like_credential(request_id):
        problems.add("request_id", _CREDENTIAL_PROBLEM)

    created_at = None
    try:
        created_at = parse_datetime_with_zone(record["created_at"])
        if created_at > now + MAX_CLOCK_SKEW:
            problems.add("created_at", f"is in the future: {record['created_at']}")
        elif created_at < EARLIEST_CALL:
            problems.add("created_at", f"is before the year 2000 (in UTC): {record['created_at']}")
    except ValueError as exc:
        problems.add("created_at", str(exc))

    key_prefix = _text(record, "api_key", problems, max_length=64, required=True)
    if key_prefix and len(key_prefix) > ApiKey.PREFIX_LENGTH:
        # Never look a full key up (or keep it around): it is a credential.
        problems.add(
            "api_key",
            f"give the key's public prefix (its first {ApiKey.PREFIX_LENGTH} characters), "
            "not the full key",
        )
    group_name = _text(record, "group", problems, max_length=64, required=False) or None

    call_type = record.get("call_type")
    if call_type not in CallType.values:
        problems.add("call_type", f"must be one of {', '.join(CallType.values)}, got {call_type!r}")

    model = _text(record, "model", problems, max_length=128, required=True)
    if model and looks_like_credential(model):
        problems.add("model", _CREDENTIAL_PROBLEM)
    endpoint = _text(record, "endpoint", problems, max_length=255, required=False)
    stream = record.get("stream", False)
    if not isinstance(stream, bool):
        problems.add("stream", f"must be true or false, got {_describe(stream)}")

    status_code = _int(record, "status_code", problems, minimum=100, maximum=599)
    duration_ms = _int(record, "duration_ms", problems, minimum=0, maximum=MAX_DURATION_MS)
    ttft_ms = None
    if record.get("ttft_ms") is not None:
        ttft_ms = _int(record, "ttft_ms", problems, minimum=0, maximum=MAX_DURATION_MS)
        if ttft_ms is not None and duration_ms is not None and ttft_ms > duration_ms:
            problems.add("ttft_ms", f"must not exceed duration_ms ({duration_ms}), got {ttft_ms}")
    input_tokens = _int(record, "input_tokens", problems, minimum=0, maximum=MAX_INT32)
    output_tokens = _int(record, "output_tokens", problems, minimum=0, maximum=MAX_INT32)
    if record.get("total_tokens") is not None:
        total = _int(record, "total_tokens", problems, minimum=0, maximum=2 * MAX_INT32)
        if (
            total is not None
            and input_tokens is not None
            and output_tokens is not None
            and total != input_tokens + output_tokens
        ):
            problems.add(
                "total_tokens",
                f"must equal input_tokens + output_tokens ({input_tokens + output_tokens}), "
                f"got {total}",
            )
    usage = _decimal(record, "usage", problems, places=USAGE_DECIMAL_PLACES, below=MAX_USAGE)
    cost = _decimal(record, "cost", problems, places=COST_DECIMAL_PLACES, below=MAX_COST)

    client_ip = None
    if record.get("client_ip") is not None:
        raw_ip = record["client_ip"]
        try:
            client_ip = _ip_address(raw_ip if isinstance(raw_ip, str) else "")
        except ValueError as exc:
            if str(exc) == "zone":
                problems.add(
                    "client_ip",
                    "must be an address without a zone (the %… part, which only means "
                    f"something on the machine that wrote it), got {_describe(raw_ip)}",
                )
            else:
                problems.add(
                    "client_ip", f"must be an IPv4 or IPv6 address, got {_describe(raw_ip)}"
                )
    upstream = _text(record, "upstream", problems, max_length=128, required=False)

    request = record.get("request")
    if request is None:
        request = {}
    if not isinstance(request, Mapping):
        problems.add("request", f"must be an object, got {_describe(request)}")
        request = {}
    for name in sorted(set(request) - REQUEST_FIELDS):
        problems.add(
            f"request.{_printable(name)}", "is not a known field (use params, body or headers)"
        )
    for name in ("params", "headers"):
        if request.get(name) is not None and not isinstance(request[name], Mapping):
            problems.add(f"request.{name}", f"must be an object, got {_describe(request[name])}")

    error = record.get("error")
    if error is not None and not isinstance(error, Mapping):
        problems.add("error", f"must be an object, got {_describe(error)}")
        error = None
    error_reason = _text(record, "error_reason", problems, max_length=255, required=False)
    if error and error_reason == "":
        error_reason = _reason_from_error(error, problems)

    if problems.errors:
        return None, problems.errors

    # Free text a gateway copies from upstream errors can carry a key too.
    endpoint = redact_field(endpoint)
    error_reason = redact_field(error_reason)
    upstream = redact_upstream(upstream)

    parts = {
        "request_params": request.get("params"),
        "request_headers": request.get("headers"),
        "request_body": request.get("body"),
        "response": record.get("response"),
        "error_detail": error,
    }
    prepared = _prepare_parts(parts, problems)
    if prepared is None:
        return None, problems.errors
    redacted_parts, texts = prepared

    return (
        _ValidCall(
            index=index,
            request_id=request_id,
            created_at=created_at,
            key_prefix=key_prefix,
            group_name=group_name,
            call_type=call_type,
            model=model,
            endpoint=endpoint,
            is_stream=stream,
            status_code=status_code,
            error_reason=error_reason,
            duration_ms=duration_ms,
            ttft_ms=ttft_ms,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            usage=usage,
            cost=cost,
            client_ip=client_ip,
            upstream=upstream,
            parts=redacted_parts,
            texts=texts,
        ),
        [],
    )


def _prepare_parts(
    parts: dict[str, Any], problems: _Problems
) -> tuple[dict[str, Any], dict[str, str | None]] | None:
    """Check the nesting of every part, then redact each and write it as JSON.

    Returns the redacted parts and their JSON texts, or None with the problems
    added. Each part is encoded once up front: the text shows at C speed that
    a part nests no deeper than it has brackets, and when redaction leaves the
    part as it is (``redact_json``) it is the stored text as well.
    """
    texts: dict[str, str | None] = {}
    for name, value in parts.items():
        try:
            text = None if value is None else _part_json(value)
        except (TypeError, ValueError, RecursionError):
            text = None  # judged below, as before: depth first, then "not plain JSON"
        texts[name] = text
        if text is not None and _has_lone_surrogate(text):
            problems.add(*_lone_surrogate_at(value, _PART_FIELDS[name]))
        if (
            value is not None
            and (text is None or text.count("{") + text.count("[") > MAX_PAYLOAD_DEPTH)
            and _nesting_depth(value) > MAX_PAYLOAD_DEPTH
        ):
            problems.add(_PART_FIELDS[name], f"is nested more than {MAX_PAYLOAD_DEPTH} levels deep")
    if problems.errors:
        return None
    redacted: dict[str, Any] = {}
    try:
        for name, value in parts.items():
            if value is None:
                redacted[name] = None
            else:
                redacted[name], texts[name] = redact_json(value, texts[name], _part_json)
    except (TypeError, ValueError) as exc:
        problems.add("request", f"payload is not plain JSON: {exc}")
        return None
    return redacted, texts


MAX_PAYLOAD_DEPTH = 64
_PART_FIELDS = {
    "request_params": "request.params",
    "request_headers": "request.headers",
    "request_body": "request.body",
    "response": "response",
    "error_detail": "error",
}


def _lone_surrogate_at(value: Any, path: str) -> tuple[str, str]:
    """(field, message) naming the first string of a part, key or value, that holds a
    lone surrogate, as a path such as ``request.body.messages[0].content``."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _has_lone_surrogate(item):
                return where, _SURROGATE_PROBLEM
        elif isinstance(item, Mapping):
            for key in item:
                if isinstance(key, str) and _has_lone_surrogate(key):
                    return where, (
                        f"has a key ({key!a}) with a lone surrogate (\\ud800-\\udfff): "
                        "it is not valid Unicode and the database cannot store it"
                    )
            children = [(child, f"{where}.{_printable(key)}") for key, child in item.items()]
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend(reversed([(child, f"{where}[{i}]") for i, child in enumerate(item)]))
    return path, _SURROGATE_PROBLEM


def _nesting_depth(value: Any) -> int:
    """How deep lists and objects nest (iteratively: no recursion to blow)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_PAYLOAD_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _reason_from_error(error: Mapping, problems: _Problems) -> str:
    """A one-line reason for the list when only an ``error`` object was given.

    The whole object is kept in the error detail, so shortening here hides nothing.
    """
    # The first of these that is truthy, else message (as `a or b or c or d`: stored
    # reasons, and so replays' content hashes, depend on it).
    source = next((name for name in ("reason", "type", "code") if error.get(name)), "message")
    reason = error.get(source)
    if reason is None:
        return ""
    text = str(reason).strip().splitlines()[0] if str(reason).strip() else ""
    if problem := _unstorable(text):
        problems.add(f"error.{source}", f"becomes the error reason, so it {problem}")
        return ""
    text = redact(text)
    return text if len(text) <= 255 else text[:254] + "…"


# --- storage --------------------------------------------------------------------


def cap_part(value: Any, max_bytes: int) -> _StoredPart:
    """JSON text of a (redacted) part, cut to ``max_bytes`` on a character boundary."""
    if value is None:
        return _StoredPart("", False, None)
    return cap_text(_part_json(value), max_bytes)


def cap_text(text: str | None, max_bytes: int) -> _StoredPart:
    """A part's JSON text (None: no part), cut to ``max_bytes`` on a character boundary."""
    if text is None:
        return _StoredPart("", False, None)
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return _StoredPart(text, False, None)
    cut = encoded[:max_bytes].decode("utf-8", errors="ignore")
    return _StoredPart(cut, True, len(encoded))


def ingest_calls(
    records: Sequence[Any], *, now: datetime | None = None, wait_for_disk: bool = True
) -> IngestResult:
    """Validate, redact and store a batch of call records, all or nothing.

    Raises IngestError listing every bad record; returns how many calls were
    created and how many were already present (same request_id, same content).

    ``wait_for_disk=False`` commits on PostgreSQL without waiting for the commit
    to be flushed (``synchronous_commit = off``): a crash right after may lose
    the batch, never a part of it. Only for callers that can replay what was
    lost and wait for the disk themselves at the end (``import_calls``).
    """
    with paused_gc():  # see paused_gc: a batch would set off full collections
        return _ingest_calls(records, now=now, wait_for_disk=wait_for_disk)


def _ingest_calls(
    records: Sequence[Any], *, now: datetime | None, wait_for_disk: bool
) -> IngestResult:
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Sequence):
        raise IngestError([RecordError(None, "", "expected a list of call records")])
    if not records:
        raise IngestError([RecordError(None, "", "the batch is empty")])
    limit = settings.USAGELOGS_INGEST_MAX_BATCH
    if len(records) > limit:
        raise IngestError(
            [RecordError(None, "", f"at most {limit} records per batch, got {len(records)}")]
        )
    now = now or timezone.now()

    valid: list[_ValidCall] = []
    errors: list[RecordError] = []
    for index, record in enumerate(records):
        call, record_errors = _validate_record(index, record, now)
        if record_errors:
            errors.extend(record_errors)
        if call is not None:
            valid.append(call)

    keys = {
        key.prefix: key
        for key in ApiKey.objects.filter(prefix__in={c.key_prefix for c in valid}).select_related(
            "group"
        )
    }
    group_names = {c.group_name for c in valid if c.group_name is not None}
    groups = {g.name: g for g in Group.objects.filter(name__in=group_names)} if group_names else {}

    resolved: list[_Resolved] = []
    for call in valid:
        key = keys.get(call.key_prefix)
        if key is None:
            errors.append(
                RecordError(call.index, "api_key", f"no key with prefix {call.key_prefix!r}")
            )
            continue
        if key.revoked_at is not None and call.created_at > key.revoked_at:
            errors.append(
                RecordError(
                    call.index,
                    "api_key",
                    f"key {call.key_prefix!r} was revoked at {key.revoked_at.isoformat()}, "
                    "before this call",
                )
            )
            continue
        group = key.group if call.group_name is None else groups.get(call.group_name)
        if group is None:
            errors.append(RecordError(call.index, "group", f"no group named {call.group_name!r}"))
            continue
        call.account_id = key.account_id
        call.api_key_id = key.pk
        call.group_id = group.pk
        resolved.append((call, key, group))

    if errors:
        # Report conflicting replays together with every other problem of the batch.
        # (A batch with no other problem has its replays judged once, in _store.)
        errors.extend(_judge_replays(resolved)[2])
        raise IngestError(sorted(errors, key=lambda e: (e.index is not None, e.index or 0)))

    ensure_partitions({month_of(call.created_at) for call, *_ in resolved})
    try:
        return _store(resolved, wait_for_disk)
    except IntegrityError:
        # Another writer stored one of these request_ids between our check and
        # our insert. Run once more: now the check sees it and judges the replay.
        return _store(resolved, wait_for_disk)


# Request ids hash into this many advisory locks (see _lock_request_ids).
REQUEST_ID_LOCK_BUCKETS = 1024
_REQUEST_ID_LOCK_SPACE = 7_205_118


def _lock_request_ids(request_ids: list[str]) -> None:
    """Make "is this request id new?" and the insert one step on PostgreSQL.

    Partitioned, the calls table can only enforce (request_id, created_at)
    uniqueness, which a conflicting record with another timestamp would slip
    past when two batches race. Transaction-scoped advisory locks on hash
    buckets of the ids, taken in sorted order (so batches cannot deadlock),
    serialise batches that share an id; the lookup then sees every month.
    """
    if connection.vendor != "postgresql" or not request_ids:
        return
    buckets = sorted({zlib.crc32(rid.encode()) % REQUEST_ID_LOCK_BUCKETS for rid in request_ids})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(%s, bucket) "
            "FROM unnest(%s::int[]) WITH ORDINALITY AS t(bucket, position) "
            "ORDER BY position) AS locks",
            [_REQUEST_ID_LOCK_SPACE, buckets],
        )


def _stored_versions(request_ids: list[str]) -> dict[str, tuple[str, int]]:
    """request_id → (content_hash, group_id) of the calls already stored."""
    if not request_ids:
        return {}
    if connection.vendor != "postgresql":
        return {
            request_id: (digest, group_id)
            for request_id, digest, group_id in CallRecord.objects.filter(
                request_id__in=request_ids
            ).values_list("request_id", "content_hash", "group_id")
        }
    # One array parameter rather than one placeholder per id, and every partition
    # probed by index once per id. A plain join leaves that to the planner, which
    # on a small table (or one whose statistics lag behind an import) chose to
    # hash the whole table instead: hundreds of ms a batch. A LATERAL subquery
    # kept from being flattened (OFFSET 0) is always the probe per id.
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT wanted.request_id, c.content_hash, c.group_id "
            "FROM unnest(%s::varchar[]) AS wanted(request_id) "
            "CROSS JOIN LATERAL (SELECT content_hash, group_id "
            f"FROM {quote(CallRecord._meta.db_table)} "
            "WHERE request_id = wanted.request_id OFFSET 0) AS c",
            [_pg_array_literal(request_ids)],
        )
        return {request_id: (digest, group_id) for request_id, digest, group_id in cursor}


def _judge_replays(
    resolved: list[_Resolved],
) -> tuple[list[_Resolved], int, list[RecordError]]:
    """Split a batch into new calls and replays: a replay with the same content
    is a harmless duplicate, one with different content is an error."""
    existing = _stored_versions([c.request_id for c, *_ in resolved])
    fresh = []
    duplicates = 0
    errors: list[RecordError] = []
    seen_in_batch: dict[str, tuple[_ValidCall, int]] = {}
    for item in resolved:
        call, _, group = item
        known = existing.get(call.request_id)
        if known is None and call.request_id in seen_in_batch:
            first, first_group_id = seen_in_batch[call.request_id]
            known = (first.stored_hash(), first_group_id)
        if known is None:
            seen_in_batch[call.request_id] = (call, group.pk)
            fresh.append(item)
        elif known[0] == call.stored_hash() and (call.group_name is None or known[1] == group.pk):
            duplicates += 1
        else:
            errors.append(
                RecordError(
                    call.index,
                    "request_id",
                    f"{call.request_id!r} was already recorded with different content",
                )
            )
    return fresh, duplicates, errors


@transaction.atomic
def _store(resolved: list[_Resolved], wait_for_disk: bool = True) -> IngestResult:
    if not wait_for_disk and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
    _lock_request_ids([call.request_id for call, *_ in resolved])
    fresh, duplicates, errors = _judge_replays(resolved)
    if errors:
        raise IngestError(errors)
    result = IngestResult(duplicates=duplicates)
    if not fresh:
        return result
    if connection.vendor == "postgresql":
        ids = _write_on_postgresql(fresh)
    else:
        ids = _create_calls(fresh)
        calls = [call for call, *_ in fresh]
        _remember_models(calls)
        PendingRollupDelta.objects.bulk_create(
            PendingRollupDelta(**row) for row in pending_rows(calls, added_at=timezone.now())
        )
    if settings.USAGELOGS_FOLD_AFTER_INGEST:
        # After the commit, outside the batch's transaction: a failed fold is
        # logged and leaves the deltas pending (reads stay exact), never fails the batch.
        transaction.on_commit(fold_if_free, robust=True)
    result.created = len(ids)
    result.created_ids = ids
    return result


# --- bulk inserts -----------------------------------------------------------------
#
# On PostgreSQL calls and payloads go in with COPY (ids drawn from the sequence
# first, in one statement), the rest as one statement per table with a few array
# parameters whatever the batch size. Elsewhere, Django's bulk_create.

_CALL_COLUMNS = (
    "id",
    "request_id",
    "created_at",
    "account_id",
    "api_key_id",
    "group_id",
    "call_type",
    "model",
    "endpoint",
    "is_stream",
    "status_code",
    "error_reason",
    "duration_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "usage",
    "cost",
    "client_ip",
    "upstream",
    "content_hash",
)
_PAYLOAD_COLUMNS = (
    "call_id",
    "created_at",
    *(
        column
        for part in CallPayload.PARTS
        for column in (part, f"{part}_truncated", f"{part}_original_bytes")
    ),
)
_call_sequence: str | None = None


def _call_ids(count: int) -> list[int]:
    """``count`` new ids from the calls table's identity sequence, ascending."""
    global _call_sequence
    with connection.cursor() as cursor:
        if _call_sequence is None:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [CallRecord._meta.db_table])
            _call_sequence = cursor.fetchone()[0]
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [_call_sequence, count]
        )
        return sorted(row[0] for row in cursor.fetchall())


def _write_on_postgresql(fresh: list[_Resolved]) -> list[int]:
    """Write new calls and everything they change; returns their ids.

    Calls and payloads go in with COPY. The server indexes the calls while
    they stream in, and meanwhile this process prepares the payload rows and
    the other statements (registries, keys, rollups), which then run in one
    round trip. Tables are written in the same order as always (calls,
    payloads, registries, keys, rollups) so concurrent batches cannot deadlock.
    """
    ids = _call_ids(len(fresh))
    calls = [call for call, *_ in fresh]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor, connection.wrap_database_errors:
        calls_sql = (
            f"COPY {quote(CallRecord._meta.db_table)} "
            f"({', '.join(quote(c) for c in _CALL_COLUMNS)}) FROM STDIN"
        )
        with cursor.copy(calls_sql) as copy:
            for pk, (call, _, _) in zip(ids, fresh, strict=True):
                copy.write_row(
                    (
                        pk,
                        call.request_id,
                        call.created_at,
                        call.account_id,
                        call.api_key_id,
                        call.group_id,
                        call.call_type,
                        call.model,
                        call.endpoint,
                        call.is_stream,
                        call.status_code,
                        call.error_reason,
                        call.duration_ms,
                        call.ttft_ms,
                        call.input_tokens,
                        call.output_tokens,
                        call.input_tokens + call.output_tokens,
                        to_units(call.usage, USAGE_DECIMAL_PLACES),
                        to_units(call.cost, COST_DECIMAL_PLACES),
                        call.client_ip,
                        call.upstream,
                        call.stored_hash(),
                    )
                )
            payload_rows = _payload_rows(calls, ids)
            pending = pending_rows(calls, added_at=timezone.now())
            statements = _registry_statements(calls)
        if payload_rows:
            payloads_sql = (
                f"COPY {quote(CallPayload._meta.db_table)} "
                f"({', '.join(quote(c) for c in _PAYLOAD_COLUMNS)}) FROM STDIN"
            )
            with cursor.copy(payloads_sql) as copy:
                for row in payload_rows:
                    copy.write_row(row)
        columns = _pending_columns()
        pending_sql = (
            f"COPY {quote(PendingRollupDelta._meta.db_table)} "
            f"({', '.join(quote(c) for c in columns)}) FROM STDIN"
        )
        with cursor.copy(pending_sql) as copy:
            for row in pending:
                row["usage"] = to_units(row["usage"], USAGE_DECIMAL_PLACES)
                row["cost"] = to_units(row["cost"], COST_DECIMAL_PLACES)
                copy.write_row([row[name] for name in _PENDING_FIELDS])
        _execute_together(cursor, statements)
    return ids


def _execute_together(cursor, statements: list[tuple[str, list]]) -> None:
    """Run statements in order, in one round trip where the driver allows it
    (client-side parameter binding, Django's default for psycopg 3)."""
    if connection.settings_dict.get("OPTIONS", {}).get("server_side_binding"):
        for sql, params in statements:
            cursor.execute(sql, params)
        return
    cursor.execute(
        ";\n".join(sql for sql, _ in statements),
        [param for _, params in statements for param in params],
    )


def _payload_rows(calls: list[_ValidCall], ids: list[int]) -> list[list[Any]]:
    """The CallPayload rows (in _PAYLOAD_COLUMNS order) of the calls that have parts."""
    max_bytes = settings.USAGELOGS_PAYLOAD_MAX_BYTES
    parts = CallPayload.PARTS
    rows = []
    for pk, call in zip(ids, calls, strict=True):
        texts = call.texts
        if all(texts[name] is None for name in parts):
            continue
        row: list[Any] = [pk, call.created_at]
        for name in parts:
            text = texts[name]
            if text is None:
                row += ("", False, None)
            elif len(text.encode()) <= max_bytes:  # as cap_text, without its dataclass
                row += (text, False, None)
            else:
                stored = cap_text(text, max_bytes)
                row += (stored.text, stored.truncated, stored.original_bytes)
        rows.append(row)
    return rows


def _create_calls(fresh: list[_Resolved]) -> list[int]:
    """bulk_create the calls and their payloads (databases other than PostgreSQL)."""
    records = CallRecord.objects.bulk_create(
        [
            CallRecord(
                request_id=call.request_id,
                created_at=call.created_at,
                account_id=call.account_id,
                api_key_id=call.api_key_id,
                group_id=call.group_id,
                call_type=call.call_type,
                model=call.model,
                endpoint=call.endpoint,
                is_stream=call.is_stream,
                status_code=call.status_code,
                error_reason=call.error_reason,
                duration_ms=call.duration_ms,
                ttft_ms=call.ttft_ms,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                total_tokens=call.input_tokens + call.output_tokens,
                usage=call.usage,
                cost=call.cost,
                client_ip=call.client_ip,
                upstream=call.upstream,
                content_hash=call.stored_hash(),
            )
            for call, _, _ in fresh
        ]
    )
    max_bytes = settings.USAGELOGS_PAYLOAD_MAX_BYTES
    payloads = []
    for (call, *_), record in zip(fresh, records, strict=True):
        if all(text is None for text in call.texts.values()):
            continue
        payload = CallPayload(call_id=record.pk, created_at=record.created_at)
        for name in CallPayload.PARTS:
            stored = cap_text(call.texts[name], max_bytes)
            setattr(payload, name, stored.text)
            setattr(payload, f"{name}_truncated", stored.truncated)
            setattr(payload, f"{name}_original_bytes", stored.original_bytes)
        payloads.append(payload)
    if payloads:
        CallPayload.objects.bulk_create(payloads)
    return [record.pk for record in records]


def _pg_array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of ``values`` (text form, every element quoted),
    to pass as one string parameter: far cheaper to build than psycopg's
    element-by-element list adaptation."""
    return (
        '{"' + '","'.join(str(v).replace("\\", "\\\\").replace('"', '\\"') for v in values) + '"}'
    )


def _pg_int_array_literal(values: Iterable[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _unnest_insert_sql(table: str, columns: list[str], types: list[str]) -> str:
    quote = connection.ops.quote_name
    arrays = ", ".join(f"%s::{db_type}[]" for db_type in types)
    names = ", ".join(quote(column) for column in columns)
    return f"INSERT INTO {quote(table)} ({names}) SELECT * FROM unnest({arrays})"


def _first_uses(calls: list[_ValidCall]) -> tuple[dict, dict]:
    """(account, model) and (account, group) pairs of the calls, with their first time."""
    models_seen: dict[tuple[int, str], datetime] = {}
    groups_seen: dict[tuple[int, int], datetime] = {}
    for call in calls:
        for seen, slot in (
            (models_seen, (call.account_id, call.model)),
            (groups_seen, (call.account_id, call.group_id)),
        ):
            if slot not in seen or call.created_at < seen[slot]:
                seen[slot] = call.created_at
    return models_seen, groups_seen


def _remember_models(calls: list[_ValidCall]) -> None:
    """Note the models and groups each account used, for filter choices."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for statement in _registry_statements(calls):
                cursor.execute(*statement)
        return
    models_seen, groups_seen = _first_uses(calls)
    AccountModel.objects.bulk_create(
        [AccountModel(account_id=a, model=m, first_seen_at=t) for (a, m), t in models_seen.items()],
        ignore_conflicts=True,
    )
    AccountGroup.objects.bulk_create(
        [
            AccountGroup(account_id=a, group_id=g, first_seen_at=t)
            for (a, g), t in groups_seen.items()
        ],
        ignore_conflicts=True,
    )


def _registry_statements(calls: list[_ValidCall]) -> list[tuple[str, list]]:
    """_remember_models on PostgreSQL as statements. Rows go in a fixed order:
    concurrent batches wait on each other's new rows in the same order and
    cannot deadlock."""
    statements = []
    models_seen, groups_seen = _first_uses(calls)
    for model, seen, column, column_type in (
        (AccountModel, models_seen, "model", "varchar"),
        (AccountGroup, groups_seen, "group_id", "bigint"),
    ):
        ordered = sorted(seen.items())
        sql = _unnest_insert_sql(
            model._meta.db_table,
            ["account_id", column, "first_seen_at"],
            ["bigint", column_type, "timestamptz"],
        )
        statements.append(
            (
                f"{sql} ON CONFLICT DO NOTHING",
                [
                    _pg_int_array_literal(a for (a, _), _ in ordered),
                    _pg_array_literal(value for (_, value), _ in ordered),
                    _pg_array_literal(moment for _, moment in ordered),
                ],
            )
        )
    return statements


def _latest_uses(calls: list[_ValidCall]) -> dict[int, datetime]:
    latest: dict[int, datetime] = {}
    for call in calls:
        if call.api_key_id not in latest or call.created_at > latest[call.api_key_id]:
            latest[call.api_key_id] = call.created_at
    return latest


def _touch_keys(calls: list[_ValidCall]) -> None:
    """Move each key's last_used_at forward (never back: batches arrive out of order)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(*_touch_keys_statement(calls))
        return
    for key_id, moment in _latest_uses(calls).items():
        ApiKey.objects.filter(pk=key_id).exclude(last_used_at__gte=moment).update(
            last_used_at=moment
        )


def _touch_keys_statement(calls: list[_ValidCall]) -> tuple[str, list]:
    """_touch_keys on PostgreSQL as one statement for every key: rows locked in
    id order (no deadlock between concurrent batches), and only the keys whose
    time moves forward."""
    ordered = sorted(_latest_uses(calls).items())
    table = connection.ops.quote_name(ApiKey._meta.db_table)
    return (
        f"WITH moved AS (SELECT k.id, v.moment FROM {table} k "
        "JOIN unnest(%s::bigint[], %s::timestamptz[]) AS v(id, moment) ON k.id = v.id "
        "WHERE k.last_used_at IS NULL OR k.last_used_at < v.moment "
        "ORDER BY k.id FOR NO KEY UPDATE OF k) "
        f"UPDATE {table} SET last_used_at = moved.moment FROM moved "
        f"WHERE {table}.id = moved.id",
        [
            _pg_int_array_literal(key_id for key_id, _ in ordered),
            _pg_array_literal(moment for _, moment in ordered),
        ],
    )


# --- access records -------------------------------------------------------------


def record_access(
    *,
    user,
    action: str,
    surface: str,
    call: CallRecord | None = None,
    filters: Mapping[str, Any] | None = None,
    row_count: int | None = None,
) -> AccessRecord:
    """Note that someone read call contents (a detail page or an export)."""
    return AccessRecord.objects.create(
        at=timezone.now(),
        user=user if getattr(user, "is_authenticated", False) else None,
        username=getattr(user, "get_username", lambda: "")(),
        action=action,
        surface=surface,
        call_id=call.pk if call is not None else None,
        request_id=call.request_id if call is not None else "",
        filters={
            _jsonb_text(key): _jsonb_text(value) if isinstance(value, str) else value
            for key, value in (filters or {}).items()
            if value not in ("", None)
        },
        row_count=row_count,
    )


def _jsonb_text(text: str) -> str:
    """PostgreSQL's jsonb cannot hold a NUL character (``\\u0000``): keep a
    visible stand-in instead of failing the read the record is about."""
    return text.replace("\x00", "\ufffd")


def finish_export_record(record: AccessRecord, row_count: int) -> None:
    """Streamed exports learn their size at the end."""
    AccessRecord.objects.filter(pk=record.pk).update(row_count=row_count)


# --- rollups --------------------------------------------------------------------


def _dimension_columns(level: type[RollupMeasures]) -> list[str]:
    return [level._meta.get_field(name).column for name in level.DIMENSIONS]


def generation_ms(duration_ms: int, ttft_ms: int | None, output_tokens: int) -> int:
    """Time spent producing output: what output tokens per second divides by."""
    if output_tokens <= 0:
        return 0
    return max(duration_ms - (ttft_ms or 0), 0)


def rollup_deltas(
    calls: Sequence[CallRecord], *, latest: dict[tuple, datetime] | None = None
) -> dict[tuple, dict[str, Any]]:
    """What a set of new calls adds to the rollups, at the finest grain any level
    keeps: per UTC quarter hour and every dimension of the full levels (in
    ``CallRollup.DIMENSIONS`` order, the quarter's start in the period's place).
    ``coarsen_deltas`` regroups them into each level. ``latest``, if given,
    receives each key's newest call time."""
    deltas: dict[tuple, dict[str, Any]] = {}
    success, client_error, server_error = (
        StatusClass.SUCCESS.value,
        StatusClass.CLIENT_ERROR.value,
        StatusClass.SERVER_ERROR.value,
    )
    for call in calls:
        status_code = call.status_code
        key = (
            QUARTER_HOUR.floor(call.created_at),
            call.account_id,
            call.api_key_id,
            call.group_id,
            call.model,
            call.call_type,
            # StatusClass.of, without building an enum member per call
            server_error if status_code >= 500 else client_error if status_code >= 400 else success,
        )
        row = deltas.get(key)
        if row is None:
            row = deltas[key] = dict.fromkeys(CallRollup.MEASURES, 0)
            row["usage"] = row["cost"] = Decimal(0)
        if latest is not None and (key not in latest or call.created_at > latest[key]):
            latest[key] = call.created_at
        row["calls"] += 1
        row["input_tokens"] += call.input_tokens
        row["output_tokens"] += call.output_tokens
        row["total_tokens"] += call.input_tokens + call.output_tokens
        row["usage"] += call.usage
        row["cost"] += call.cost
        row["duration_ms_sum"] += call.duration_ms
        row["output_ms_sum"] += generation_ms(call.duration_ms, call.ttft_ms, call.output_tokens)
        row[HISTOGRAM_FIELDS[duration_bucket(call.duration_ms)]] += 1
    return deltas


def apply_rollup_deltas(deltas: Mapping[tuple, Mapping[str, Any]]) -> None:
    """Add quarter-hour deltas (``rollup_deltas``), regrouped, to every level,
    so all levels stay equal to the calls they sum.

    Levels are written finest first and each level's rows in a fixed order, so
    concurrent ingests lock rows in the same order and cannot deadlock each other.
    """
    if not deltas:
        return
    for level in (CallRollup, *COARSE_ROLLUP_LEVELS, *FINE_ROLLUP_LEVELS):
        _upsert_rollups(level, coarsen_deltas(deltas, level))


def coarsen_deltas(
    deltas: Mapping[tuple, Mapping[str, Any]], level: type[RollupMeasures]
) -> dict[tuple, dict[str, Any]]:
    """Deltas with every dimension (quarter-hour deltas, or hourly rows) regrouped
    into ``level``'s periods and dimensions (a summary level sums the dimensions
    it does not keep, and counts errors)."""
    positions = _hourly_positions(level)
    counts_errors = "errors" in level.MEASURES
    status_at = CallRollup.DIMENSIONS.index("status_class")
    success = StatusClass.SUCCESS.value
    coarse: dict[tuple, dict[str, Any]] = {}
    for dimensions, measures in deltas.items():
        key = (level.period_start(dimensions[0]), *(dimensions[i] for i in positions))
        row = coarse.get(key)
        if row is None:
            row = coarse[key] = dict.fromkeys(level.MEASURES, 0)
        for name, value in measures.items():
            row[name] += value
        if counts_errors and dimensions[status_at] != success:
            row["errors"] += measures["calls"]
    return coarse


def _hourly_positions(level: type[RollupMeasures]) -> list[int]:
    """Where each of ``level``'s dimensions but the period sits in a key with
    every dimension (an hourly row's, or a quarter-hour delta's)."""
    return [CallRollup.DIMENSIONS.index(name) for name in level.DIMENSIONS[1:]]


def _regrouped_measures(level: type[RollupMeasures]) -> list[str]:
    """SQL summing hourly rows into ``level``'s measure columns, in MEASURES order."""
    quote = connection.ops.quote_name
    expressions = []
    for name in level.MEASURES:
        if name == "errors":
            expressions.append(
                f"coalesce(sum({quote('calls')}) FILTER (WHERE {quote('status_class')} "
                f"<> '{StatusClass.SUCCESS.value}'), 0)"
            )
        else:
            expressions.append(f"sum({quote(CallRollup._meta.get_field(name).column)})")
    return expressions


def _upsert_rollups(level: type[RollupMeasures], deltas: Mapping[tuple, Mapping[str, Any]]) -> None:
    """Add deltas to ``level``'s rows with one INSERT … ON CONFLICT DO UPDATE."""
    if not deltas:
        return
    table = level._meta.db_table
    dimension_columns = _dimension_columns(level)
    fields = {f.column: f for f in level._meta.concrete_fields}
    measure_columns = [level._meta.get_field(name).column for name in level.MEASURES]
    columns = [*dimension_columns, *measure_columns]
    quote = connection.ops.quote_name
    updates = ", ".join(
        f"{quote(c)} = {quote(table)}.{quote(c)} + EXCLUDED.{quote(c)}" for c in measure_columns
    )
    conflict = ", ".join(quote(c) for c in dimension_columns)
    ordered = sorted(deltas.items(), key=lambda item: _sortable(item[0]))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(*_rollup_upsert_statement(level, deltas))
        return
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        params: list[Any] = []
        for dimensions, measures in chunk:
            values = [*dimensions, *(measures[name] for name in level.MEASURES)]
            params.extend(
                fields[column].get_db_prep_value(value, connection, prepared=False)
                for column, value in zip(columns, values, strict=True)
            )
        row_placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
        sql = (
            f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES {', '.join([row_placeholder] * len(chunk))} "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _rollup_upsert_statement(
    level: type[RollupMeasures], deltas: Mapping[tuple, Mapping[str, Any]]
) -> tuple[str, list[str]]:
    """``_upsert_rollups`` on PostgreSQL as (sql, params): one INSERT … SELECT
    FROM unnest(<one array per column>) ON CONFLICT DO UPDATE, rows in a fixed
    order. Each array is passed as one literal built from the values directly:
    adapting them value by value cost more than running the statement."""
    table = level._meta.db_table
    dimension_columns = _dimension_columns(level)
    fields = {f.column: f for f in level._meta.concrete_fields}
    measure_columns = [level._meta.get_field(name).column for name in level.MEASURES]
    columns = [*dimension_columns, *measure_columns]
    quote = connection.ops.quote_name
    updates = ", ".join(
        f"{quote(c)} = {quote(table)}.{quote(c)} + EXCLUDED.{quote(c)}" for c in measure_columns
    )
    conflict = ", ".join(quote(c) for c in dimension_columns)
    ordered = sorted(deltas.items(), key=lambda item: _sortable(item[0]))
    types = [fields[column].db_type(connection) for column in columns]
    values_by_column = zip(
        *(
            [*dimensions, *(measures[name] for name in level.MEASURES)]
            for dimensions, measures in ordered
        ),
        strict=True,
    )
    arrays = []
    for column, db_type, values in zip(columns, types, values_by_column, strict=True):
        field = fields[column]
        if isinstance(field, FixedDecimalField):
            arrays.append(_pg_int_array_literal(map(field.get_prep_value, values)))
        elif db_type in ("bigint", "integer", "smallint"):
            arrays.append(_pg_int_array_literal(values))
        else:
            arrays.append(_pg_array_literal(values))
    sql = _unnest_insert_sql(table, columns, types)
    return f"{sql} ON CONFLICT ({conflict}) DO UPDATE SET {updates}", arrays


# On PostgreSQL the quarter-hour deltas are copied into a temporary table, from
# which one statement per level adds them up, regrouped by date_trunc (as
# coarsen_deltas does in Python). COPY reads the rows far faster than unnest()
# parses one array per column.
_ROLLUP_STAGE = "ingest_rollup_quarter_deltas"
_STAGE_PERIOD = "quarter"


def _rollup_stage_columns() -> list[str]:
    return [
        _STAGE_PERIOD,
        *_dimension_columns(CallRollup)[1:],
        *(CallRollup._meta.get_field(name).column for name in CallRollup.MEASURES),
    ]


def _create_rollup_stage(cursor) -> None:
    """This session's staging table, shaped like the hourly rows with a quarter
    hour in the period's place (created on first use)."""
    quote = connection.ops.quote_name
    period, *rest = _rollup_stage_columns()
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {quote(_ROLLUP_STAGE)} ON COMMIT DELETE ROWS "
        f"AS SELECT {quote(CallRollup._meta.get_field('hour').column)} AS {quote(period)}, "
        f"{', '.join(quote(c) for c in rest)} "
        f"FROM {quote(CallRollup._meta.db_table)} WITH NO DATA"
    )


def _staged_rollup_statements(
    levels: Sequence[type[RollupMeasures]] = (), *, source: str = _ROLLUP_STAGE
) -> list[str]:
    """Add the quarter-hour deltas in ``source`` (a table shaped like the pending
    deltas) to every level (or to ``levels``).

    Each level's rows are written in a fixed order (ORDER BY its dimensions),
    finest level first, so writers lock rows in the same order and cannot
    deadlock each other."""
    quote = connection.ops.quote_name
    stage = quote(source)
    statements = []
    for level in levels or (CallRollup, *COARSE_ROLLUP_LEVELS, *FINE_ROLLUP_LEVELS):
        table = quote(level._meta.db_table)
        dimensions = _dimension_columns(level)
        level_measures = [level._meta.get_field(name).column for name in level.MEASURES]
        columns = ", ".join(quote(c) for c in [*dimensions, *level_measures])
        updates = ", ".join(
            f"{quote(c)} = {table}.{quote(c)} + EXCLUDED.{quote(c)}" for c in level_measures
        )
        conflict = ", ".join(quote(c) for c in dimensions)
        select = _regroup_select(level, stage, period_column=_STAGE_PERIOD)
        statements.append(
            f"INSERT INTO {table} ({columns}) {select} "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        )
    return statements


def _regroup_select(
    level: type[RollupMeasures], source: str, where: str = "", *, period_column: str = "hour"
) -> str:
    """SELECT rows with every dimension from ``source`` (the hourly table, or
    the staging table of quarter hours) regrouped into ``level``'s periods and
    dimensions, ordered by them."""
    quote = connection.ops.quote_name
    hourly = _dimension_columns(CallRollup)
    kept = [quote(hourly[i]) for i in _hourly_positions(level)]
    if level.GRID is QUARTER_HOUR:
        period = quote(period_column)  # the finest grain: already the period
    else:
        period = f"date_trunc('{level.GRID.name}', {quote(period_column)}, 'UTC')"
    expressions = [period, *kept, *_regrouped_measures(level)]
    positions = ", ".join(str(n) for n in range(1, len(kept) + 2))
    return (
        f"SELECT {', '.join(expressions)} FROM {source} "
        + (f"WHERE {where} " if where else "")
        + f"GROUP BY {positions} ORDER BY {positions}"
    )


def _sortable(dimensions: tuple) -> tuple:
    return tuple("" if value is None else value for value in dimensions)


def rebuild_rollups(*, start: datetime | None = None, end: datetime | None = None) -> int:
    """Recompute rollups from raw calls for whole hours in [start, end) (all by default).

    Returns the number of hourly rows written. Incremental upkeep (ingest and
    folding) must give the same rows; the test suite checks that it does.
    The levels kept from each call's own time (hourly, quarter-hourly) are summed
    from the raw calls: on PostgreSQL in one set-based INSERT … SELECT … GROUP BY
    (minutes for tens of millions of calls), elsewhere in Python. The coarser
    levels are then regrouped from the hourly rows.

    It holds the folders' lock, and on PostgreSQL reads one snapshot throughout:
    the pending deltas of the range are dropped (the raw calls they stand for
    are summed here), while a batch that commits meanwhile is neither read nor
    dropped, so folding adds it later, once.
    """
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return _rebuild_rollups(start, end)
    with transaction.atomic():
        return _rebuild_rollups(start, end)


def _rebuild_rollups(start: datetime | None, end: datetime | None) -> int:
    _take_fold_lock(wait=True)
    calls = CallRecord.objects.all()
    if start is not None:
        start = HOUR.floor(start)
        calls = calls.filter(created_at__gte=start)
    if end is not None:
        end = HOUR.floor(end)
        calls = calls.filter(created_at__lt=end)
    fine_levels = (CallRollup, *FINE_ROLLUP_LEVELS)
    for level in (PendingRollupDelta, *fine_levels):
        rows = level.objects.all()
        if start is not None:
            rows = rows.filter(**{f"{level.PERIOD_FIELD}__gte": start})
        if end is not None:
            rows = rows.filter(**{f"{level.PERIOD_FIELD}__lt": end})
        rows.delete()
    if connection.vendor == "postgresql":
        _rebuild_rollups_sql(start, end, fine_levels)
    else:
        _rebuild_rollups_python(calls, fine_levels)
    rebuild_coarse_rollups(start=start, end=end)
    hourly = CallRollup.objects.all()
    if start is not None:
        hourly = hourly.filter(hour__gte=start)
    if end is not None:
        hourly = hourly.filter(hour__lt=end)
    return hourly.count()


def _rebuild_rollups_python(
    calls: QuerySet[CallRecord], levels: Sequence[type[RollupMeasures]]
) -> None:
    batch: list[CallRecord] = []
    fields = ("created_at", "account_id", "api_key_id", "group_id", "model", "call_type")
    fields += ("status_code", "input_tokens", "output_tokens", "usage", "cost")
    fields += ("duration_ms", "ttft_ms")

    def add(batch: list[CallRecord]) -> None:
        deltas = rollup_deltas(batch)
        for level in levels:
            _upsert_rollups(level, coarsen_deltas(deltas, level))

    # Chunks in time order: each chunk's deltas are summed in Python, then upserted.
    for call in calls.order_by("created_at", "id").only(*fields).iterator(chunk_size=5000):
        batch.append(call)
        if len(batch) >= 20000:
            add(batch)
            batch = []
    if batch:
        add(batch)


@transaction.atomic
def rebuild_coarse_rollups(*, start: datetime | None = None, end: datetime | None = None) -> None:
    """Recompute the rows of every coarser level (days, months, daily summaries)
    for each period touching [start, end) from the hourly rows (all by default):
    each coarse row is the sum of its hours."""
    for level in COARSE_ROLLUP_LEVELS:
        first = level.period_start(start) if start is not None else None
        last = None
        if end is not None:
            last = level.period_start(end)
            if last != end:
                last = level.next_period(last)
        period = level.PERIOD_FIELD
        coarse, hourly = level.objects.all(), CallRollup.objects.all()
        if first is not None:
            coarse = coarse.filter(**{f"{period}__gte": first})
            hourly = hourly.filter(hour__gte=first)
        if last is not None:
            coarse = coarse.filter(**{f"{period}__lt": last})
            hourly = hourly.filter(hour__lt=last)
        coarse.delete()
        if connection.vendor == "postgresql":
            _regroup_rollups_sql(level, first, last)
            continue
        # Elsewhere (SQLite: small data) the hours are regrouped in Python.
        columns = [*CallRollup.DIMENSIONS, *CallRollup.MEASURES]
        columns = [
            f"{name}_id" if name in ("account", "api_key", "group") else name for name in columns
        ]
        deltas: dict[tuple, dict[str, Any]] = {}
        width = len(CallRollup.DIMENSIONS)
        for values in hourly.order_by().values_list(*columns).iterator(chunk_size=5000):
            deltas[values[:width]] = dict(zip(CallRollup.MEASURES, values[width:], strict=True))
        _upsert_rollups(level, coarsen_deltas(deltas, level))


def _regroup_rollups_sql(
    level: type[RollupMeasures], first: datetime | None, last: datetime | None
) -> None:
    quote = connection.ops.quote_name
    where, params = [], []
    if first is not None:
        where.append(f"{quote('hour')} >= %s")
        params.append(first)
    if last is not None:
        where.append(f"{quote('hour')} < %s")
        params.append(last)
    columns = [
        *_dimension_columns(level),
        *(level._meta.get_field(name).column for name in level.MEASURES),
    ]
    select = _regroup_select(level, quote(CallRollup._meta.db_table), " AND ".join(where))
    sql = (
        f"INSERT INTO {quote(level._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
        + select
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _rebuild_rollups_sql(
    start: datetime | None, end: datetime | None, levels: Sequence[type[RollupMeasures]]
) -> None:
    """``levels``' rows of [start, end) from raw calls (PostgreSQL): the calls'
    quarter-hour deltas summed into the staging table in one statement, then
    regrouped into each level as ingest does.

    Mirrors ``rollup_deltas``: the UTC quarter hour, the status class of the
    status code, generation time only for calls with output (floored at zero),
    and one histogram count per bucket, a duration falling in the bucket whose
    upper edge is the first edge above it (``bisect_right``).
    """
    calls_table = connection.ops.quote_name(CallRecord._meta.db_table)
    quote = connection.ops.quote_name
    status_class = (
        f"CASE WHEN status_code >= 500 THEN '{StatusClass.SERVER_ERROR.value}' "
        f"WHEN status_code >= 400 THEN '{StatusClass.CLIENT_ERROR.value}' "
        f"ELSE '{StatusClass.SUCCESS.value}' END"
    )
    histogram = []
    lower = None
    for upper in (*DURATION_BUCKET_EDGES_MS, None):
        conditions = []
        if lower is not None:
            conditions.append(f"duration_ms >= {int(lower)}")
        if upper is not None:
            conditions.append(f"duration_ms < {int(upper)}")
        histogram.append(f"count(*) FILTER (WHERE {' AND '.join(conditions)})")
        lower = upper
    measures = [
        "count(*)",
        "sum(input_tokens)",
        "sum(output_tokens)",
        "sum(input_tokens::bigint + output_tokens::bigint)",
        "sum(usage)",
        "sum(cost)",
        "sum(duration_ms)",
        "sum(CASE WHEN output_tokens > 0 "
        "THEN greatest(duration_ms::bigint - coalesce(ttft_ms, 0), 0) ELSE 0 END)",
        *histogram,
    ]
    dimensions = [
        "date_bin('15 minutes', created_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')",
        "account_id",
        "api_key_id",
        "group_id",
        "model",
        "call_type",
        status_class,
    ]
    where, params = [], []
    if start is not None:
        where.append("created_at >= %s")
        params.append(start)
    if end is not None:
        where.append("created_at < %s")
        params.append(end)
    sql = (
        f"INSERT INTO {quote(_ROLLUP_STAGE)} "
        f"({', '.join(quote(c) for c in _rollup_stage_columns())}) "
        f"SELECT {', '.join([*dimensions, *measures])} FROM {calls_table} "
        + (f"WHERE {' AND '.join(where)} " if where else "")
        + f"GROUP BY {', '.join(str(i) for i in range(1, len(dimensions) + 1))}"
    )
    with connection.cursor() as cursor:
        _create_rollup_stage(cursor)
        cursor.execute(sql, params)
        for statement in _staged_rollup_statements(levels):
            cursor.execute(statement)
        cursor.execute(f"DELETE FROM {quote(_ROLLUP_STAGE)}")


# --- pending deltas and folding ---------------------------------------------------
#
# Ingest appends what its calls add to the rollups (PendingRollupDelta) in the
# transaction that stores them, and nothing else: concurrent batches never
# wait on each other's rollup rows. The folder moves pending deltas into every
# level, one transaction per fold, one folder at a time (an advisory lock on
# PostgreSQL). By default each ingest request folds right after its commit when
# no other folder is at work; ``fold_rollups --loop`` does it in a process of
# its own (USAGELOGS_FOLD_AFTER_INGEST=0 then keeps ingest requests short).

# The fields of a pending row, in the order ingest writes them.
_DELTA_KEY_FIELDS = ("quarter", "account_id", "api_key_id", "group_id", "model", "call_type",
                     "status_class")  # fmt: skip
_PENDING_FIELDS = (*_DELTA_KEY_FIELDS, *PendingRollupDelta.MEASURES, "latest_at", "added_at")
# Serialises folders, and rebuilds with them (an arbitrary, fixed key).
_FOLD_LOCK = 7_205_118_002
# Deltas moved per fold: a backlog is worked off in transactions of bounded size.
FOLD_BATCH = 50_000


def _pending_columns() -> list[str]:
    return [PendingRollupDelta._meta.get_field(name).column for name in _PENDING_FIELDS]


def pending_rows(calls: Sequence[_ValidCall], *, added_at: datetime) -> list[dict[str, Any]]:
    """The pending deltas of new calls (``rollup_deltas``), each with its newest call's time."""
    latest: dict[tuple, datetime] = {}
    deltas = rollup_deltas(calls, latest=latest)
    rows = []
    for key, measures in deltas.items():
        row = dict(zip(_DELTA_KEY_FIELDS, key, strict=True))
        row.update(measures)
        row["latest_at"] = latest[key]
        row["added_at"] = added_at
        rows.append(row)
    return rows


@dataclass(frozen=True)
class FoldResult:
    deltas: int
    milliseconds: int


def fold_if_free() -> FoldResult | None:
    """Fold one batch of pending deltas unless another folder is at work."""
    return fold_pending_rollups(wait=False)


def fold_pending_rollups(*, wait: bool = True, batch: int = FOLD_BATCH) -> FoldResult | None:
    """Move up to ``batch`` pending deltas, oldest first, into every rollup level.

    One transaction: the deltas leave the pending table and reach every level
    together, or not at all (a folder killed midway loses and doubles nothing).
    Keys' ``last_used_at`` moves forward to their newest folded call. Returns
    None when ``wait`` is false and another folder holds the lock.
    """
    started = time.monotonic()
    with transaction.atomic():
        if not _take_fold_lock(wait=wait):
            return None
        if connection.vendor == "postgresql":
            folded = _fold_on_postgresql(batch)
        else:
            folded = _fold_elsewhere(batch)
        elapsed = int((time.monotonic() - started) * 1000)
        if folded:
            status, _ = FoldStatus.objects.get_or_create(pk=1)
            status.last_fold_at = timezone.now()
            status.last_fold_deltas = folded
            status.last_fold_ms = elapsed
            status.folds += 1
            status.deltas_folded += folded
            status.save()
    return FoldResult(deltas=folded, milliseconds=elapsed)


def _take_fold_lock(*, wait: bool) -> bool:
    """The folders' lock for this transaction (PostgreSQL; SQLite has one writer anyway)."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_FOLD_LOCK])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_FOLD_LOCK])
        return cursor.fetchone()[0]


_FOLD_STAGE = "fold_moved_deltas"


def _fold_on_postgresql(batch: int) -> int:
    quote = connection.ops.quote_name
    pending = quote(PendingRollupDelta._meta.db_table)
    stage = quote(_FOLD_STAGE)
    keys = quote(ApiKey._meta.db_table)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} (LIKE {pending}) ON COMMIT DELETE ROWS"
        )
        cursor.execute(
            f"WITH moved AS (DELETE FROM {pending} WHERE id IN "
            f"(SELECT id FROM {pending} ORDER BY id LIMIT %s) RETURNING *) "
            f"INSERT INTO {stage} SELECT * FROM moved",
            [batch],
        )
        folded = cursor.rowcount
        if not folded:
            return 0
        for statement in _staged_rollup_statements(source=_FOLD_STAGE):
            cursor.execute(statement)
        # Keys in id order, each moved only forward (batches arrive out of order).
        cursor.execute(
            f"WITH newest AS (SELECT api_key_id AS id, max(latest_at) AS moment FROM {stage} "
            f"GROUP BY 1), moved AS (SELECT k.id, newest.moment FROM {keys} k "
            "JOIN newest ON k.id = newest.id "
            "WHERE k.last_used_at IS NULL OR k.last_used_at < newest.moment "
            "ORDER BY k.id FOR NO KEY UPDATE OF k) "
            f"UPDATE {keys} SET last_used_at = moved.moment FROM moved WHERE {keys}.id = moved.id"
        )
        cursor.execute(f"DELETE FROM {stage}")
    return folded


def _fold_elsewhere(batch: int) -> int:
    rows = list(
        PendingRollupDelta.objects.order_by("id").values_list(
            "id", *(f"{name}_id" if name in ("account", "api_key", "group") else name
                    for name in PendingRollupDelta.DIMENSIONS),
            *PendingRollupDelta.MEASURES, "latest_at",
        )[:batch]
    )  # fmt: skip
    if not rows:
        return 0
    width = len(PendingRollupDelta.DIMENSIONS)
    deltas: dict[tuple, dict[str, Any]] = {}
    newest: dict[int, datetime] = {}
    for _, *values in rows:
        key, measures, latest_at = values[:width], values[width:-1], values[-1]
        row = deltas.setdefault(tuple(key), dict.fromkeys(PendingRollupDelta.MEASURES, 0))
        for name, value in zip(PendingRollupDelta.MEASURES, measures, strict=True):
            row[name] += value
        key_id = key[2]
        if key_id not in newest or latest_at > newest[key_id]:
            newest[key_id] = latest_at
    apply_rollup_deltas(deltas)
    for key_id, moment in sorted(newest.items()):
        ApiKey.objects.filter(pk=key_id).exclude(last_used_at__gte=moment).update(
            last_used_at=moment
        )
    PendingRollupDelta.objects.filter(pk__in=[row[0] for row in rows]).delete()
    return len(rows)


def fold_lag() -> dict[str, Any]:
    """How far behind folding is: the deltas waiting, the oldest one's age, the last fold."""
    waiting = PendingRollupDelta.objects.aggregate(count=Count("pk"), oldest=Min("added_at"))
    status = FoldStatus.objects.filter(pk=1).first()
    now = timezone.now()
    return {
        "pending_deltas": waiting["count"],
        "oldest_pending_seconds": (
            (now - waiting["oldest"]).total_seconds() if waiting["oldest"] else 0.0
        ),
        "last_fold_at": status.last_fold_at if status else None,
        "last_fold_deltas": status.last_fold_deltas if status else 0,
        "last_fold_ms": status.last_fold_ms if status else 0,
    }


# --- retention ------------------------------------------------------------------


@dataclass
class PruneResult:
    cutoff: datetime
    partitions_dropped: list[str] = field(default_factory=list)
    calls_deleted: int = 0


def prune_calls(
    *, older_than: timedelta, now: datetime | None = None, batch_size: int = 10_000
) -> PruneResult:
    """Remove calls (and their payloads) received before ``now - older_than``.

    On partitioned PostgreSQL, whole months before the cutoff's month are
    dropped as partitions (constant time whatever their size); what is left
    before the cutoff in its own month, and everything on other databases, is
    deleted in batches so no transaction grows without bound. Rollups, access
    records and the models an account used are kept: usage history outlives
    the raw calls. The run is recorded (``PruneRun``) so pages that count calls
    from rollups know which of them are gone.
    """
    cutoff = (now or timezone.now()) - older_than
    result = PruneResult(cutoff=cutoff)
    if is_partitioned():
        result.partitions_dropped = [p.name for p in drop_months_before(month_of(cutoff))]
    while True:
        ids = list(
            CallRecord.objects.filter(created_at__lt=cutoff)
            .order_by()
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        with transaction.atomic():
            CallPayload.objects.filter(call_id__in=ids).delete()
            CallRecord.objects.filter(id__in=ids).delete()
        result.calls_deleted += len(ids)
    PruneRun.objects.create(
        cutoff=cutoff,
        ran_at=timezone.now(),
        partitions_dropped=result.partitions_dropped,
        calls_deleted=result.calls_deleted,
    )
    return result
