"""OpenTelemetry GenAI spans (OTLP/HTTP traces) as call records.

An exporter posts an ``ExportTraceServiceRequest`` (protobuf, or OTLP's JSON
mapping). Each span that describes a call to a model — one with
``gen_ai.operation.name`` naming a model operation — becomes one ingest record
(docs/ingest-format.md) and goes through ``ingest_calls`` with the others of
the request, all or nothing. Every other span is ignored and counted. The
mapping, attribute by attribute, is in docs/integrations/opentelemetry.md.

A problem is named by the span (its place in the request, its id and name) and
the OTLP field or attribute it comes from, never by the ingest record's field,
which the exporter's operator has never seen.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from logs.ingest.errors import IngestError, RecordError
from logs.ingest.service import IngestResult, ingest_calls
from logs.ingest.text import describe_value
from logs.models import COST_DECIMAL_PLACES, CallType

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
CONTENT_TYPES = (PROTOBUF, JSON)

# Where the account's key is named: a span attribute, else a resource attribute
# (set once per process with OTEL_RESOURCE_ATTRIBUTES). The value is the public
# prefix of a key of ours, as the JSON ingest's ``api_key``: never a secret.
KEY_ATTRIBUTE = "usagelogs.api_key"
GROUP_ATTRIBUTE = "usagelogs.group"
# A cost the span brings (exact decimal text, or a number); without one the call
# is priced from the price list by ingest (see _cost).
COST_ATTRIBUTES = ("usagelogs.cost", "gen_ai.usage.cost")

# gen_ai.operation.name → call type. Operations that are not a call to a model
# (an agent, a tool, a workflow, a retrieval) are ignored: their spans wrap the
# model calls, which have spans of their own, and an agent span's token counts
# repeat its children's — recording both would count them twice.
OPERATION_CALL_TYPES = {
    "chat": CallType.CHAT,
    "generate_content": CallType.CHAT,
    "text_completion": CallType.COMPLETION,
    "embeddings": CallType.EMBEDDING,
    # Not (yet) in the conventions, but spelt so by instrumentations of these APIs.
    "image_generation": CallType.IMAGE,
    "generate_image": CallType.IMAGE,
    "audio": CallType.AUDIO,
    "speech": CallType.AUDIO,
    "transcription": CallType.AUDIO,
    "translation": CallType.AUDIO,
    "moderation": CallType.MODERATION,
    "rerank": CallType.RERANK,
}
NOT_MODEL_CALLS = frozenset(
    {"create_agent", "invoke_agent", "execute_tool", "invoke_workflow", "retrieval"}
)

# The conventions' names first, then older spellings instrumentations still send.
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ_TOKENS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
)
CACHE_WRITE_TOKENS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
)
REASONING_TOKENS = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
END_USER = ("enduser.id", "user.id")
TAGS_ATTRIBUTE = "usagelogs.tags"

# error.type values that say which HTTP status the model's API answered: the
# exception classes of the OpenAI and Anthropic SDKs (and the many clients that
# copied their names), which instrumentations put in error.type.
ERROR_TYPE_STATUS = {
    "badrequesterror": 400,
    "authenticationerror": 401,
    "permissiondeniederror": 403,
    "notfounderror": 404,
    "conflicterror": 409,
    "unprocessableentityerror": 422,
    "ratelimiterror": 429,
    "internalservererror": 500,
    "apiconnectionerror": 502,
    "serviceunavailableerror": 503,
    "overloadederror": 529,
    "apitimeouterror": 504,
    "timeout": 504,
    "timeouterror": 504,
}

# The ingest record's fields, as the span spells them (for messages).
_RECORD_SOURCES = {
    "request_id": "trace_id/span_id",
    "created_at": "start_time_unix_nano",
    "duration_ms": "end_time_unix_nano",
    "api_key": KEY_ATTRIBUTE,
    "group": GROUP_ATTRIBUTE,
    "model": "gen_ai.request.model",
    "call_type": "gen_ai.operation.name",
    "endpoint": "server.address",
    "upstream": "gen_ai.provider.name",
    "stream": "gen_ai.request.stream",
    "ttft_ms": "gen_ai.response.time_to_first_chunk",
    "input_tokens": INPUT_TOKENS[0],
    "output_tokens": OUTPUT_TOKENS[0],
    "cost": COST_ATTRIBUTES[0],
    "cached_input_tokens": CACHE_READ_TOKENS[0],
    "cache_write_tokens": CACHE_WRITE_TOKENS[0],
    "reasoning_tokens": REASONING_TOKENS[0],
    "end_user": END_USER[0],
    "tags": TAGS_ATTRIBUTE,
    "error_reason": "error.type",
    "client_ip": "client.address",
    "request.params": "gen_ai.request.*",
    "request.body": "gen_ai.input.messages",
    "response": "gen_ai.output.messages",
    "error": "status.message",
}

# How many problems a refusal spells out in its message (all are in its details).
MESSAGE_PROBLEMS = 5


class MalformedRequest(ValueError):
    """The body is not an OTLP traces request at all (400, nothing read from it)."""


class UnsupportedEncoding(ValueError):
    """A Content-Encoding this receiver does not decode (415)."""


class BodyTooLarge(ValueError):
    """The body, or what it inflates to, is over the ingest limit (413)."""


@dataclass(frozen=True)
class SpanRef:
    """Where a span is: its place in the request, its ids and its name."""

    path: str
    trace_id: str
    span_id: str
    name: str

    def __str__(self) -> str:
        return f"span {self.span_id or '(no id)'} {self.name!r} ({self.path})"


@dataclass(frozen=True)
class SpanProblem:
    span: SpanRef | None  # None: the request as a whole
    field: str  # the OTLP field or span attribute
    message: str

    def __str__(self) -> str:
        where = "the request" if self.span is None else str(self.span)
        field = f", {self.field}" if self.field else ""
        return f"{where}{field}: {self.message}"


@dataclass
class Outcome:
    """What became of a request's spans."""

    calls: int = 0  # GenAI model calls found
    ignored: int = 0  # spans that are not
    created: int = 0
    already_present: int = 0
    problems: list[SpanProblem] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(self.problems)


# --- the wire ----------------------------------------------------------------------------


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """The body without its Content-Encoding (gzip, deflate or none), at most ``limit`` bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        attempts = [zlib.MAX_WBITS | 16]
    elif encoding == "deflate":
        # zlib-wrapped, as HTTP means it; some clients send raw deflate.
        attempts = [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    else:
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding!r} is not supported: send gzip, deflate or none"
        )
    for wbits in attempts:
        decompressor = zlib.decompressobj(wbits)
        try:
            data = decompressor.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(data) > limit:
            raise BodyTooLarge(f"the body inflates to over the limit of {limit} bytes")
        if decompressor.eof:
            return data
    raise MalformedRequest(f"the body is not valid {encoding} data")


def parse_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """The request, from protobuf or OTLP JSON; MalformedRequest if it is neither."""
    message = ExportTraceServiceRequest()
    if content_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise MalformedRequest(
                f"the body is not an OTLP protobuf traces request: {exc}"
            ) from None
        return message
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise MalformedRequest(f"the body is not valid JSON: {reason}") from None
    if not isinstance(document, dict):
        raise MalformedRequest(
            f"the body must be a JSON object (ExportTraceServiceRequest), got "
            f"{type(document).__name__}"
        )
    try:
        _hex_ids_to_base64(document)
        # OTLP/JSON: receivers ignore fields they do not know (a newer schema's).
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise MalformedRequest(f"the body is not an OTLP JSON traces request: {exc}") from None
    return message


_ID_FIELDS = {
    "traceId": 16,
    "trace_id": 16,
    "spanId": 8,
    "span_id": 8,
    "parentSpanId": 8,
    "parent_span_id": 8,
}


def _hex_ids_to_base64(document: dict) -> None:
    """OTLP/JSON spells trace and span ids in hex where protobuf's JSON mapping
    reads base64: turn them into what ``json_format`` reads, in place."""
    for resource_spans in _dicts(document, "resourceSpans", "resource_spans"):
        for scope_spans in _dicts(resource_spans, "scopeSpans", "scope_spans"):
            for span in _dicts(scope_spans, "spans"):
                _convert_ids(span)
                for link in _dicts(span, "links"):
                    _convert_ids(link)


def _dicts(container: dict, *names: str) -> Iterator[dict]:
    for name in names:
        items = container.get(name)
        if isinstance(items, list):
            yield from (item for item in items if isinstance(item, dict))


def _convert_ids(item: dict) -> None:
    for name, size in _ID_FIELDS.items():
        value = item.get(name)
        if not isinstance(value, str) or value == "":
            continue
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"{name} must be hex, got {value[:40]!r}") from None
        if len(raw) != size:
            raise ValueError(f"{name} must be {2 * size} hex digits, got {len(value)}")
        item[name] = base64.b64encode(raw).decode()


def encode(message, content_type: str) -> bytes:
    """A response message in the request's encoding (OTLP answers in kind)."""
    if content_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def success_response(outcome: Outcome) -> ExportTraceServiceResponse:
    """Full success, or a warning (``rejected_spans`` 0 and a message, as OTLP
    spells one) when some spans were not model calls and so were not recorded."""
    response = ExportTraceServiceResponse()
    if outcome.ignored:
        response.partial_success.rejected_spans = 0
        response.partial_success.error_message = (
            f"{outcome.ignored} span(s) were not GenAI model calls (no gen_ai.operation.name "
            f"naming a model operation) and were ignored; {outcome.calls} call(s) recorded "
            f"({outcome.created} new, {outcome.already_present} already present)"
        )
    return response


def failure_status(code: int, message: str, problems: list[SpanProblem] = ()) -> status_pb2.Status:
    """OTLP's body for a 4xx: a google.rpc.Status, with a BadRequest naming
    every bad span and field among its details."""
    status = status_pb2.Status(code=code, message=message)
    if problems:
        bad_request = error_details_pb2.BadRequest()
        for problem in problems:
            bad_request.field_violations.add(
                field=_violation_field(problem), description=problem.message
            )
        status.details.add().Pack(bad_request)
    return status


def _violation_field(problem: SpanProblem) -> str:
    if problem.span is None:
        return problem.field
    where = f"{problem.span.path} (span {problem.span.span_id or '(no id)'})"
    return f"{where}.{problem.field}" if problem.field else where


def refusal_status(outcome: Outcome) -> status_pb2.Status:
    problems = outcome.problems
    shown = "; ".join(str(p) for p in problems[:MESSAGE_PROBLEMS])
    hidden = len(problems) - MESSAGE_PROBLEMS
    more = f"; and {hidden} more (see the details)" if hidden > 0 else ""
    message = f"nothing of this request was written: {shown}{more}"
    return failure_status(code_pb2.INVALID_ARGUMENT, message, problems)


# --- spans to calls ----------------------------------------------------------------------


def receive(request: ExportTraceServiceRequest, *, now: datetime | None = None) -> Outcome:
    """Map the request's GenAI spans and ingest them, all or nothing."""
    outcome = Outcome()
    records: list[dict[str, Any]] = []
    refs: list[tuple[SpanRef, dict[str, str]]] = []
    for ref, span, resource in _spans(request):
        operation = _attributes(span.attributes).get("gen_ai.operation.name")
        if (
            operation is None
            or operation.WhichOneof("value") != "string_value"
            or operation.string_value.strip() in NOT_MODEL_CALLS | {""}
        ):
            outcome.ignored += 1
            continue
        outcome.calls += 1
        record, problems, spelt = span_record(ref, span, resource)
        outcome.problems.extend(problems)
        if record is not None:
            records.append(record)
            refs.append((ref, spelt))
    if outcome.problems or not records:
        # Nothing goes to ingest when a span is already known to be bad: the
        # request is all or nothing, and ingest would write the good ones.
        return outcome
    try:
        result: IngestResult = ingest_calls(records, now=now)
    except IngestError as exc:
        outcome.problems = [_span_problem(error, refs) for error in exc.errors]
        return outcome
    outcome.created = result.created
    outcome.already_present = result.duplicates
    return outcome


def _spans(request: ExportTraceServiceRequest) -> Iterator[tuple[SpanRef, Span, dict]]:
    for r, resource_spans in enumerate(request.resource_spans):
        resource = _attributes(resource_spans.resource.attributes)
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            for n, span in enumerate(scope_spans.spans):
                ref = SpanRef(
                    path=f"resource_spans[{r}].scope_spans[{s}].spans[{n}]",
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    name=span.name[:80],
                )
                yield ref, span, resource


def _attributes(key_values) -> dict[str, AnyValue]:
    return {kv.key: kv.value for kv in key_values}


def plain(value: AnyValue) -> Any:
    """An attribute value as JSON-like Python (bytes as base64 text)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "double_value" and not math.isfinite(value.double_value):
        return str(value.double_value)  # JSON has no NaN or infinity
    return getattr(value, kind)


class _Reader:
    """Typed reads of one span's attributes, each problem noted under the
    attribute's name; it remembers which attributes the record used."""

    def __init__(self, ref: SpanRef, attributes: dict[str, AnyValue]):
        self.ref = ref
        self.attributes = attributes
        self.used: set[str] = set()
        self.problems: list[SpanProblem] = []
        # The first name of a group of spellings → the one the span used.
        self.found: dict[str, str] = {}

    def problem(self, name: str, message: str) -> None:
        self.problems.append(SpanProblem(self.ref, name, message))

    def problems_of(self, *names: str) -> bool:
        return any(p.field in names for p in self.problems)

    def first(self, names: tuple[str, ...]) -> tuple[str, AnyValue | None]:
        """The first of ``names`` the span has (all of them count as read)."""
        self.used.update(names)
        for name in names:
            if name in self.attributes:
                self.found[names[0]] = name
                return name, self.attributes[name]
        return names[0], None

    def text(self, *names: str) -> str | None:
        name, value = self.first(names)
        if value is None:
            return None
        if value.WhichOneof("value") != "string_value":
            self.problem(name, f"must be a string, got {describe_value(plain(value))}")
            return None
        return value.string_value.strip() or None

    def count(self, *names: str) -> int | None:
        """A token count: a whole number ≥ 0 (an int, or a double with no fraction)."""
        name, value = self.first(names)
        if value is None:
            return None
        number: Any = plain(value)
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if not isinstance(number, int) or isinstance(number, bool):
            self.problem(name, f"must be a whole number, got {describe_value(number)}")
            return None
        if number < 0:
            self.problem(name, f"must be zero or more, got {number}")
            return None
        return number

    def seconds(self, *names: str) -> float | None:
        name, value = self.first(names)
        if value is None:
            return None
        number = plain(value)
        if not isinstance(number, int | float) or isinstance(number, bool):
            self.problem(name, f"must be a number of seconds, got {describe_value(number)}")
            return None
        if not 0 <= number <= 86_400:
            self.problem(name, f"must be from 0 to 86400 seconds, got {number}")
            return None
        return float(number)

    def flag(self, *names: str) -> bool | None:
        name, value = self.first(names)
        if value is None:
            return None
        if value.WhichOneof("value") != "bool_value":
            self.problem(name, f"must be true or false, got {describe_value(plain(value))}")
            return None
        return value.bool_value

    def json_like(self, *names: str) -> Any:
        """A structured attribute (messages): JSON text is read as JSON, other
        text kept as it is, a structured value as it is."""
        _, value = self.first(names)
        if value is None:
            return None
        data = plain(value)
        if isinstance(data, str):
            try:
                return json.loads(data, parse_constant=_no_constant)
            except (ValueError, RecursionError):
                return data
        return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def span_record(
    ref: SpanRef, span: Span, resource: dict[str, AnyValue]
) -> tuple[dict[str, Any] | None, list[SpanProblem], dict[str, str]]:
    """The ingest record of one GenAI span, or the problems that keep it from
    being one; and how the span spelt the attributes the record has (for
    ingest's problems, said in the span's words)."""
    read = _Reader(ref, _attributes(span.attributes))
    record: dict[str, Any] = {}

    if len(span.trace_id) != 16 or len(span.span_id) != 8 or not any(span.trace_id):
        read.problem("trace_id/span_id", "a span needs a 16-byte trace_id and an 8-byte span_id")
    else:
        # The span's identity: unique, and the same when an exporter retries.
        record["request_id"] = f"otel-{ref.trace_id}-{ref.span_id}"

    record["created_at"], record["duration_ms"] = _times(span, read)

    key = _ours(read, resource, KEY_ATTRIBUTE)
    if key is None and not read.problems_of(KEY_ATTRIBUTE):
        read.problem(
            KEY_ATTRIBUTE,
            "is required (as a span or resource attribute): the prefix of the Usage Logs "
            "API key the call is recorded under",
        )
    record["api_key"] = key
    group = _ours(read, resource, GROUP_ATTRIBUTE)
    if group is not None:
        record["group"] = group

    operation = read.text("gen_ai.operation.name") or ""
    record["call_type"] = OPERATION_CALL_TYPES.get(operation, CallType.OTHER).value
    requested = read.text("gen_ai.request.model")
    answered = read.text("gen_ai.response.model")
    record["model"] = requested or answered
    if record["model"] is None and not read.problems_of(
        "gen_ai.request.model", "gen_ai.response.model"
    ):
        read.problem("gen_ai.request.model", "is required (or gen_ai.response.model)")

    host = read.text("server.address")
    port = read.count("server.port")
    record["endpoint"] = f"{host}:{port}" if host and port else host or ""
    record["upstream"] = read.text(*PROVIDER) or ""
    stream = read.flag("gen_ai.request.stream")
    record["stream"] = bool(stream)

    record["input_tokens"] = read.count(*INPUT_TOKENS) or 0
    record["output_tokens"] = read.count(*OUTPUT_TOKENS) or 0
    details = _token_details(read)
    if (tags := _tags(read, resource)) is not None:
        details["tags"] = tags

    first_chunk = read.seconds("gen_ai.response.time_to_first_chunk")
    if first_chunk is not None:
        record["ttft_ms"] = round(first_chunk * 1000)

    status_code, reason, error = _status(span, read)
    record["status_code"] = status_code
    record["error_reason"] = reason
    if error:
        record["error"] = error

    client = read.text("client.address")
    if client is not None and _is_ip(client):
        record["client_ip"] = client

    record["usage"] = "0"  # quota is a gateway's notion; spans carry none
    cost = _cost(read)
    if cost is not None:
        record["cost"] = cost

    record["request"] = _request_part(read, requested)
    response = _response_part(read, answered)
    if response:
        record["response"] = response
    # Every attribute the record did not use is kept with the span's identity:
    # unknown fields are kept, not refused.
    record["request"]["params"]["otel"] = _span_context(span, ref, resource, read)
    record.update(details)

    if read.problems:
        return None, read.problems, read.found
    return record, [], read.found


def _times(span: Span, read: _Reader) -> tuple[str | None, int | None]:
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if start == 0:
        read.problem("start_time_unix_nano", "is required")
        return None, None
    if end == 0:
        read.problem("end_time_unix_nano", "is required (the span has not ended)")
        return None, None
    if end < start:
        read.problem("end_time_unix_nano", "is before start_time_unix_nano")
        return None, None
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=start // 1000)
    except OverflowError:
        read.problem("start_time_unix_nano", f"is not a time: {start}")
        return None, None
    # A whole millisecond: ingest keeps durations in ms.
    return moment.isoformat(), round((end - start) / 1_000_000)


def _status(span: Span, read: _Reader) -> tuple[int, str, dict[str, Any]]:
    """HTTP status, reason for the list and error detail of the call."""
    error_type = read.text("error.type")
    http_status = read.count("http.response.status_code")
    if http_status is not None and not 100 <= http_status <= 599:
        read.problem("http.response.status_code", f"must be 100 to 599, got {http_status}")
        http_status = None
    failed = span.status.code == Status.STATUS_CODE_ERROR or error_type is not None
    if not failed:
        return (http_status or 200), "", {}
    if http_status is None or http_status < 400:
        http_status = ERROR_TYPE_STATUS.get((error_type or "").lower().rsplit(".", 1)[-1])
        if http_status is None and error_type and error_type.isascii() and error_type.isdigit():
            http_status = int(error_type) if 400 <= int(error_type) <= 599 else None
    message = span.status.message.strip()
    error: dict[str, Any] = {}
    if error_type:
        error["type"] = error_type
    if message:
        error["message"] = message
    for event in span.events:
        if event.name == "exception":
            error["exception"] = {kv.key: plain(kv.value) for kv in event.attributes}
            break
    reason = error_type if error_type and error_type != "_OTHER" else message
    reason = next((line.strip() for line in reason.splitlines() if line.strip()), "error")
    if len(reason) > 255:
        reason = reason[:254] + "…"
    return (http_status or 500), reason, error


def _ours(read: _Reader, resource: dict[str, AnyValue], name: str) -> str | None:
    """One of our attributes: on the span, else on its resource."""
    if name in read.attributes or name not in resource:
        return read.text(name)
    on_resource = _Reader(read.ref, resource)
    value = on_resource.text(name)
    for problem in on_resource.problems:
        read.problem(name, f"(resource attribute) {problem.message}")
    return value


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "%" not in text


def _cost(read: _Reader) -> str | None:
    """The cost the span reports, as decimal text, or None when it has none:
    ingest then prices the call from the price list (``logs.ingest.pricing``)
    and refuses it, naming ``cost``, when no price is in force.
    """
    name, value = read.first(COST_ATTRIBUTES)
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value.strip()
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        number = value.double_value
        if not math.isfinite(number):
            read.problem(name, f"must be a finite number, got {number}")
            return None
        # A double is not exact anyway: rounded to the places a cost is kept in.
        places = Decimal(1).scaleb(-COST_DECIMAL_PLACES)
        try:
            return str(Decimal(repr(number)).quantize(places, ROUND_HALF_EVEN))
        except InvalidOperation:
            # Too many digits to keep at that many places: far beyond any cost.
            read.problem(name, f"cannot be stored as a cost (too large), got {number}")
            return None
    read.problem(name, f"must be a decimal number, got {describe_value(plain(value))}")
    return None


def _token_details(read: _Reader) -> dict[str, Any]:
    """Cached, cache-write and reasoning tokens (the conventions count them in
    input and output tokens, as calls do), the end user and tags."""
    details: dict[str, Any] = {}
    for field_name, names in (
        ("cached_input_tokens", CACHE_READ_TOKENS),
        ("cache_write_tokens", CACHE_WRITE_TOKENS),
        ("reasoning_tokens", REASONING_TOKENS),
    ):
        if (count := read.count(*names)) is not None:
            details[field_name] = count
    if (end_user := read.text(*END_USER)) is not None:
        details["end_user"] = end_user
    return details


def _tags(read: _Reader, resource: dict[str, AnyValue]) -> list[str] | None:
    """``usagelogs.tags`` (a string array, or one string), on the span, else its resource."""
    reader = read if TAGS_ATTRIBUTE in read.attributes else _Reader(read.ref, resource)
    read.used.add(TAGS_ATTRIBUTE)
    value = reader.attributes.get(TAGS_ATTRIBUTE)
    if value is None:
        return None
    tags = plain(value)
    if isinstance(tags, str):
        return [tags]
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        read.problem(TAGS_ATTRIBUTE, f"must be a string array, got {describe_value(tags)}")
        return None
    return tags


_REQUEST_PARAMS_PREFIX = "gen_ai.request."


def _request_part(read: _Reader, model: str | None) -> dict[str, Any]:
    params = {}
    for name, value in read.attributes.items():
        if name.startswith(_REQUEST_PARAMS_PREFIX) and name not in read.used:
            read.used.add(name)
            params[name.removeprefix(_REQUEST_PARAMS_PREFIX)] = plain(value)
    if model is not None:
        params["model"] = model
    part: dict[str, Any] = {"params": params}
    body = {
        key: data
        for key, name in (
            ("system_instructions", "gen_ai.system_instructions"),
            ("messages", "gen_ai.input.messages"),
            ("tools", "gen_ai.tool.definitions"),
        )
        if (data := read.json_like(name)) is not None
    }
    if body:
        part["body"] = body
    return part


def _response_part(read: _Reader, model: str | None) -> dict[str, Any]:
    part: dict[str, Any] = {}
    if (response_id := read.text("gen_ai.response.id")) is not None:
        part["id"] = response_id
    if model is not None:
        part["model"] = model
    _, reasons = read.first(("gen_ai.response.finish_reasons",))
    if reasons is not None:
        part["finish_reasons"] = plain(reasons)
    if (output_type := read.text("gen_ai.output.type")) is not None:
        part["output_type"] = output_type
    if (messages := read.json_like("gen_ai.output.messages")) is not None:
        part["messages"] = messages
    return part


_SPAN_KINDS = {
    Span.SPAN_KIND_INTERNAL: "internal",
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
}


def _span_context(
    span: Span, ref: SpanRef, resource: dict[str, AnyValue], read: _Reader
) -> dict[str, Any]:
    context: dict[str, Any] = {"trace_id": ref.trace_id, "span_id": ref.span_id, "name": span.name}
    if span.parent_span_id:
        context["parent_span_id"] = span.parent_span_id.hex()
    if span.kind in _SPAN_KINDS:
        context["kind"] = _SPAN_KINDS[span.kind]
    for name in ("service.name", "service.version", "deployment.environment.name"):
        if name in resource and resource[name].WhichOneof("value") == "string_value":
            context[name] = resource[name].string_value
    # Our own attributes are read above; the key's is never repeated here.
    read.used.update((KEY_ATTRIBUTE, GROUP_ATTRIBUTE))
    rest = {name: plain(value) for name, value in read.attributes.items() if name not in read.used}
    if rest:
        context["attributes"] = rest
    return context


def _span_problem(error: RecordError, refs: list[tuple[SpanRef, dict[str, str]]]) -> SpanProblem:
    """An ingest problem, said of the span and attribute it came from."""
    if error.index is None or error.index >= len(refs):
        return SpanProblem(None, "", error.message)
    span, spelt = refs[error.index]
    # "tags[0]", "request.body.messages[2]": the record's field, then the path in it.
    head = re.match(r"[a-z_]*", error.field).group()
    rest = error.field[len(head) :].lstrip(".")
    source = _RECORD_SOURCES.get(error.field) or _RECORD_SOURCES.get(head)
    if source is None:
        return SpanProblem(span, error.field, error.message)
    source = spelt.get(source, source)
    if rest and error.field not in _RECORD_SOURCES:
        source = f"{source} ({rest})"
    return SpanProblem(span, source, error.message)
