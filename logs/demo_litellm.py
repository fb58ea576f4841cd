"""Demo calls from a LiteLLM proxy: a team whose gateway is LiteLLM, posting
through the LiteLLM integration as a real proxy's ``generic_api`` callback
would, with prompt-cache reads and writes, reasoning tokens, end users and
tags — and the demo price list, which explains their costs and what the
cache saved. Seeded, so a demo is the same every time."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from logs.demo import MODELS
from logs.models import COST_DECIMAL_PLACES, ModelPrice

TEAM_ID = "team-northwind"
TEAM_ALIAS = "Northwind Traders (LiteLLM)"
# (alias, the key LiteLLM hashes, the share of calls); only the hash is ever sent.
KEYS = (("northwind-support-bot", "sk-northwind-support", 0.7), ("northwind-batch", "sk-nw-b", 0.3))
END_USERS = ("customer-1042", "customer-2177", "customer-3310", "agent-ops")
TAGS = (("support", "prod"), ("support", "prod", "escalation"), ("batch", "nightly"))

# Cache prices relative to the input price, as the providers bill them.
_CACHE_READ = {"openai": Decimal("0.5"), "anthropic": Decimal("0.1")}
_CACHE_WRITE = {"openai": Decimal("1"), "anthropic": Decimal("1.25")}
_MILLION = Decimal(1_000_000)
_QUANTUM = Decimal(1).scaleb(-COST_DECIMAL_PLACES)
# The chat models the team calls through LiteLLM, with the provider LiteLLM names.
_DEPLOYMENTS = (("gpt-4o", "openai"), ("claude-3-5-sonnet", "anthropic"))


def ensure_demo_prices(since: datetime) -> int:
    """The price list of the demo's token-priced models, in force from
    ``since``; returns how many prices it created."""
    created = 0
    for spec in MODELS.values():
        if not spec.input_per_m and not spec.output_per_m:
            continue
        read = _CACHE_READ.get(spec.family, Decimal("0.5"))
        write = _CACHE_WRITE.get(spec.family, Decimal("1"))
        _, made = ModelPrice.objects.get_or_create(
            model=spec.name,
            group=None,
            valid_from=since,
            defaults={
                "input_per_million": spec.input_per_m,
                "cached_input_per_million": spec.input_per_m * read,
                "cache_write_per_million": spec.input_per_m * write,
                "output_per_million": spec.output_per_m,
            },
        )
        created += made
    return created


def litellm_payloads(seed: int, count: int, now: datetime, days: int) -> Iterator[dict[str, Any]]:
    """``count`` StandardLoggingPayloads of the LiteLLM team over the last ``days``."""
    rng = random.Random(f"litellm-{seed}")
    for number in range(count):
        alias, secret, _ = _pick_key(rng)
        model, provider = rng.choice(_DEPLOYMENTS)
        spec = MODELS[model]
        start = now - timedelta(seconds=rng.uniform(60, days * 86400))
        input_tokens = rng.randint(800, 12_000)
        # A support bot resends its long system prompt: most of it comes from the cache.
        cached = int(input_tokens * rng.uniform(0.4, 0.9)) if rng.random() < 0.7 else 0
        written = int(input_tokens * 0.1) if provider == "anthropic" and not cached else 0
        output_tokens = rng.randint(60, 900)
        reasoning = int(output_tokens * rng.uniform(0.2, 0.5)) if rng.random() < 0.2 else 0
        failed = rng.random() < 0.04
        seconds = 0.4 + input_tokens / 20_000 + output_tokens / rng.uniform(40, 90)
        # The run's minute in the id: a later run adds calls instead of clashing.
        call_id = f"chatcmpl-nw-{seed}-{now:%Y%m%d%H%M}-{number:06d}"
        usage = _usage(provider, input_tokens, cached, written, output_tokens, reasoning)
        yield {
            "id": call_id,
            "call_type": "acompletion",
            "status": "failure" if failed else "success",
            "stream": number % 3 == 0,
            "custom_llm_provider": provider,
            "startTime": start.timestamp(),
            "endTime": start.timestamp() + seconds,
            "completionStartTime": start.timestamp() + min(seconds, 0.35 + input_tokens / 40_000),
            "model": model,
            "model_group": model,
            "model_id": f"{provider}-{model}",
            "api_base": f"https://api.{provider}.com",
            "metadata": {
                "user_api_key_hash": hashlib.sha256(secret.encode()).hexdigest(),
                "user_api_key_alias": alias,
                "user_api_key_team_id": TEAM_ID,
                "user_api_key_team_alias": TEAM_ALIAS,
                "usage_object": usage if not failed else None,
            },
            "prompt_tokens": 0 if failed else input_tokens,
            "completion_tokens": 0 if failed else output_tokens,
            "total_tokens": 0 if failed else input_tokens + output_tokens,
            "response_cost": 0.0
            if failed
            else float(_cost(spec, input_tokens, cached, written, output_tokens, provider)),
            "end_user": rng.choice(END_USERS),
            "request_tags": list(TAGS[0 if alias.endswith("bot") else 2])
            if rng.random() < 0.9
            else list(TAGS[1]),
            "requester_ip_address": f"198.51.100.{rng.randint(2, 254)}",
            "messages": [
                {"role": "system", "content": "You are Northwind's support assistant."},
                {"role": "user", "content": "Where is my order? It was due on Monday."},
            ],
            "response": None
            if failed
            else {"choices": [{"message": {"role": "assistant", "content": "Let me check…"}}]},
            "model_parameters": {"temperature": 0.3, "max_tokens": 1024},
            "error_str": "RateLimitError: upstream rate limit" if failed else None,
            "error_information": {
                "error_code": "429",
                "error_class": "RateLimitError",
                "error_message": f"{provider}: rate limit reached for {model}",
            }
            if failed
            else None,
        }


def _pick_key(rng: random.Random) -> tuple[str, str, float]:
    draw = rng.random()
    for key in KEYS:
        draw -= key[2]
        if draw < 0:
            return key
    return KEYS[-1]


def _usage(
    provider: str, input_tokens: int, cached: int, written: int, output: int, reasoning: int
) -> dict[str, Any]:
    """The usage object as each provider's LiteLLM response carries it."""
    usage: dict[str, Any] = {
        "prompt_tokens": input_tokens,
        "completion_tokens": output,
        "total_tokens": input_tokens + output,
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
    if provider == "anthropic":
        usage["cache_read_input_tokens"] = cached
        usage["cache_creation_input_tokens"] = written
    else:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage


def _cost(spec, input_tokens: int, cached: int, written: int, output: int, provider: str):
    """What LiteLLM's cost map would report, from the same prices as the demo's list."""
    read = _CACHE_READ.get(provider, Decimal("0.5"))
    write = _CACHE_WRITE.get(provider, Decimal("1"))
    uncached = input_tokens - cached - written
    dollars = (
        uncached * spec.input_per_m
        + cached * spec.input_per_m * read
        + written * spec.input_per_m * write
        + output * spec.output_per_m
    ) / _MILLION
    return dollars.quantize(_QUANTUM, ROUND_HALF_UP)
