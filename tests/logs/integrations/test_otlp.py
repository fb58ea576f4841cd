"""GenAI spans → calls (logs.integrations.otlp.receive): what each attribute
becomes, which spans are ignored, and how a bad span is named. Spans are made
by the real OpenTelemetry SDK and encoded by its OTLP encoder."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from logs.integrations.otlp import receive
from logs.models import CallPayload, CallRecord
from tests.factories import (
    GenAiSpan,
    chat_span,
    genai_spans,
    otlp_request,
)

pytestmark = pytest.mark.django_db


def received(*specs: GenAiSpan, resource=None):
    return receive(otlp_request(genai_spans(*specs, resource=resource)))


def only_call() -> CallRecord:
    return CallRecord.objects.select_related("api_key", "group", "payload").get()


def payload(call: CallRecord, part: str):
    text = getattr(CallPayload.objects.get(call=call), part)
    return json.loads(text) if text else None


def test_a_chat_span_becomes_a_call(api_key, clock):
    start = clock.now - timedelta(minutes=3)
    spec = chat_span(
        api_key,
        **{
            "gen_ai.request.stream": True,
            "gen_ai.response.time_to_first_chunk": 0.25,
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"content": "Hi"}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": []}]),
            "client.address": "203.0.113.9",
            "custom.flavour": "vanilla",
        },
    )
    spec.start, spec.duration_ms = start, 1234.4
    outcome = received(spec)
    assert (outcome.calls, outcome.ignored, outcome.created, outcome.problems) == (1, 0, 1, [])
    call = only_call()
    assert call.request_id.startswith("otel-") and len(call.request_id) == 5 + 32 + 1 + 16
    assert call.created_at == start
    assert call.api_key == api_key and call.account_id == api_key.account_id
    assert call.group == api_key.group
    assert call.call_type == "chat"
    assert call.model == "gpt-4o-mini"
    assert call.endpoint == "api.openai.com:443"
    assert call.upstream == "openai"
    assert call.is_stream is True
    assert call.status_code == 200 and call.error_reason == ""
    assert call.duration_ms == 1234
    assert call.ttft_ms == 250
    assert (call.input_tokens, call.output_tokens, call.total_tokens) == (120, 30, 150)
    assert call.cost == Decimal("0.00012")
    assert call.usage == Decimal(0)
    assert call.client_ip == "203.0.113.9"
    params = payload(call, "request_params")
    assert params["temperature"] == 0.2 and params["max_tokens"] == 256
    assert params["model"] == "gpt-4o-mini"
    assert params["otel"]["attributes"] == {"custom.flavour": "vanilla"}
    assert params["otel"]["service.name"] == "support-bot"
    assert params["otel"]["kind"] == "client"
    assert payload(call, "request_body") == {
        "messages": [{"role": "user", "parts": [{"content": "Hi"}]}]
    }
    response = payload(call, "response")
    assert response["model"] == "gpt-4o-mini-2024-07-18"
    assert response["id"] == spec.attributes["gen_ai.response.id"]
    assert response["finish_reasons"] == ["stop"]
