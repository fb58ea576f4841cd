"""LiteLLM's ``generic_api`` logging callback → call records.

A LiteLLM proxy posts batches of its ``StandardLoggingPayload`` (one per call)
to any HTTP endpoint, as a JSON list (``log_format: json_array``, the
default), one JSON object per line (``ndjson``) or one object per request
(``single``), always as ``application/json``. Each payload is mapped here onto
a record of the own format (docs/ingest-format.md) and the batch goes through
``ingest_calls`` like every other: validation, redaction, size caps,
idempotency, all or nothing. The mapping is documented, as a table, in
docs/integrations/litellm.md; keep the two together.

The account is the LiteLLM team, the key is LiteLLM's key, known by its
SHA-256 (``metadata.user_api_key_hash``); both are found, or created on first
sight, through ``accounts.external`` (``USAGELOGS_INTEGRATIONS_CREATE_ACCOUNTS``
turns creation off). Problems are reported by the payload's index in the batch
and the LiteLLM field it comes from (``startTime``, ``metadata.user_api_key_hash``),
never by the own format's name for it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.external import ExternalKey, UnknownExternal, account_for, key_for
from accounts.models import Account, Source
from logs.ingest import fastjson
from logs.ingest.errors import IngestError, Problems, RecordError
from logs.ingest.records import MAX_COST
from logs.ingest.service import IngestResult, ingest_calls
from logs.ingest.text import describe_value, unstorable
from logs.models import COST_DECIMAL_PLACES, CallType

# --- the body ---------------------------------------------------------------------


def parse_body(raw: bytes) -> list[Any]:
    """The payloads of a body in any of the callback's three log formats.

    LiteLLM sends every format as ``application/json``, so the body says which
    it is: a JSON list (json_array), a JSON object (single), or else one JSON
    value per line (ndjson; blank lines are skipped). Raises IngestError when
    it is none of them, naming the line of an unreadable NDJSON record.
    """
    try:
        value = fastjson.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        whole = exc
    else:
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            return [value]
        raise IngestError(
            [
                RecordError(
                    None,
                    "",
                    "expected a LiteLLM payload (a JSON object), a JSON list of them or "
                    f"one per line (NDJSON), got {describe_value(value)}",
                )
            ]
        )
    lines = [(number, line) for number, line in enumerate(raw.split(b"\n"), 1) if line.strip()]
    if len(lines) < 2:
        raise IngestError([RecordError(None, "", f"the body is not valid JSON: {_why(whole)}")])
    payloads: list[Any] = []
    errors: list[RecordError] = []
    for index, (number, line) in enumerate(lines):
        try:
            payloads.append(fastjson.loads(line))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            errors.append(RecordError(index, "", f"line {number} is not valid JSON: {_why(exc)}"))
    if errors:
        raise IngestError(errors)
    return payloads


def _why(exc: Exception) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


# --- one payload ------------------------------------------------------------------

# LiteLLM's call types (litellm.types.utils.CallTypes, each also as "a…" for
# async) → ours. Chat-like generation APIs (Responses, Anthropic's Messages,
# Gemini's generateContent) are chat; anything else is "other".
_CALL_TYPES: dict[str, str] = {}
for _names, _ours in (
    (("completion", "responses", "anthropic_messages", "generate_content"), CallType.CHAT),
    (("generate_content_stream",), CallType.CHAT),
    (("text_completion",), CallType.COMPLETION),
    (("embedding",), CallType.EMBEDDING),
    (("image_generation", "image_edit", "image_variation"), CallType.IMAGE),
    (("transcription", "speech"), CallType.AUDIO),
    (("moderation",), CallType.MODERATION),
    (("rerank",), CallType.RERANK),
):
    for _name in _names:
        _CALL_TYPES[_name] = _CALL_TYPES[f"a{_name}"] = _ours.value


# The proxy's calls made with a key of no team go to one account of their own.
NO_TEAM_ID = ""
NO_TEAM_NAME = "LiteLLM keys without a team"

# Top-level payload fields the mapping reads into columns and parts; every other
# field (LiteLLM's trace and session ids, cache and cost details, fields of a
# newer LiteLLM) is kept with the request parameters, under "litellm".
_MAPPED_FIELDS = frozenset(
    {
        "id",
        "call_type",
        "stream",
        "status",
        "startTime",
        "endTime",
        "completionStartTime",
        "model",
        "model_group",
        "custom_llm_provider",
        "api_base",
        "model_id",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "response_cost",
        "messages",
        "model_parameters",
        "response",
        "error_information",
        "error_str",
        "requester_ip_address",
        "metadata",
    }
)
# Of the metadata: the key's hash identifies the key and is never shown.
_MAPPED_METADATA = frozenset({"user_api_key_hash"})
EXTRA_KEY = "litellm"


@dataclass(frozen=True, order=True)
class Identity:
    """Who made a call, in LiteLLM's terms: a team and a key of the proxy."""

    team_id: str
    team_alias: str
    key_hash: str
    key_alias: str


@dataclass
class Mapped:
    """A payload as an own-format record, its key still to be found (``api_key``
    is set once ``identity`` is resolved)."""

    index: int
    record: dict[str, Any]
    identity: Identity
    # Own-format field → the LiteLLM field it was read from, for this record's problems.
    origins: dict[str, str] = field(default_factory=dict)


# Where each own-format field comes from (docs/integrations/litellm.md).
ORIGINS: dict[str, str] = {
    "request_id": "id",
    "created_at": "startTime",
    "api_key": "metadata.user_api_key_hash",
    "call_type": "call_type",
    "model": "model_group",
    "endpoint": "metadata.user_api_key_request_route",
    "stream": "stream",
    "status_code": "error_information.error_code",
    "error_reason": "error_information.error_message",
    "duration_ms": "endTime",
    "ttft_ms": "completionStartTime",
    "input_tokens": "prompt_tokens",
    "output_tokens": "completion_tokens",
    "cost": "response_cost",
    "client_ip": "requester_ip_address",
    "upstream": "api_base",
    f"request.params.{EXTRA_KEY}": "",
    "request.params": "model_parameters",
    "request.body": "messages",
    "request.headers": "metadata.user_agent",
    "request": "messages",
    "response": "response",
    "error": "error_information",
}


def to_record(index: int, payload: Any) -> tuple[Mapped | None, list[RecordError]]:
    """One StandardLoggingPayload as a record of the own format, or the problems
    that keep it from being one (by LiteLLM's field names).

    Pure: reads nothing but ``payload``. Values the own format checks anyway
    (lengths, ranges, the time window) are passed on for ``ingest_calls`` to
    judge; only what must be read to build the record is checked here.
    """
    problems = Problems(index)
    if not isinstance(payload, Mapping):
        problems.add("", f"each payload must be a JSON object, got {describe_value(payload)}")
        return None, problems.errors
    read = _Reader(payload, problems)
    metadata = read.object("metadata")
    meta = _Reader(metadata, problems, prefix="metadata.")

    request_id = read.text("id", required=True)
    team_id = meta.identifier("user_api_key_team_id", required=False)
    team_alias = meta.text("user_api_key_team_alias")
    key_hash = meta.identifier("user_api_key_hash", required=True)
    key_alias = meta.text("user_api_key_alias")

    start = read.seconds("startTime", required=True)
    end = read.seconds("endTime", required=True)
    first_token = read.seconds("completionStartTime", required=False)
    stream = read.flag("stream")
    status = payload.get("status")
    if status not in ("success", "failure"):
        problems.add("status", f"must be 'success' or 'failure', got {describe_value(status)}")
    call_type = read.text("call_type")
    model_group = read.text("model_group")
    model = read.text("model")
    prompt_tokens = read.count("prompt_tokens")
    completion_tokens = read.count("completion_tokens")
    cost = _cost(payload.get("response_cost"), problems)
    error_information = read.object("error_information")
    error_str = read.text("error_str")
    error_code = error_information.get("error_code")
    error_class = _Reader(error_information, problems, prefix="error_information.").text(
        "error_class"
    )
    error_message = _Reader(error_information, problems, prefix="error_information.").text(
        "error_message"
    )
    client_ip = read.text("requester_ip_address") or meta.text("requester_ip_address")
    endpoint = meta.text("user_api_key_request_route")
    user_agent = meta.text("user_agent") or read.text("user_agent")
    provider = read.text("custom_llm_provider")
    api_base = read.text("api_base")
    model_id = read.text("model_id")
    model_parameters = payload.get("model_parameters")
    if model_parameters is not None and not isinstance(model_parameters, Mapping):
        problems.add(
            "model_parameters", f"must be an object, got {describe_value(model_parameters)}"
        )

    duration_ms = ttft_ms = None
    if start is not None and end is not None:
        duration_ms = _milliseconds(end - start)
        if duration_ms is None:
            problems.add("endTime", f"is too far from startTime ({start}): {end}")
        elif duration_ms < 0:
            problems.add("endTime", f"must not be before startTime ({start}), got {end}")
        elif stream and first_token is not None:
            ttft_ms = _milliseconds(first_token - start)
            if ttft_ms is None:
                problems.add(
                    "completionStartTime", f"is too far from startTime ({start}): {first_token}"
                )
            elif ttft_ms < 0:
                problems.add(
                    "completionStartTime",
                    f"must not be before startTime ({start}), got {first_token}",
                )
            else:
                # LiteLLM's clock readings are floats: a first token "after" the end is rounding.
                ttft_ms = min(ttft_ms, duration_ms)
    created_at = None
    if start is not None:
        try:
            created_at = datetime.fromtimestamp(start, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            problems.add("startTime", f"is not a time LiteLLM could have sent: {start}")

    if problems.errors:
        return None, problems.errors

    failed = status == "failure"
    record: dict[str, Any] = {
        "request_id": request_id,
        "created_at": created_at,
        "call_type": _CALL_TYPES.get(call_type, CallType.OTHER.value),
        "model": model_group or model,
        "endpoint": endpoint,
        "stream": stream,
        "status_code": _status_code(error_code) if failed else 200,
        "error_reason": _reason(error_class, error_message or error_str) if failed else "",
        "duration_ms": duration_ms,
        "ttft_ms": ttft_ms,
        "input_tokens": prompt_tokens,
        "output_tokens": completion_tokens,
        # LiteLLM budgets are in dollars, its spend is the cost: no quota of its own.
        "usage": "0",
        "cost": cost,
        "client_ip": client_ip or None,
        "upstream": _upstream(provider, model, api_base, model_id),
        "request": {
            "params": {**(model_parameters or {}), EXTRA_KEY: _extras(payload, metadata)},
            "headers": {"User-Agent": user_agent} if user_agent else None,
            "body": payload.get("messages"),
        },
        "response": payload.get("response") or None,
        "error": _error_detail(error_information, error_str) if failed else None,
    }
    origins = dict(ORIGINS)
    if not model_group:
        origins["model"] = "model"
    if not error_message:
        origins["error_reason"] = "error_str"
    identity = Identity(
        team_id=team_id or NO_TEAM_ID,
        team_alias=team_alias,
        key_hash=key_hash,
        key_alias=key_alias,
    )
    return Mapped(index=index, record=record, identity=identity, origins=origins), []


class _Reader:
    """Reads fields of one mapping, adding a problem (by dotted name) for each
    value of the wrong type. A missing or null optional field reads as empty."""

    def __init__(self, values: Mapping, problems: Problems, prefix: str = ""):
        self.values = values
        self.problems = problems
        self.prefix = prefix

    def _bad(self, name: str, expected: str, value: Any) -> None:
        problem = f"must be {expected}, got {describe_value(value)}"
        self.problems.add(f"{self.prefix}{name}", problem)

    def text(self, name: str, *, required: bool = False) -> str:
        value = self.values.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            self._bad(name, "a string", value)
            return ""
        return value.strip()

    def identifier(self, name: str, *, required: bool) -> str:
        """An id a Usage Logs account or key will be known by."""
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                self.problems.add(
                    f"{self.prefix}{name}",
                    "is required: the proxy sends it for every call made with a key",
                )
            return ""
        if not isinstance(value, str):
            self._bad(name, "a string", value)
            return ""
        if problem := unstorable(value):
            self.problems.add(f"{self.prefix}{name}", problem)
            return ""
        if len(value) > 128:
            self.problems.add(
                f"{self.prefix}{name}", f"must be at most 128 characters, got {len(value)}"
            )
            return ""
        return value

    def object(self, name: str) -> Mapping:
        value = self.values.get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self._bad(name, "an object", value)
            return {}
        return value

    def seconds(self, name: str, *, required: bool) -> float | None:
        """A time as LiteLLM sends it: seconds since the epoch."""
        value = self.values.get(name)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._bad(name, "a number (seconds since 1970-01-01T00:00:00Z)", value)
            return None
        if not math.isfinite(value):
            self._bad(name, "a finite number", value)
            return None
        return float(value)

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            self._bad(name, "true, false or null", value)
            return False
        return value

    def count(self, name: str) -> int:
        """A token count; the own format judges its range (and names it by this field)."""
        value = self.values.get(name)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            self._bad(name, "a whole number", value)
            return 0
        return value


def _milliseconds(seconds: float) -> int | None:
    """A difference of two readings in whole milliseconds (None: not a finite one)."""
    milliseconds = seconds * 1000
    return round(milliseconds) if math.isfinite(milliseconds) else None


def _cost(value: Any, problems: Problems) -> str:
    """``response_cost`` as the exact decimal sent, to the 8 places stored.

    LiteLLM computes it in binary floating point (1.5e-06 + 1.2e-05 is
    1.3500000000000002e-05): digits past the stored hundredth of a micro-dollar
    are that arithmetic's noise, rounded (half to even) rather than refused.
    """
    if value is None:
        return "0"  # LiteLLM could not price the call
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.add("response_cost", f"must be a number, got {describe_value(value)}")
        return "0"
    try:
        # str() of a float is its shortest repr: the decimal LiteLLM wrote.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        problems.add("response_cost", f"must be a number, got {describe_value(value)}")
        return "0"
    if not number.is_finite():
        problems.add("response_cost", "must be a finite number")
        return "0"
    if number.as_tuple().exponent < -COST_DECIMAL_PLACES and abs(number) < MAX_COST:
        number = number.quantize(Decimal(1).scaleb(-COST_DECIMAL_PLACES), ROUND_HALF_EVEN)
    # Out of range (negative, too large): as sent, for the own format to refuse.
    return format(number, "f")


def _status_code(error_code: Any) -> int:
    """LiteLLM's error code (a string such as "429") as an HTTP status; a
    failure without one that is an HTTP error status is a 500."""
    text = str(error_code).strip() if isinstance(error_code, str | int) else ""
    if text.isascii() and text.isdigit() and 400 <= int(text) <= 599:
        return int(text)
    return 500


def _reason(error_class: str, message: str) -> str:
    """One line for the list: the exception's class and message (LiteLLM's
    messages usually begin with the class already)."""
    first_line = next((line.strip() for line in message.splitlines() if line.strip()), "")
    if error_class and error_class not in first_line:
        first_line = f"{error_class}: {first_line}" if first_line else error_class
    return first_line if len(first_line) <= 255 else first_line[:254] + "…"


def _upstream(provider: str, model: str, api_base: str, model_id: str) -> str:
    """Which deployment served the call, in one line: provider/model, where it
    lives and the router's id of it (the whole values stay in the payload)."""
    if provider and model and not model.startswith(f"{provider}/"):
        deployment = f"{provider}/{model}"
    else:
        deployment = model or provider
    text = " ".join(
        part for part in (deployment, api_base, f"#{model_id}" if model_id else "") if part
    )
    return text if len(text) <= 128 else text[:127] + "…"


def _error_detail(error_information: Mapping, error_str: str) -> dict[str, Any] | None:
    detail = dict(error_information)
    if error_str and error_str != detail.get("error_message"):
        detail["error_str"] = error_str
    return detail or None


def _extras(payload: Mapping, metadata: Mapping) -> dict[str, Any]:
    """Everything the mapping does not read, without its empty (null) values."""
    extras = {name: value for name, value in payload.items() if name not in _MAPPED_FIELDS}
    rest = {name: value for name, value in metadata.items() if name not in _MAPPED_METADATA}
    if rest:
        extras["metadata"] = rest
    return _without_nulls(extras)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# --- a batch ----------------------------------------------------------------------


def ingest_litellm(payloads: Sequence[Any], *, create: bool | None = None) -> IngestResult:
    """Map a batch of payloads and ingest it, all or nothing.

    Accounts and keys are created on first sight when ``create`` (by default
    ``USAGELOGS_INTEGRATIONS_CREATE_ACCOUNTS``); they are created in the
    batch's transaction, so a refused batch leaves none behind either.
    """
    if create is None:
        create = settings.USAGELOGS_INTEGRATIONS_CREATE_ACCOUNTS
    limit = settings.USAGELOGS_INGEST_MAX_BATCH
    if not payloads:
        raise IngestError([RecordError(None, "", "the batch is empty")])
    if len(payloads) > limit:
        raise IngestError(
            [RecordError(None, "", f"at most {limit} payloads per batch, got {len(payloads)}")]
        )
    mapped: list[Mapped] = []
    errors: list[RecordError] = []
    for index, payload in enumerate(payloads):
        one, problems = to_record(index, payload)
        errors.extend(problems)
        if one is not None:
            mapped.append(one)
    if errors:
        raise IngestError(errors)

    with transaction.atomic():
        prefixes, errors = _resolve_keys(mapped, create=create)
        if errors:
            raise IngestError(errors)
        for one in mapped:
            one.record["api_key"] = prefixes[one.identity]
        try:
            return ingest_calls([one.record for one in mapped])
        except IngestError as exc:
            raise IngestError([_in_litellm_terms(e, mapped) for e in exc.errors]) from None


def _resolve_keys(
    mapped: list[Mapped], *, create: bool
) -> tuple[dict[Identity, str], list[RecordError]]:
    """The key prefix of each identity, or the problems of the records whose
    team or key is unknown (and may not be created). In a fixed order, so two
    batches creating the same accounts cannot deadlock."""
    accounts: dict[str, Account | str] = {}
    prefixes: dict[Identity, str] = {}
    refused: dict[Identity, RecordError] = {}
    for identity in sorted({one.identity for one in mapped}):
        account = accounts.get(identity.team_id)
        if account is None:
            account = accounts[identity.team_id] = _account(identity, create=create)
        if isinstance(account, str):
            refused[identity] = RecordError(None, "metadata.user_api_key_team_id", account)
            continue
        try:
            key = key_for(
                Source.LITELLM,
                account,
                ExternalKey(
                    external_id=identity.key_hash,
                    alias=identity.key_alias,
                    key_hash=identity.key_hash.lower(),
                ),
                create=create,
            )
        except UnknownExternal as exc:
            refused[identity] = RecordError(None, "metadata.user_api_key_hash", str(exc))
            continue
        prefixes[identity] = key.prefix
    errors = [
        RecordError(one.index, problem.field, problem.message)
        for one in mapped
        if (problem := refused.get(one.identity)) is not None
    ]
    return prefixes, errors


def _account(identity: Identity, *, create: bool) -> Account | str:
    """The account of a team (or of the keys without one), or why there is none."""
    try:
        if identity.team_id == NO_TEAM_ID:
            return account_for(Source.LITELLM, NO_TEAM_ID, name=NO_TEAM_NAME, create=create)
        return account_for(
            Source.LITELLM, identity.team_id, name=identity.team_alias, create=create
        )
    except UnknownExternal as exc:
        return str(exc)


def _in_litellm_terms(error: RecordError, mapped: list[Mapped]) -> RecordError:
    """A problem ``ingest_calls`` found, named by the LiteLLM field it comes from."""
    if error.index is None or not error.field or not 0 <= error.index < len(mapped):
        return error
    origins = mapped[error.index].origins
    return RecordError(error.index, _origin(error.field, origins), error.message)


def _origin(name: str, origins: Mapping[str, str]) -> str:
    for ours, theirs in origins.items():
        if name == ours:
            return theirs
        for joint in (".", "["):
            if name.startswith(ours + joint):
                rest = name[len(ours) + (joint == ".") :]
                return f"{theirs}.{rest}" if theirs and joint == "." else f"{theirs}{rest}"
    return name
