"""Validating ingest records (docs/ingest-format.md) into ``ValidCall``.

``validate_usual`` takes the usual record in one pass at C-ish speed and
gives up, without saying why, at anything out of the ordinary;
``validate_record_fully`` then judges the record and words every problem by
field. The first must accept only what the second accepts, with the same
result (tests/logs/test_ingest_fast_path.py checks it).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from accounts.models import ApiKey
from logs.ingest.errors import Problems
from logs.ingest.fastjson import canonical_bytes
from logs.ingest.payloads import prepare_parts
from logs.ingest.redaction import (
    looks_like_credential,
    redact,
    redact_field,
    redact_upstream,
)
from logs.ingest.text import describe_value, is_label, printable, storable, unlabel, unstorable
from logs.models import (
    COST_DECIMAL_PLACES,
    USAGE_DECIMAL_PLACES,
    CallType,
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
        "cached_input_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "usage",
        "cost",
        "client_ip",
        "upstream",
        "end_user",
        "tags",
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
)


REQUEST_FIELDS = frozenset({"params", "body", "headers"})


MAX_END_USER_LENGTH = 128


MAX_TAGS = 20


MAX_TAG_LENGTH = 64


@dataclass(slots=True)
class ValidCall:
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
    # None until the price list gives it, for a record sent without a cost.
    cost: Decimal | None
    client_ip: str | None
    upstream: str
    parts: dict[str, Any]  # redacted, not yet capped
    # Each part's JSON text as stored (before the cap); None for an absent part.
    texts: dict[str, str | None]
    # Parts of input_tokens (cache reads, cache writes) and of output_tokens.
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    end_user: str = ""
    tags: list[str] = field(default_factory=list)  # distinct, in the order sent
    # How the cost was computed (logs.pricing), when the record had none.
    cost_basis: dict | None = None
    # What the prompt cache saved by the price list (logs.ingest.pricing); derived.
    cache_savings: Decimal = Decimal(0)
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
            # As sent: a cost computed from the price list is not part of the
            # record (a replay after a price change is still the same record).
            "cost": None
            if self.cost is None or self.cost_basis is not None
            else str(self.cost.normalize()),
            "client_ip": self.client_ip,
            "upstream": self.upstream,
            "parts": self.parts,
        }
        # Fields added later count only when set: a call sent before they existed
        # (or sent again without them) keeps the hash it was stored with.
        for name, value, default in (
            ("cached_input_tokens", self.cached_input_tokens, 0),
            ("cache_write_tokens", self.cache_write_tokens, 0),
            ("reasoning_tokens", self.reasoning_tokens, 0),
            ("end_user", self.end_user, ""),
            ("tags", self.tags, []),
        ):
            if value != default:
                canonical[name] = value
        # Same text as json.dumps(canonical, sort_keys=True, separators=(",", ":"),
        # default=str) (written by orjson where that is the same): stored hashes of
        # earlier calls must keep matching.
        return hashlib.sha256(canonical_bytes(canonical)).hexdigest()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(
    record: Mapping, name: str, problems: Problems, *, minimum: int, maximum: int
) -> int | None:
    value = record.get(name)
    if not _is_int(value):
        problems.add(name, f"must be a whole number, got {describe_value(value)}")
        return None
    if not minimum <= value <= maximum:
        problems.add(name, f"must be between {minimum} and {maximum}, got {value}")
        return None
    return value


def _text(
    record: Mapping, name: str, problems: Problems, *, max_length: int, required: bool
) -> str | None:
    value = record.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        problems.add(name, f"must be a string, got {describe_value(value)}")
        return None
    if problem := unstorable(value):
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
    record: Mapping, name: str, problems: Problems, *, places: int, below: Decimal
) -> Decimal | None:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        problems.add(
            name, f"must be a decimal number (string or number), got {describe_value(value)}"
        )
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


def parse_datetime_with_zone(value: Any) -> datetime:
    """ISO 8601 with a zone (``Z`` or an offset); raises ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO 8601 string, got {describe_value(value)}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"is not an ISO 8601 date and time: {value!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"must include a time zone (Z or +hh:mm): {value!r}")
    return moment


def validate_record(index: int, record: Any, now: datetime) -> tuple[ValidCall | None, list]:
    """The record as a ValidCall, or its problems."""
    call = validate_usual(index, record, now)
    if call is not None:
        return call, []
    return validate_record_fully(index, record, now)


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


def validate_usual(index: int, record: Any, now: datetime) -> ValidCall | None:
    """The usual record in one pass: every field of the type and range it must
    have. Returns None at the first thing out of the ordinary, without saying
    what: ``validate_record_fully`` then judges the record and words every
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
        or not storable(request_id)
        or not storable(key_prefix)
        or not storable(model)
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
        if len(group_name) > 64 or not storable(group_name):
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
        or not storable(endpoint)
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
    # Absent or null is 0; "or 0" would take false, "" and 0.0 for 0 too.
    cached_input_tokens = get("cached_input_tokens")
    if cached_input_tokens is None:
        cached_input_tokens = 0
    cache_write_tokens = get("cache_write_tokens")
    if cache_write_tokens is None:
        cache_write_tokens = 0
    reasoning_tokens = get("reasoning_tokens")
    if reasoning_tokens is None:
        reasoning_tokens = 0
    if (
        type(cached_input_tokens) is not int
        or type(cache_write_tokens) is not int
        or type(reasoning_tokens) is not int
        or cached_input_tokens < 0
        or cache_write_tokens < 0
        or reasoning_tokens < 0
        or cached_input_tokens + cache_write_tokens > input_tokens
        or reasoning_tokens > output_tokens
    ):
        return None
    end_user = get("end_user")
    if end_user is None:
        end_user = ""
    elif (
        type(end_user) is not str
        or not is_label(end_user)
        or len(end_user := end_user.strip()) > MAX_END_USER_LENGTH
    ):
        return None
    tags = _usual_tags(get("tags"))
    if tags is None:
        return None
    usage = _usual_decimal(get("usage"), USAGE_DECIMAL_PLACES, MAX_USAGE)
    sent_cost = get("cost")
    cost = None
    if sent_cost is not None:
        cost = _usual_decimal(sent_cost, COST_DECIMAL_PLACES, MAX_COST)
        if cost is None:
            return None
    if usage is None:
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
        or not storable(upstream)
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
        or not storable(error_reason)
    ):
        return None
    problems = Problems(index)
    if error and error_reason == "":
        error_reason = _reason_from_error(error, problems)
        if problems.errors:
            return None

    prepared = prepare_parts(
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
    return ValidCall(
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
        cached_input_tokens=cached_input_tokens,
        cache_write_tokens=cache_write_tokens,
        reasoning_tokens=reasoning_tokens,
        end_user=_redacted_end_user(end_user),
        tags=tags,
    )


def _usual_tags(value: Any) -> list[str] | None:
    """_tags for a value that passes, else None (without saying why)."""
    if value is None:
        return []
    if type(value) is not list:
        return None
    distinct: dict[str, None] = {}
    for item in value:
        if type(item) is not str or not is_label(item):
            return None
        tag = item.strip()
        if not 0 < len(tag) <= MAX_TAG_LENGTH or looks_like_credential(tag):
            return None
        distinct[tag] = None
    if len(distinct) > MAX_TAGS:
        return None
    return list(distinct)


def _tags(record: Mapping, problems: Problems) -> list[str]:
    """The record's tags: distinct, in the order first sent."""
    value = record.get("tags")
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add("tags", f"must be a list of strings, got {describe_value(value)}")
        return []
    distinct: dict[str, None] = {}
    for position, item in enumerate(value):
        name = f"tags[{position}]"
        if not isinstance(item, str):
            problems.add(name, f"must be a string, got {describe_value(item)}")
            continue
        if problem := unlabel(item):
            problems.add(name, problem)
            continue
        tag = item.strip()
        if not tag:
            problems.add(name, "must not be empty")
        elif len(tag) > MAX_TAG_LENGTH:
            problems.add(name, f"must be at most {MAX_TAG_LENGTH} characters, got {len(tag)}")
        elif looks_like_credential(tag):
            # A tag is what calls are filtered by: redacting it would blur it.
            problems.add(name, _CREDENTIAL_PROBLEM)
        else:
            distinct[tag] = None
    if len(distinct) > MAX_TAGS:
        problems.add("tags", f"must hold at most {MAX_TAGS} distinct tags, got {len(distinct)}")
    return list(distinct)


def _end_user(record: Mapping, problems: Problems) -> str:
    value = record.get("end_user")
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.add("end_user", f"must be a string, got {describe_value(value)}")
        return ""
    if problem := unlabel(value):
        problems.add("end_user", problem)
        return ""
    value = value.strip()
    if len(value) > MAX_END_USER_LENGTH:
        problems.add(
            "end_user",
            f"must be at most {MAX_END_USER_LENGTH} characters, got {len(value)}",
        )
        return ""
    return value


def _redacted_end_user(end_user: str) -> str:
    """The end user as stored: a gateway may copy a credential there (an email
    with a token, a session id), which is redacted like free text; redaction can
    lengthen a short secret, so the result is kept within the column."""
    if not end_user:
        return end_user
    redacted = redact_field(end_user)
    if len(redacted) > MAX_END_USER_LENGTH:
        redacted = redacted[: MAX_END_USER_LENGTH - 1] + "…"
    return redacted


# request_id and model are identities: the idempotency key, and what calls are grouped,
# filtered and priced by. Redacting a credential out of one would leave a value that
# no longer identifies anything (two calls whose ids held keys would both become
# "[REDACTED]": a replay, or a conflict); a credential there means the gateway sends
# the wrong field, which it should hear about.
_CREDENTIAL_PROBLEM = (
    "looks like a credential (an API key or token), which is never stored: send the "
    "gateway's own value for this field"
)


def validate_record_fully(index: int, record: Any, now: datetime) -> tuple[ValidCall | None, list]:
    problems = Problems(index)
    if not isinstance(record, Mapping):
        problems.add("", f"each record must be a JSON object, got {describe_value(record)}")
        return None, problems.errors

    for name in sorted(set(record) - TOP_LEVEL_FIELDS):
        problems.add(printable(name), "is not a known field")
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
        problems.add("stream", f"must be true or false, got {describe_value(stream)}")

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
    token_parts = {}
    for name in ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens"):
        token_parts[name] = 0
        if record.get(name) is not None:
            token_parts[name] = _int(record, name, problems, minimum=0, maximum=MAX_INT32)
    cached_input_tokens = token_parts["cached_input_tokens"]
    cache_write_tokens = token_parts["cache_write_tokens"]
    reasoning_tokens = token_parts["reasoning_tokens"]
    if input_tokens is not None and cached_input_tokens is not None:
        if cached_input_tokens > input_tokens:
            problems.add(
                "cached_input_tokens",
                f"is part of input_tokens, so must not exceed it ({input_tokens}), "
                f"got {cached_input_tokens}",
            )
        elif (
            cache_write_tokens is not None
            and cached_input_tokens + cache_write_tokens > input_tokens
        ):
            problems.add(
                "cache_write_tokens",
                "cached_input_tokens + cache_write_tokens are part of input_tokens, so must "
                f"not exceed it ({input_tokens}), got "
                f"{cached_input_tokens} + {cache_write_tokens}",
            )
    if (
        output_tokens is not None
        and reasoning_tokens is not None
        and reasoning_tokens > output_tokens
    ):
        problems.add(
            "reasoning_tokens",
            f"is part of output_tokens, so must not exceed it ({output_tokens}), "
            f"got {reasoning_tokens}",
        )
    end_user = _end_user(record, problems)
    tags = _tags(record, problems)
    usage = _decimal(record, "usage", problems, places=USAGE_DECIMAL_PLACES, below=MAX_USAGE)
    cost = None  # absent: computed from the price list (logs.pricing)
    if record.get("cost") is not None:
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
                    f"something on the machine that wrote it), got {describe_value(raw_ip)}",
                )
            else:
                problems.add(
                    "client_ip", f"must be an IPv4 or IPv6 address, got {describe_value(raw_ip)}"
                )
    upstream = _text(record, "upstream", problems, max_length=128, required=False)

    request = record.get("request")
    if request is None:
        request = {}
    if not isinstance(request, Mapping):
        problems.add("request", f"must be an object, got {describe_value(request)}")
        request = {}
    for name in sorted(set(request) - REQUEST_FIELDS):
        problems.add(
            f"request.{printable(name)}", "is not a known field (use params, body or headers)"
        )
    for name in ("params", "headers"):
        if request.get(name) is not None and not isinstance(request[name], Mapping):
            problems.add(
                f"request.{name}", f"must be an object, got {describe_value(request[name])}"
            )

    error = record.get("error")
    if error is not None and not isinstance(error, Mapping):
        problems.add("error", f"must be an object, got {describe_value(error)}")
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
    prepared = prepare_parts(parts, problems)
    if prepared is None:
        return None, problems.errors
    redacted_parts, texts = prepared

    return (
        ValidCall(
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
            cached_input_tokens=cached_input_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
            end_user=_redacted_end_user(end_user),
            tags=tags,
        ),
        [],
    )


def _reason_from_error(error: Mapping, problems: Problems) -> str:
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
    if problem := unstorable(text):
        problems.add(f"error.{source}", f"becomes the error reason, so it {problem}")
        return ""
    text = redact(text)
    return text if len(text) <= 255 else text[:254] + "…"
