"""Demo data: reproducible from a seed, realistic in shape, and written only
through the ingest service (so redaction holds for it too).

Generator tests work on plain dicts and need no database; the command tests
seed small amounts to stay fast.
"""

import re
import statistics
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from accounts.models import Account, ApiKey, Group, Membership
from logs.demo import (
    ACCOUNTS,
    GROUPS,
    MODELS,
    USAGE_UNITS_PER_USD,
    demo_keys,
    generate_calls,
    load_trace,
)
from logs.ingest.redaction import API_KEY_RE, REDACTED
from logs.models import CallPayload, CallRecord, ModelPrice

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SEED = 7


@pytest.fixture(scope="module")
def calls() -> list[dict]:
    return generate_calls(SEED, 2000, NOW)


def successful(records: list[dict]) -> list[dict]:
    return [r for r in records if r["status_code"] < 400]


def parse(created_at: str) -> datetime:
    return datetime.fromisoformat(created_at)


# --- the generator -------------------------------------------------------------------


def test_the_same_seed_gives_the_same_records():
    assert generate_calls(3, 300, NOW) == generate_calls(3, 300, NOW)


def test_different_seeds_give_different_records_and_keys():
    first, second = generate_calls(3, 300, NOW), generate_calls(4, 300, NOW)

    assert [r["input_tokens"] for r in first] != [r["input_tokens"] for r in second]
    assert {r["api_key"] for r in first}.isdisjoint({r["api_key"] for r in second})
    assert {r["request_id"] for r in first}.isdisjoint({r["request_id"] for r in second})


def test_a_later_run_gets_new_request_ids():
    # Otherwise a second seed_demo run would clash with the first one's calls.
    later = generate_calls(SEED, 50, NOW + timedelta(minutes=1))
    earlier = generate_calls(SEED, 50, NOW)
    assert {r["request_id"] for r in later}.isdisjoint({r["request_id"] for r in earlier})


def test_times_are_utc_in_the_period_and_never_in_the_future(calls):
    assert all(r["created_at"].endswith("Z") for r in calls)
    moments = [parse(r["created_at"]) for r in calls]
    assert moments == sorted(moments)
    assert NOW - timedelta(days=30) <= moments[0]
    assert moments[-1] < NOW
    assert len({m.date() for m in moments}) >= 28


def test_working_hours_are_busier_than_nights():
    acme_backend = demo_keys(SEED)[0]
    assert (acme_backend.account.slug, acme_backend.spec.name) == ("acme-robotics", "prod-backend")
    records = generate_calls(SEED, 5000, NOW)
    offset = timedelta(hours=acme_backend.account.utc_offset)
    local_hours = [
        (parse(r["created_at"]) + offset).hour
        for r in records
        if r["api_key"] == acme_backend.prefix
    ]
    office = sum(1 for h in local_hours if 9 <= h < 17)
    night = sum(1 for h in local_hours if 1 <= h < 6)
    assert office > 4 * night  # eight office hours against five night hours


def test_about_two_percent_errors_with_real_reasons(calls):
    errors = [r for r in calls if r["status_code"] >= 400]
    assert 0.01 <= len(errors) / len(calls) <= 0.035
    assert {r["status_code"] for r in errors} >= {429, 400}
    for record in errors:
        assert set(record["error"]) >= {"type", "message", "code"}
        assert record["error_reason"].startswith(record["error"]["code"])
        assert record["cost"] == record["usage"] == "0"
        assert record["response"] is None


def test_call_types_and_streaming(calls):
    by_type = {}
    for record in calls:
        by_type[record["call_type"]] = by_type.get(record["call_type"], 0) + 1
    assert {"chat", "completion", "embedding", "image"} <= set(by_type)
    assert max(by_type, key=by_type.get) == "chat"
    chats = [r for r in calls if r["call_type"] == "chat"]
    assert 0.5 < sum(r["stream"] for r in chats) / len(chats) < 0.9
    assert not any(r["stream"] for r in calls if r["call_type"] in ("embedding", "image"))
    for record in successful(calls):
        assert (record["ttft_ms"] is not None) == record["stream"]
        if record["ttft_ms"] is not None:
            assert 0 < record["ttft_ms"] <= record["duration_ms"]


def test_token_counts_come_from_the_trace(calls):
    conv = set(load_trace("conv").tokens)
    code = set(load_trace("code").tokens)
    for record in successful(calls):
        pair = (record["input_tokens"], record["output_tokens"])
        assert record["total_tokens"] == sum(pair)
        if record["call_type"] == "chat":
            assert pair in conv
        elif record["call_type"] == "completion":
            assert pair in code
        elif record["call_type"] in ("embedding", "image"):
            assert record["output_tokens"] == 0
    images = [r for r in calls if r["call_type"] == "image"]
    assert all(r["input_tokens"] < 100 for r in images)


def top_and_bottom_decile_means(records: list[dict], by: str, measure: str) -> tuple:
    ordered = sorted(records, key=lambda r: r[by])
    decile = len(ordered) // 10
    return (
        statistics.mean(r[measure] for r in ordered[-decile:]),
        statistics.mean(r[measure] for r in ordered[:decile]),
    )


def test_durations_grow_with_tokens(calls):
    """Generation time follows output tokens, time to first token follows input
    tokens. (Not total tokens: in the real trace the longest prompts get short
    answers, so total tokens and duration are only loosely related.)"""
    chats = [r for r in successful(calls) if r["call_type"] == "chat"]
    top, bottom = top_and_bottom_decile_means(chats, "output_tokens", "duration_ms")
    assert top > 3 * bottom
    streamed = [r for r in chats if r["stream"]]
    top, bottom = top_and_bottom_decile_means(streamed, "input_tokens", "ttft_ms")
    assert top > 1.5 * bottom
    top, bottom = top_and_bottom_decile_means(chats, "total_tokens", "duration_ms")
    assert top > bottom


def test_cost_is_price_times_tokens_times_group_ratio(calls):
    ratios = {g.name: g.price_ratio for g in GROUPS}
    for record in successful(calls)[:200]:
        model = MODELS[record["model"]]
        base = (
            record["input_tokens"] * model.input_per_m
            + record["output_tokens"] * model.output_per_m
        ) / 1_000_000 + model.per_request
        expected = (base * ratios[record["group"]]).quantize(Decimal("0.00000001"))
        assert abs(Decimal(record["cost"]) - expected) <= Decimal("0.00000001")
        assert Decimal(record["usage"]) == Decimal(record["cost"]) * USAGE_UNITS_PER_USD


def test_requests_carry_credentials_for_redaction_to_remove(calls):
    secrets = {key.prefix: key.secret for key in demo_keys(SEED)}
    for record in calls[:100]:
        headers = record["request"]["headers"]
        sent = headers.get("Authorization") or headers.get("x-api-key")
        assert secrets[record["api_key"]] in sent
    leaked = [r for r in calls if API_KEY_RE.search(str(r["request"]["body"]))]
    assert leaked, "some prompts and bodies should carry a pasted key"


def test_the_generator_refuses_a_naive_now_and_no_calls():
    with pytest.raises(ValueError, match="timezone"):
        generate_calls(SEED, 10, NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="count"):
        generate_calls(SEED, 0, NOW)


# --- the command -------------------------------------------------------------------------


def seed(*args: str) -> str:
    """seed_demo without the LiteLLM team unless asked: the tests of the main
    demo count its accounts and calls (the team has a test of its own)."""
    if "--litellm-calls" not in args:
        args = (*args, "--litellm-calls", "0")
    out = StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_has_a_litellm_team_with_cached_tokens_and_priced_models():
    output = seed("--calls", "100", "--litellm-calls", "40", "--seed", str(SEED))

    team = Account.objects.get(source="litellm")
    calls = CallRecord.objects.filter(account=team)
    assert calls.count() == 40
    assert "40 calls posted through the LiteLLM integration" in output
    assert set(ApiKey.objects.filter(account=team).values_list("name", flat=True)) == {
        "northwind-support-bot",
        "northwind-batch",
    }
    cached = calls.filter(cached_input_tokens__gt=0)
    assert cached.exists()
    assert all(call.cache_savings > 0 for call in cached)
    assert calls.exclude(end_user="").exists()
    assert calls.filter(tags__has_tag="support").exists()
    assert ModelPrice.objects.filter(model="gpt-4o").exists()


@pytest.mark.django_db
def test_seed_demo_creates_the_world_the_calls_and_the_logins():
    output = seed("--calls", "2000", "--seed", str(SEED))

    assert CallRecord.objects.count() == 2000
    assert Account.objects.count() == len(ACCOUNTS)
    assert ApiKey.objects.count() == sum(len(a.keys) for a in ACCOUNTS)
    assert set(Group.objects.values_list("name", flat=True)) >= {g.name for g in GROUPS}
    errors = CallRecord.objects.filter(status_code__gte=400).count()
    assert 20 <= errors <= 70
    assert CallRecord.objects.values("call_type").distinct().count() >= 4
    assert set(CallRecord.objects.values_list("is_stream", flat=True).distinct()) == {True, False}
    assert "2,000 calls created" in output
    assert "http://127.0.0.1:8000/admin/" in output

    users = get_user_model().objects
    support = users.get(username="support")
    assert support.is_staff and support.is_superuser
    assert support.check_password("support-demo")
    owner = users.get(username="owner")
    assert not owner.is_staff and not owner.is_superuser
    assert owner.check_password("owner-demo")
    membership = Membership.objects.get(user=owner)
    assert membership.account.name == "Acme Robotics"
    assert membership.role == Membership.Role.OWNER


@pytest.mark.django_db
def test_no_stored_payload_holds_a_credential():
    seed("--calls", "1000", "--seed", str(SEED))
    secrets = [key.secret for key in demo_keys(SEED)]
    redacted_headers = 0
    for payload in CallPayload.objects.all():
        for part in CallPayload.PARTS:
            text = getattr(payload, part)
            assert not API_KEY_RE.search(text), text
            assert not any(secret in text for secret in secrets)
        redacted_headers += REDACTED in payload.request_headers
    assert redacted_headers == CallRecord.objects.count()
    assert CallPayload.objects.filter(request_body__contains=REDACTED).exists()


@pytest.mark.django_db
def test_if_empty_keeps_the_calls_and_resets_the_logins():
    seed("--calls", "200")
    support = get_user_model().objects.get(username="support")
    support.set_password("changed")
    support.save()

    output = seed("--calls", "200", "--if-empty")

    assert CallRecord.objects.count() == 200
    assert "already has 200 calls" in output
    support.refresh_from_db()
    assert support.check_password("support-demo")


@pytest.mark.django_db
def test_running_again_adds_calls_but_no_accounts_keys_or_groups():
    seed("--calls", "30", "--seed", "1")
    counts = (Account.objects.count(), ApiKey.objects.count(), Group.objects.count())

    # Another seed derives other key secrets: the keys already stored are reused.
    seed("--calls", "30", "--seed", "2")

    assert (Account.objects.count(), ApiKey.objects.count(), Group.objects.count()) == counts
    assert CallRecord.objects.count() == 60
    assert get_user_model().objects.filter(username__in=["support", "owner"]).count() == 2
    assert Membership.objects.count() == 1


@pytest.mark.django_db
def test_a_run_repeated_within_the_minute_is_a_harmless_replay(monkeypatch):
    frozen = datetime.now(UTC).replace(second=30, microsecond=0) - timedelta(minutes=1)
    monkeypatch.setattr("django.utils.timezone.now", lambda: frozen)
    seed("--calls", "40")

    output = seed("--calls", "40")

    assert CallRecord.objects.count() == 40
    assert "0 calls created, 40 already present" in output


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--calls", "0"], "--calls must be between 1"),
        (["--calls", "-5"], "--calls must be between 1"),
        (["--calls", "10", "--days", "0"], "--days must be between 1"),
        (["--calls", "10", "--seed", "-1"], "--seed must be zero or more"),
    ],
)
def test_bad_options_are_refused(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        seed(*args)
    assert not CallRecord.objects.exists()
    assert not Account.objects.exists()


# --- payloads as long as their tokens -----------------------------------------------------


def prompt_chars(record: dict) -> int:
    return sum(len(m["content"]) for m in record["request"]["body"]["messages"])


def test_a_chats_prompt_is_as_long_as_its_input_tokens(calls):
    """About four characters a token, up to the cap; a prompt shorter than its
    question alone is the question."""
    from logs.demo import CHARS_PER_TOKEN, PROMPT_MAX_CHARS

    chats = [r for r in successful(calls) if r["call_type"] == "chat"]
    for record in chats:
        expected = min(record["input_tokens"] * CHARS_PER_TOKEN, PROMPT_MAX_CHARS)
        question = len(record["request"]["body"]["messages"][-1]["content"])
        if expected > question + 300:
            assert 0.9 * expected <= prompt_chars(record) <= 1.1 * expected, record["request_id"]
    longest = max(chats, key=lambda r: r["input_tokens"])
    assert prompt_chars(longest) >= 4 * 2000


def test_a_streamed_chat_is_stored_as_its_stream_of_chunks(calls):
    streamed = [r for r in successful(calls) if r["call_type"] == "chat" and r["stream"]]
    assert streamed
    for record in streamed:
        chunks = record["response"]
        assert isinstance(chunks, list)
        assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
        assert chunks[-1]["usage"]["completion_tokens"] == record["output_tokens"]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert text
    unstreamed = [r for r in successful(calls) if r["call_type"] == "chat" and not r["stream"]]
    assert all(isinstance(r["response"], dict) for r in unstreamed)


def test_some_prompts_are_long_enough_to_fold_on_the_calls_page(calls):
    import json

    from logs.admin.detail import FOLD_LINES

    long_ones = [
        r
        for r in calls
        if len(json.dumps(r["request"]["body"], indent=2).splitlines()) > FOLD_LINES
    ]
    assert len(long_ones) >= 10
