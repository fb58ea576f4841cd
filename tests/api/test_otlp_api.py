"""POST /api/v1/integrations/otlp/v1/traces as an exporter sees it: protobuf
and JSON in, the same encoding out (ExportTraceServiceResponse, or a
google.rpc.Status for a refusal), gzip, who may post, and garbage bodies."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from logs.models import CallPayload, CallRecord, HourlyCallRollup
from tests.api.helpers import client, service_user, session_client, token_client, token_for, walk
from tests.factories import (
    GenAiSpan,
    StaffUserFactory,
    chat_span,
    genai_spans,
    otlp_json,
    otlp_request,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/integrations/otlp/v1/traces"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@pytest.fixture
def exporter(ingest_token):
    return token_client(ingest_token)


def post(api, body: bytes | str, content_type: str = PROTOBUF, **headers):
    return api.generic("POST", URL, body, content_type=content_type, **headers)


def protobuf_of(*specs: GenAiSpan, resource=None) -> bytes:
    return otlp_request(genai_spans(*specs, resource=resource)).SerializeToString()


def json_of(*specs: GenAiSpan) -> str:
    return json.dumps(otlp_json(genai_spans(*specs)))


def answer(response) -> ExportTraceServiceResponse:
    assert response.status_code == 200, response.content[:500]
    message = ExportTraceServiceResponse()
    if response["Content-Type"] == JSON:
        json_format.Parse(response.content, message)
    else:
        assert response["Content-Type"] == PROTOBUF
        message.ParseFromString(response.content)
    return message


def status_of(response, status: int) -> status_pb2.Status:
    assert response.status_code == status, response.content[:500]
    message = status_pb2.Status()
    if response["Content-Type"] == JSON:
        json_format.Parse(response.content, message)
    else:
        assert response["Content-Type"] == PROTOBUF
        message.ParseFromString(response.content)
    return message


def violations(status: status_pb2.Status) -> list[tuple[str, str]]:
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


def stored() -> tuple[int, int, int]:
    return (
        CallRecord.objects.count(),
        CallPayload.objects.count(),
        HourlyCallRollup.objects.count(),
    )


# --- accepted ---------------------------------------------------------------------------------


def test_protobuf_spans_become_calls_the_api_lists(exporter, api_key):
    body = protobuf_of(chat_span(api_key), chat_span(api_key, **{"gen_ai.request.model": "o3"}))
    message = answer(post(exporter, body))
    assert not message.HasField("partial_success")  # full success
    rows = walk(session_client(StaffUserFactory(is_superuser=True)))
    assert sorted(row["model"] for row in rows) == ["gpt-4o-mini", "o3"]
    assert {row["key_prefix"] for row in rows} == {api_key.prefix}


def test_json_spans_become_the_same_calls(exporter, api_key):
    response = post(exporter, json_of(chat_span(api_key)), JSON)
    assert response["Content-Type"] == JSON
    assert not answer(response).HasField("partial_success")
    call = CallRecord.objects.get()
    assert (call.model, call.input_tokens, call.output_tokens) == ("gpt-4o-mini", 120, 30)
    assert len(call.request_id) == len("otel-") + 32 + 1 + 16


@pytest.mark.parametrize(
    "encoding, compress",
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("identity", lambda b: b)],
)
def test_compressed_bodies(exporter, api_key, encoding, compress):
    body = compress(protobuf_of(chat_span(api_key)))
    answer(post(exporter, body, HTTP_CONTENT_ENCODING=encoding))
    assert CallRecord.objects.count() == 1


def test_ignored_spans_are_counted_in_a_warning(exporter, api_key):
    body = protobuf_of(chat_span(api_key), GenAiSpan({"db.system.name": "postgresql"}))
    message = answer(post(exporter, body))
    assert message.partial_success.rejected_spans == 0  # OTLP's "warning"
    assert message.partial_success.error_message.startswith("1 span(s) were not GenAI")
    assert "1 call(s) recorded (1 new, 0 already present)" in message.partial_success.error_message
    assert CallRecord.objects.count() == 1


def test_an_empty_request_succeeds(exporter):
    assert not answer(post(exporter, b"")).HasField("partial_success")
    assert not answer(post(exporter, "{}", JSON)).HasField("partial_success")


def test_a_replay_changes_nothing(exporter, api_key):
    body = protobuf_of(chat_span(api_key), chat_span(api_key))
    answer(post(exporter, body))
    before = stored()
    answer(post(exporter, body))
    assert stored() == before


# --- refused ----------------------------------------------------------------------------------


def test_a_bad_span_refuses_the_request_naming_span_and_attribute(exporter, api_key):
    good = chat_span(api_key)
    bad = chat_span(api_key, **{"gen_ai.usage.input_tokens": "many"})
    spans = genai_spans(good, bad)
    status = status_of(post(exporter, otlp_request(spans).SerializeToString()), 400)
    assert status.code == code_pb2.INVALID_ARGUMENT
    span_id = format(spans[1].context.span_id, "016x")
    assert status.message.startswith("nothing of this request was written: span ")
    assert span_id in status.message and "gen_ai.usage.input_tokens" in status.message
    assert violations(status) == [
        (
            f"resource_spans[0].scope_spans[0].spans[1] (span {span_id}).gen_ai.usage.input_tokens",
            "must be a whole number, got str 'many'",
        )
    ]
    assert stored() == (0, 0, 0)


def test_a_refusal_answers_json_to_json(exporter, api_key):
    response = post(exporter, json_of(chat_span("sk-unknown12")), JSON)
    status = status_of(response, 400)
    assert response["Content-Type"] == JSON
    assert [field.rsplit(".", 1)[-1] for field, _ in violations(status)] == ["api_key"]
    assert "usagelogs.api_key" in violations(status)[0][0]


@pytest.mark.parametrize(
    "body, content_type, headers, status, says",
    [
        (b"\xff\xff\xff", PROTOBUF, {}, 400, "not an OTLP protobuf traces request"),
        (b"[1, 2]", JSON, {}, 400, "must be a JSON object"),
        (b"{", JSON, {}, 400, "not valid JSON"),
        (b'{"resourceSpans": 3}', JSON, {}, 400, "not an OTLP JSON traces request"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
            JSON,
            {},
            400,
            "traceId must be hex",
        ),
        (b"not gzip", PROTOBUF, {"HTTP_CONTENT_ENCODING": "gzip"}, 400, "not valid gzip"),
        (b"", PROTOBUF, {"HTTP_CONTENT_ENCODING": "br"}, 415, "'br' is not supported"),
        (b"", "text/plain", {}, 415, 'Unsupported media type "text/plain"'),
    ],
)
def test_malformed_requests_get_an_otlp_status(exporter, body, content_type, headers, status, says):
    response = post(exporter, body, content_type, **headers)
    message = status_of(response, status)
    assert says in message.message
    assert stored() == (0, 0, 0)


def test_a_body_over_the_limit(exporter, api_key, settings):
    body = protobuf_of(chat_span(api_key))
    settings.USAGELOGS_INGEST_MAX_BODY_BYTES = len(body) - 1
    assert "limit" in status_of(post(exporter, body), 413).message
    # A small gzip body that inflates past the limit is refused as well.
    settings.USAGELOGS_INGEST_MAX_BODY_BYTES = 1000
    bomb = gzip.compress(b"\x00" * 100_000)
    assert "inflates" in status_of(post(exporter, bomb, HTTP_CONTENT_ENCODING="gzip"), 413).message
    assert stored() == (0, 0, 0)


# --- who may post -------------------------------------------------------------------------------


def test_without_a_token_401_as_an_otlp_status(api_key):
    response = post(client(), protobuf_of(chat_span(api_key)))
    status = status_of(response, 401)
    assert status.code == code_pb2.UNAUTHENTICATED
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert stored() == (0, 0, 0)


def test_a_token_without_ingest_permission_is_403(api_key):
    reader = token_for(service_user(username="reader"), can_ingest=False)
    status = status_of(post(token_client(reader), protobuf_of(chat_span(api_key))), 403)
    assert status.code == code_pb2.PERMISSION_DENIED
    assert "ingest" in status.message
    assert stored() == (0, 0, 0)


def test_a_get_is_405(exporter):
    response = exporter.get(URL)
    assert status_of(response, 405).code == code_pb2.UNIMPLEMENTED


# --- garbage ------------------------------------------------------------------------------------


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=400))
def test_any_protobuf_body_is_answered_never_a_server_error(exporter, api_key, body):
    response = post(exporter, body)
    assert response.status_code in (200, 400), response.content[:300]
    assert stored() == (0, 0, 0)


JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
ATTRIBUTE_VALUES = st.one_of(
    st.builds(lambda v: {"stringValue": v}, st.text(max_size=30)),
    st.builds(lambda v: {"intValue": v}, st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda v: {"doubleValue": v}, st.floats()),
    st.builds(lambda v: {"boolValue": v}, st.booleans()),
    JSON_VALUES,
)
GENAI_NAMES = st.sampled_from(
    [
        "gen_ai.operation.name",
        "gen_ai.request.model",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.request.stream",
        "gen_ai.response.time_to_first_chunk",
        "error.type",
        "usagelogs.cost",
        "usagelogs.api_key",
        "usagelogs.group",
        "server.address",
        "http.response.status_code",
    ]
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    attributes=st.dictionaries(GENAI_NAMES, ATTRIBUTE_VALUES, max_size=8),
    times=st.tuples(JSON_VALUES, JSON_VALUES),
    status=JSON_VALUES,
    junk=JSON_VALUES,
)
def test_any_json_span_is_answered_never_a_server_error(
    exporter, api_key, attributes, times, status, junk
):
    """Spans shaped like OTLP with anything in the GenAI attributes, times and
    status (the key is never valid: nothing may be written)."""
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "chat",
        "startTimeUnixNano": times[0],
        "endTimeUnixNano": times[1],
        "attributes": [{"key": k, "value": v} for k, v in attributes.items()],
        "status": status,
        "junk": junk,
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    response = post(exporter, json.dumps(body), JSON)
    assert response.status_code in (200, 400), response.content[:300]
    assert stored() == (0, 0, 0)


SDK_SCALARS = st.one_of(
    st.text(max_size=30),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.booleans(),
)
SDK_VALUES = (
    SDK_SCALARS
    | st.lists(st.text(max_size=10), max_size=3)
    | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3)
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    attributes=st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "gen_ai.operation.name",
                    "gen_ai.request.model",
                    "gen_ai.response.model",
                    "gen_ai.usage.input_tokens",
                    "gen_ai.usage.output_tokens",
                    "gen_ai.usage.cache_read.input_tokens",
                    "gen_ai.usage.reasoning.output_tokens",
                    "gen_ai.request.stream",
                    "gen_ai.response.time_to_first_chunk",
                    "gen_ai.input.messages",
                    "error.type",
                    "http.response.status_code",
                    "server.port",
                    "client.address",
                    "enduser.id",
                    "usagelogs.cost",
                    "usagelogs.tags",
                ]
            ),
            SDK_VALUES,
            max_size=6,
        ),
        min_size=1,
        max_size=3,
    ),
    failed=st.booleans(),
)
def test_any_sdk_span_is_stored_whole_or_refused_whole(exporter, api_key, attributes, failed):
    """SDK spans with anything in their attributes, over a valid base span and key:
    a request is answered 200 with every GenAI span stored, or 400 with none."""
    CallRecord.objects.all().delete()
    specs = []
    for extra in attributes:
        spec = chat_span(api_key, **extra)
        spec.error = "boom" if failed else None
        specs.append(spec)
    response = post(exporter, protobuf_of(*specs))
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        assert violations(status_of(response, 400))
        assert CallRecord.objects.count() == 0
    else:
        message = answer(response)
        ignored = message.partial_success.error_message.split(" ", 1)[0]
        assert CallRecord.objects.count() == len(specs) - (int(ignored) if ignored else 0)


@pytest.mark.parametrize("accept", [PROTOBUF, JSON, "*/*", "text/html"])
def test_any_accept_header_is_answered_in_the_request_encoding(exporter, api_key, accept):
    response = post(exporter, protobuf_of(chat_span(api_key)), HTTP_ACCEPT=accept)
    assert response["Content-Type"] == PROTOBUF
    assert not answer(response).HasField("partial_success")
    assert CallRecord.objects.count() == 1
