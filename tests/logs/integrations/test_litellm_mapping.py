"""The LiteLLM mapping as a pure function: one StandardLoggingPayload → one
own-format record (docs/integrations/litellm.md), and the three log formats
of a body. No database: what the record becomes once stored is the ingest
tests' and the live tests' business."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from logs.ingest.errors import IngestError
from logs.integrations.litellm import NO_TEAM_ID, parse_body, to_record
from tests.factories import OMIT, litellm_key_hash, litellm_payload

START = datetime(2026, 12, 16, 14, 0, 0, 250000, tzinfo=UTC).timestamp()


def mapped(payload):
    one, problems = to_record(0, payload)
    assert problems == [], problems
    return one


def problems_of(payload) -> dict[str, str]:
    one, problems = to_record(3, payload)
    assert one is None
    assert {p.index for p in problems} == {3}
    return {p.field: p.message for p in problems}


def test_a_successful_call_becomes_a_record_of_the_own_format():
    one = mapped(litellm_payload(id="chatcmpl-1", startTime=START, endTime=START + 2.0004))
    record = one.record

    assert record["request_id"] == "chatcmpl-1"
    assert record["created_at"] == "2026-12-16T14:00:00.250000+00:00"
    assert record["duration_ms"] == 2000
    assert record["ttft_ms"] is None  # not streamed: the first token is the whole answer
    assert record["call_type"] == "chat"
    assert record["model"] == "gpt-4o-mini"
    assert record["endpoint"] == "/chat/completions"
    assert record["stream"] is False
    assert record["status_code"] == 200
    assert record["error_reason"] == ""
    assert (record["input_tokens"], record["output_tokens"]) == (120, 30)
    assert record["cost"] == "0.0000135"
    assert record["usage"] == "0"
    assert record["client_ip"] == "203.0.113.7"
    assert record["upstream"] == "openai/gpt-4o-mini https://api.openai.com #deployment-1"
    assert record["request"]["body"] == [{"role": "user", "content": "Hello there"}]
    assert record["request"]["params"]["temperature"] == 0.2
    assert record["response"]["choices"][0]["message"]["content"] == "Hi!"
    assert record["error"] is None
    assert one.identity.team_id == "team-alpha"
    assert one.identity.team_alias == "Alpha"
    assert one.identity.key_hash == litellm_key_hash("sk-alpha-prod")
    assert one.identity.key_alias == "alpha-prod"


def test_a_streamed_call_has_its_time_to_first_token():
    record = mapped(
        litellm_payload(
            stream=True, startTime=START, completionStartTime=START + 0.3804, endTime=START + 2.5
        )
    ).record
    assert record["stream"] is True
    assert (record["ttft_ms"], record["duration_ms"]) == (380, 2500)


def test_a_first_token_after_the_end_by_float_rounding_is_the_end():
    record = mapped(
        litellm_payload(
            stream=True, startTime=START, endTime=START + 1, completionStartTime=START + 1.0004
        )
    ).record
    assert record["ttft_ms"] == record["duration_ms"] == 1000


def test_a_failed_call_has_its_status_reason_and_detail():
    information = {
        "error_code": "429",
        "error_class": "RateLimitError",
        "error_message": "litellm.RateLimitError: RateLimitError: OpenAIException - Slow down\n…",
        "llm_provider": "openai",
    }
    record = mapped(
        litellm_payload(
            status="failure",
            error_information=information,
            error_str="litellm.RateLimitError: Slow down",
            response={},
            prompt_tokens=0,
            completion_tokens=0,
            response_cost=0.0,
        )
    ).record

    assert record["status_code"] == 429
    assert record["error_reason"] == (
        "litellm.RateLimitError: RateLimitError: OpenAIException - Slow down"
    )
    assert record["error"] == {**information, "error_str": "litellm.RateLimitError: Slow down"}
    assert record["response"] is None
    assert record["cost"] == "0.0"


@pytest.mark.parametrize(
    "error_code, status", [("500", 500), (404, 404), ("", 500), (None, 500), ("200", 500)]
)
def test_a_failure_without_an_http_error_code_is_a_500(error_code, status):
    payload = litellm_payload(
        status="failure", error_information={"error_code": error_code, "error_class": "APIError"}
    )
    record = mapped(payload).record
    assert record["status_code"] == status
    assert record["error_reason"] == "APIError"


def test_a_failure_with_only_an_error_string_gives_that_as_the_reason():
    record = mapped(litellm_payload(status="failure", error_str="Connection reset")).record
    assert (record["status_code"], record["error_reason"]) == (500, "Connection reset")
    assert record["error"] == {"error_str": "Connection reset"}


def test_a_long_error_message_is_cut_to_one_list_line():
    record = mapped(
        litellm_payload(status="failure", error_information={"error_message": "x" * 400})
    ).record
    assert record["error_reason"] == "x" * 254 + "…"


@pytest.mark.parametrize(
    "call_type, ours",
    [
        ("acompletion", "chat"),
        ("completion", "chat"),
        ("aresponses", "chat"),
        ("anthropic_messages", "chat"),
        ("atext_completion", "completion"),
        ("aembedding", "embedding"),
        ("aimage_generation", "image"),
        ("atranscription", "audio"),
        ("aspeech", "audio"),
        ("amoderation", "moderation"),
        ("arerank", "rerank"),
        ("afile_list", "other"),
        ("", "other"),
    ],
)
def test_call_types(call_type, ours):
    assert mapped(litellm_payload(call_type=call_type)).record["call_type"] == ours


def test_the_model_is_the_group_asked_for_and_the_deployment_is_the_upstream():
    record = mapped(
        litellm_payload(
            model_group="smart",
            model="azure/gpt-4o-prod",
            custom_llm_provider="azure",
            api_base="https://eu.openai.azure.com",
            model_id="",
        )
    ).record
    assert record["model"] == "smart"
    assert record["upstream"] == "azure/gpt-4o-prod https://eu.openai.azure.com"


def test_without_a_model_group_the_model_is_the_deployment():
    record = mapped(litellm_payload(model_group="", model="claude-sonnet-4")).record
    assert record["model"] == "claude-sonnet-4"


def test_a_long_upstream_is_cut():
    record = mapped(litellm_payload(api_base="https://" + "a" * 200 + ".example")).record
    assert len(record["upstream"]) == 128
    assert record["upstream"].endswith("…")


@pytest.mark.parametrize(
    "sent, stored",
    [
        (1.35e-05, "0.0000135"),
        (1.3500000000000002e-05, "0.00001350"),  # float noise past 8 places, rounded
        (2.5e-09, "0.00000000"),  # below the stored hundredth of a micro-dollar
        (1.5e-08, "0.00000002"),  # half to even
        (0, "0"),
        (None, "0"),  # LiteLLM could not price it
        ("0.1", "0.1"),
        (12.5, "12.5"),
        (-1, "-1"),  # passed on, for the own format to refuse (by this field's name)
    ],
)
def test_the_cost_is_the_decimal_sent(sent, stored):
    assert mapped(litellm_payload(response_cost=sent)).record["cost"] == stored


def test_fields_the_mapping_does_not_read_are_kept_with_the_request_parameters():
    record = mapped(
        litellm_payload(
            session_id="s-1",
            cache_hit=None,
            brand_new_field={"nested": 1, "gone": None},
            metadata={"spend_logs_metadata": {"ticket": "T-9"}},
        )
    ).record
    extras = record["request"]["params"]["litellm"]
    assert extras["session_id"] == "s-1"
    assert extras["trace_id"].startswith("trace-")
    assert extras["brand_new_field"] == {"nested": 1}  # nulls carry nothing
    assert "cache_hit" not in extras
    assert extras["metadata"]["spend_logs_metadata"] == {"ticket": "T-9"}
    assert extras["metadata"]["user_api_key_alias"] == "alpha-prod"
    assert "user_api_key_hash" not in extras["metadata"]
    # What has a column is not repeated.
    assert not {"id", "startTime", "messages", "response", "response_cost"} & set(extras)


def test_a_user_agent_becomes_the_request_header():
    record = mapped(litellm_payload(metadata={"user_agent": "openai-python/1.54"})).record
    assert record["request"]["headers"] == {"User-Agent": "openai-python/1.54"}


@pytest.mark.parametrize("team", [None, "", OMIT])
def test_a_call_without_a_team_is_the_no_team_accounts(team):
    one = mapped(litellm_payload(metadata={"user_api_key_team_id": team}))
    assert one.identity.team_id == NO_TEAM_ID


def test_mapping_is_deterministic():
    payload = litellm_payload()
    assert mapped(json.loads(json.dumps(payload))).record == mapped(payload).record


# --- problems, by LiteLLM's field names -------------------------------------------------


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"id": None}, "id"),
        ({"id": 12}, "id"),
        ({"startTime": "2026-12-16T14:00:00Z"}, "startTime"),
        ({"startTime": True}, "startTime"),
        ({"startTime": None}, "startTime"),
        ({"startTime": 1e300}, "startTime"),
        ({"endTime": START - 1, "startTime": START}, "endTime"),
        ({"endTime": 1e308, "startTime": -1e308}, "endTime"),
        (
            {"stream": True, "completionStartTime": START - 5, "startTime": START},
            "completionStartTime",
        ),
        ({"completionStartTime": "soon"}, "completionStartTime"),
        ({"stream": "yes"}, "stream"),
        ({"status": "ok"}, "status"),
        ({"status": None}, "status"),
        ({"prompt_tokens": 1.5}, "prompt_tokens"),
        ({"completion_tokens": "30"}, "completion_tokens"),
        ({"response_cost": "cheap"}, "response_cost"),
        ({"response_cost": float("nan")}, "response_cost"),
        ({"response_cost": [1]}, "response_cost"),
        ({"metadata": 5}, "metadata"),
        ({"model_parameters": [1]}, "model_parameters"),
        ({"error_information": "boom"}, "error_information"),
        ({"call_type": 7}, "call_type"),
        ({"model": 7}, "model"),
    ],
)
def test_a_bad_field_is_named(overrides, field):
    payload = litellm_payload()
    payload.update(overrides)
    assert field in problems_of(payload)


@pytest.mark.parametrize(
    "metadata, field",
    [
        ({"user_api_key_hash": None}, "metadata.user_api_key_hash"),
        ({"user_api_key_hash": OMIT}, "metadata.user_api_key_hash"),
        ({"user_api_key_hash": 5}, "metadata.user_api_key_hash"),
        ({"user_api_key_hash": "a\x00b"}, "metadata.user_api_key_hash"),
        ({"user_api_key_team_id": "t" * 129}, "metadata.user_api_key_team_id"),
        ({"user_api_key_team_id": ["t"]}, "metadata.user_api_key_team_id"),
        ({"user_api_key_alias": 3}, "metadata.user_api_key_alias"),
    ],
)
def test_a_bad_identity_is_named(metadata, field):
    assert field in problems_of(litellm_payload(metadata=metadata))


def test_a_payload_that_is_not_an_object_is_named_by_its_index():
    assert problems_of([1, 2]) == {"": "each payload must be a JSON object, got list [1, 2]"}


# --- the body: three log formats ---------------------------------------------------------


def test_json_array_single_and_ndjson_bodies():
    first, second = litellm_payload(), litellm_payload()
    assert parse_body(json.dumps([first, second]).encode()) == [first, second]
    assert parse_body(json.dumps(first).encode()) == [first]
    ndjson = f"{json.dumps(first)}\n\n{json.dumps(second)}\n".encode()
    assert parse_body(ndjson) == [first, second]


def test_a_bad_ndjson_line_is_named_by_its_record_and_line():
    body = f"{json.dumps(litellm_payload())}\n\n{{oops\n".encode()
    with pytest.raises(IngestError) as refused:
        parse_body(body)
    [error] = refused.value.errors
    assert error.index == 1
    assert error.message.startswith("line 3 is not valid JSON")


@pytest.mark.parametrize("body", [b"", b"{", b"42", b'"text"', b"null", b"\xff\xfe"])
def test_a_body_of_no_payload_is_refused_as_a_whole(body):
    with pytest.raises(IngestError) as refused:
        parse_body(body)
    assert [e.index for e in refused.value.errors] == [None]
