"""GenAI spans → calls (logs.integrations.otlp.receive): what each attribute
becomes, which spans are ignored, and how a bad span is named. Spans are made
by the real OpenTelemetry SDK and encoded by its OTLP encoder."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import Group
from logs.integrations.otlp import receive
from logs.models import CallPayload, CallRecord
from tests.factories import (
    OMIT,
    ApiKeyFactory,
    GenAiSpan,
    GroupFactory,
    ModelPriceFactory,
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


def test_a_failed_span_keeps_its_status_reason_and_exception(api_key):
    spec = chat_span(
        api_key,
        **{
            "error.type": "RateLimitError",
            "gen_ai.usage.input_tokens": OMIT,
            "gen_ai.usage.output_tokens": OMIT,
            "gen_ai.response.id": OMIT,
            "usagelogs.cost": "0",
        },
    )
    spec.error = "Rate limit reached for gpt-4o-mini"
    outcome = received(spec)
    assert outcome.problems == [] and outcome.created == 1
    call = only_call()
    assert call.status_code == 429
    assert call.error_reason == "RateLimitError"
    assert (call.input_tokens, call.output_tokens) == (0, 0)
    error = payload(call, "error_detail")
    assert error["type"] == "RateLimitError"
    assert error["message"] == "Rate limit reached for gpt-4o-mini"
    assert error["exception"]["exception.type"] == "RuntimeError"


@pytest.mark.parametrize(
    "attributes, status, reason",
    [
        ({"http.response.status_code": 503}, 503, "boom"),
        ({"error.type": "openai.AuthenticationError"}, 401, "openai.AuthenticationError"),
        ({"error.type": "404"}, 404, "404"),
        ({"error.type": "_OTHER"}, 500, "boom"),
        ({}, 500, "boom"),
    ],
)
def test_the_status_code_of_a_failed_span(api_key, attributes, status, reason):
    spec = chat_span(api_key, **attributes)
    spec.error = "boom"
    assert received(spec).created == 1
    assert (only_call().status_code, only_call().error_reason) == (status, reason)


@pytest.mark.parametrize(
    "operation, call_type",
    [
        ("chat", "chat"),
        ("generate_content", "chat"),
        ("text_completion", "completion"),
        ("embeddings", "embedding"),
        ("image_generation", "image"),
        ("some_new_operation", "other"),
    ],
)
def test_operations_become_call_types(api_key, operation, call_type):
    assert received(chat_span(api_key, **{"gen_ai.operation.name": operation})).created == 1
    assert only_call().call_type == call_type


def test_spans_that_are_not_model_calls_are_ignored_and_counted(api_key):
    outcome = received(
        chat_span(api_key),
        GenAiSpan({"http.request.method": "GET"}, name="GET /tickets"),
        GenAiSpan({"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 900}),
        GenAiSpan({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}),
        GenAiSpan({"gen_ai.operation.name": 7}),
    )
    assert (outcome.calls, outcome.ignored, outcome.created) == (1, 4, 1)
    assert CallRecord.objects.count() == 1


def test_older_attribute_names_are_read(api_key):
    spec = chat_span(
        api_key,
        **{
            "gen_ai.provider.name": OMIT,
            "gen_ai.system": "anthropic",
            "gen_ai.usage.input_tokens": OMIT,
            "gen_ai.usage.output_tokens": OMIT,
            "gen_ai.usage.prompt_tokens": 70,
            "gen_ai.usage.completion_tokens": 7,
            "gen_ai.request.model": OMIT,
        },
    )
    assert received(spec).created == 1
    call = only_call()
    assert (call.upstream, call.input_tokens, call.output_tokens) == ("anthropic", 70, 7)
    assert call.model == "gpt-4o-mini-2024-07-18"  # the response's, when no request model


def test_the_key_and_group_may_be_resource_attributes(api_key):
    vip = GroupFactory(name="vip")
    other = ApiKeyFactory()
    resource = {"usagelogs.api_key": api_key.prefix, "usagelogs.group": "vip"}
    outcome = received(
        chat_span(None), chat_span(other, **{"usagelogs.group": "default"}), resource=resource
    )
    assert outcome.created == 2, outcome.problems
    calls = CallRecord.objects.order_by("api_key_id" if api_key.pk < other.pk else "-api_key_id")
    assert [(c.api_key_id, c.group_id) for c in calls] == [
        (api_key.pk, vip.pk),
        (other.pk, Group.objects.get(name="default").pk),
    ]


def test_a_replayed_request_changes_nothing(api_key):
    request = otlp_request(genai_spans(chat_span(api_key), chat_span(api_key)))
    assert receive(request).created == 2
    again = receive(request)
    assert (again.created, again.already_present, again.problems) == (0, 2, [])
    assert CallRecord.objects.count() == 2


# --- refused ---------------------------------------------------------------------------------


def refused(*specs: GenAiSpan, resource=None) -> list[tuple[str, str, str]]:
    """(span path, field, message) of every problem; checks nothing was written."""
    outcome = received(*specs, resource=resource)
    assert outcome.refused
    assert CallRecord.objects.count() == 0
    assert CallPayload.objects.count() == 0
    return [(p.span.path if p.span else "", p.field, p.message) for p in outcome.problems]


SPAN = "resource_spans[0].scope_spans[0].spans[{}]"


@pytest.mark.parametrize(
    "attributes, field, message",
    [
        ({"gen_ai.usage.input_tokens": "12"}, "gen_ai.usage.input_tokens", "whole number"),
        ({"gen_ai.usage.output_tokens": -1}, "gen_ai.usage.output_tokens", "zero or more"),
        ({"gen_ai.usage.output_tokens": 2.5}, "gen_ai.usage.output_tokens", "whole number"),
        (
            {"gen_ai.usage.cache_read.input_tokens": "x"},
            "gen_ai.usage.cache_read.input_tokens",
            "whole number",
        ),
        ({"gen_ai.request.stream": "yes"}, "gen_ai.request.stream", "true or false"),
        (
            {"gen_ai.request.model": OMIT, "gen_ai.response.model": OMIT},
            "gen_ai.request.model",
            "is required",
        ),
        ({"gen_ai.request.model": 4}, "gen_ai.request.model", "must be a string"),
        ({"usagelogs.api_key": OMIT}, "usagelogs.api_key", "is required"),
        ({"usagelogs.api_key": "sk-nosuchkey"}, "usagelogs.api_key", "no key with prefix"),
        ({"usagelogs.group": "gold"}, "usagelogs.group", "no group named"),
        ({"usagelogs.cost": "abc"}, "usagelogs.cost", "decimal number"),
        ({"usagelogs.cost": "-1"}, "usagelogs.cost", "zero or more"),
        ({"usagelogs.cost": True}, "usagelogs.cost", "decimal number"),
        ({"usagelogs.cost": 1e300}, "usagelogs.cost", "cannot be stored"),
        (
            {"gen_ai.response.time_to_first_chunk": 9.0},
            "gen_ai.response.time_to_first_chunk",
            "must not exceed",
        ),
        ({"http.response.status_code": 999}, "http.response.status_code", "100 to 599"),
        ({"gen_ai.usage.input_tokens": 2**40}, "gen_ai.usage.input_tokens", "between"),
    ],
)
def test_a_bad_span_is_named_with_its_attribute(api_key, attributes, field, message):
    good = chat_span(api_key)
    bad = chat_span(api_key, **attributes)
    problems = refused(good, bad)
    assert [(path, name) for path, name, _ in problems] == [(SPAN.format(1), field)]
    assert message in problems[0][2]


def test_a_span_from_the_future_or_ending_before_it_starts(api_key, clock):
    future = chat_span(api_key)
    future.start = clock.now + timedelta(hours=1)
    backwards = chat_span(api_key)
    backwards.duration_ms = -5
    problems = refused(future, backwards)
    assert [(path, name) for path, name, _ in problems] == [
        (SPAN.format(1), "end_time_unix_nano"),  # found while mapping: reported first
    ]
    problems = refused(future)
    assert [(path, name) for path, name, _ in problems] == [
        (SPAN.format(0), "start_time_unix_nano")
    ]
    assert "in the future" in problems[0][2]


def test_every_bad_span_is_named(api_key):
    problems = refused(
        chat_span(api_key, **{"gen_ai.usage.input_tokens": "1"}),
        chat_span(api_key),
        chat_span(api_key, **{"gen_ai.request.stream": 1, "gen_ai.usage.output_tokens": -2}),
    )
    assert [(path, name) for path, name, _ in problems] == [
        (SPAN.format(0), "gen_ai.usage.input_tokens"),
        (SPAN.format(2), "gen_ai.request.stream"),
        (SPAN.format(2), "gen_ai.usage.output_tokens"),
    ]


def test_a_span_without_a_cost_and_no_price_is_refused_naming_the_cost(api_key):
    problems = refused(chat_span(api_key, **{"usagelogs.cost": OMIT}))
    assert [name for _, name, _ in problems] == ["usagelogs.cost"]
    assert "no price for model 'gpt-4o-mini'" in problems[0][2]


def test_a_span_without_a_cost_is_priced_from_the_price_list(api_key):
    ModelPriceFactory(model="gpt-4o-mini", input_per_million="2.50", output_per_million="10")

    outcome = received(chat_span(api_key, **{"usagelogs.cost": OMIT}))

    assert (outcome.created, outcome.problems) == (1, [])
    call = only_call()
    # 120 input tokens at $2.50 and 30 output tokens at $10 per million, group ratio 1.
    assert call.cost == Decimal("0.0006")
    assert call.cost_basis is not None


def test_a_full_key_is_refused_without_being_kept(api_key):
    problems = refused(chat_span(api_key.secret))
    assert [name for _, name, _ in problems] == ["usagelogs.api_key"]
    assert api_key.secret not in repr(problems)


# --- token accounting, end user, tags ---------------------------------------------------------


def test_cached_and_reasoning_tokens_end_user_and_tags(api_key):
    spec = chat_span(
        api_key,
        **{
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.cache_read.input_tokens": 600,
            "gen_ai.usage.cache_creation.input_tokens": 100,
            "gen_ai.usage.reasoning.output_tokens": 200,
            "enduser.id": "customer-4711",
            "usagelogs.tags": ("support-bot", "prod"),
        },
    )
    assert received(spec).created == 1
    call = only_call()
    assert (call.input_tokens, call.cached_input_tokens, call.cache_write_tokens) == (
        1000,
        600,
        100,
    )
    assert (call.output_tokens, call.reasoning_tokens) == (300, 200)
    assert call.end_user == "customer-4711"
    assert call.tags == ["support-bot", "prod"]


def test_older_cache_spellings_and_tags_on_the_resource(api_key):
    spec = chat_span(
        api_key,
        **{
            "gen_ai.usage.cache_read_input_tokens": 20,
            "gen_ai.usage.cache_creation_input_tokens": 10,
            "user.id": "u-1",
        },
    )
    assert received(spec, resource={"usagelogs.tags": ("batch",)}).created == 1
    call = only_call()
    assert (call.cached_input_tokens, call.cache_write_tokens, call.end_user) == (20, 10, "u-1")
    assert call.tags == ["batch"]
    assert CallRecord.objects.filter(tags__has_tag="batch").count() == 1


def test_more_cached_tokens_than_input_is_named_as_the_span_spelt_it(api_key):
    problems = refused(chat_span(api_key, **{"gen_ai.usage.cache_read_input_tokens": 500}))
    assert [name for _, name, _ in problems] == ["gen_ai.usage.cache_read_input_tokens"]
    assert "input_tokens" in problems[0][2]


@pytest.mark.parametrize(
    "attributes, field",
    [
        ({"gen_ai.usage.reasoning.output_tokens": 31}, "gen_ai.usage.reasoning.output_tokens"),
        ({"usagelogs.tags": (1, 2)}, "usagelogs.tags"),
        ({"usagelogs.tags": ("ok", "")}, "usagelogs.tags ([1])"),
        ({"enduser.id": "a\x07b"}, "enduser.id"),
    ],
)
def test_bad_token_details_end_user_and_tags(api_key, attributes, field):
    problems = refused(chat_span(api_key, **attributes))
    assert [name for _, name, _ in problems] == [field]
