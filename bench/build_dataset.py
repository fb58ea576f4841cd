#!/usr/bin/env python
"""Build a benchmark dataset of N calls in a PostgreSQL database.

    python bench/build_dataset.py --calls 10000000 \\
        --database-url postgres://root@127.0.0.1:5432/usagelogs_bench [--seed 1] [--days 30]

The database is dropped and created again (its name must contain "bench"
unless --force), migrated, and filled:

* 3 pricing groups (default, vip, enterprise), 50 accounts whose traffic
  follows a Zipf law (the biggest about a fifth of all calls), about 500 API
  keys (bigger accounts have more keys; traffic within an account is skewed
  too; common key names such as ``prod-backend`` recur across accounts), 21
  models with a realistic popularity skew. Each key is used by one kind of
  client (backend, pipeline, notebook, coding) with its own small mix of call
  types and models and its own hours of the day (customers sit in different
  time zones; pipelines run at night; weekends are quieter).
* N calls over the last D whole hours-of-days up to the current hour, every
  row generated inside PostgreSQL by ``INSERT … SELECT … generate_series``
  with ``random()`` (no round trip per row), two loader connections in
  parallel. Token counts are (ContextTokens, GeneratedTokens) pairs drawn from
  the Azure LLM inference trace 2023 in ``fixtures/`` (conversation trace for
  chat, coding trace for completions; embeddings, moderation, rerank, image
  and audio calls derive their counts from the same pairs). Durations are
  overhead + prefill per input token + output tokens / a per-model speed,
  with log-normal noise; streamed calls have a time to first token. About 2%
  of calls fail (429, 400, 401, 500, 502, 503, 504 with real-looking reasons,
  no tokens, no cost). Usage and cost are the scaled integers
  ``FixedDecimalField`` stores (cost x 10^8 from list prices x the group's
  ratio; usage = 500,000 units per USD, x 10^6). Ids grow with time, request
  ids are unique, content hashes are 64 hex characters.
* Payloads (``CallPayload``) for 1% of calls (every call whose id ends in 00):
  small redacted JSON request/response parts, sized by the token counts.

Indexes, primary/unique keys and foreign keys of the calls table are dropped
before the load and created again after it, exactly as the migrations defined
them (their definitions are read from the catalog), which is much faster
than maintaining them row by row. Then the models each account used
(``AccountModel``), keys' ``last_used_at``, the hourly rollups
(``rebuild_rollups``, one set-based statement) and VACUUM ANALYZE.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

SLOTS_PER_HOUR = 10_000  # resolution of the key choice per (weekend, hour of day)
COMBO_SLOTS = 100  # resolution of a key's call type / model mix
ERROR_SLOTS = 100
ERROR_RATE = 0.02
PAYLOAD_EVERY = 100  # one call in this many has a payload
USAGE_PER_COST_UNIT = 5000  # usage x 10^6 per cost x 10^8: 500,000 units per USD
LOADERS = 2  # parallel loader connections (one per core)
GEN = "benchgen"  # scratch schema for the generator's lookup tables, dropped at the end


# --- the world -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    name: str
    call_type: str
    endpoint: str
    price_in: float  # USD per 1M input tokens
    price_out: float  # USD per 1M output tokens
    per_request: float  # USD per call
    overhead_ms: int
    ms_per_1k_in: float
    tps: tuple[float, float]  # output tokens per second, slowest and fastest
    tokens: str  # how token counts derive from a trace pair (see _TOKENS_SQL)
    trace: str  # which trace: conv or code
    upstreams: tuple[tuple[str, int], ...]
    popularity: int  # among models of its call type


_OPENAI = (("openai-primary", 50), ("azure-eastus-2", 30), ("azure-swedencentral", 20))
_ANTHROPIC = (("anthropic-direct", 70), ("aws-bedrock-us-east-1", 30))
_GOOGLE = (("vertex-us-central1", 80), ("vertex-europe-west4", 20))
_OSS = (("together-ai", 60), ("fireworks-ai", 40))

# fmt: off
MODELS = (
    ModelSpec("gpt-4o-mini", "chat", "/v1/chat/completions", 0.15, 0.60, 0, 250, 120, (70, 130), "chat", "conv", _OPENAI, 300),  # noqa: E501
    ModelSpec("gpt-4o", "chat", "/v1/chat/completions", 2.50, 10.0, 0, 320, 200, (55, 95), "chat", "conv", _OPENAI, 180),  # noqa: E501
    ModelSpec("claude-3-5-sonnet", "chat", "/v1/chat/completions", 3.0, 15.0, 0, 450, 250, (45, 75), "chat", "conv", _ANTHROPIC, 140),  # noqa: E501
    ModelSpec("claude-3-5-haiku", "chat", "/v1/chat/completions", 0.80, 4.0, 0, 300, 120, (60, 110), "chat", "conv", _ANTHROPIC, 60),  # noqa: E501
    ModelSpec("gemini-1.5-flash", "chat", "/v1/chat/completions", 0.075, 0.30, 0, 280, 90, (90, 170), "chat", "conv", _GOOGLE, 60),  # noqa: E501
    ModelSpec("gemini-1.5-pro", "chat", "/v1/chat/completions", 1.25, 5.0, 0, 420, 220, (40, 70), "chat", "conv", _GOOGLE, 30),  # noqa: E501
    ModelSpec("llama-3.1-70b-instruct", "chat", "/v1/chat/completions", 0.88, 0.88, 0, 280, 180, (30, 60), "chat", "conv", _OSS, 60),  # noqa: E501
    ModelSpec("llama-3.1-8b-instruct", "chat", "/v1/chat/completions", 0.18, 0.18, 0, 200, 60, (120, 220), "chat", "conv", _OSS, 30),  # noqa: E501
    ModelSpec("deepseek-chat", "chat", "/v1/chat/completions", 0.27, 1.10, 0, 380, 150, (25, 55), "chat", "conv", (("deepseek-api", 100),), 50),  # noqa: E501
    ModelSpec("mistral-large-latest", "chat", "/v1/chat/completions", 2.0, 6.0, 0, 300, 200, (35, 60), "chat", "conv", (("mistral-la-plateforme", 100),), 20),  # noqa: E501
    ModelSpec("qwen2.5-72b-instruct", "chat", "/v1/chat/completions", 0.90, 0.90, 0, 300, 180, (30, 55), "chat", "conv", _OSS, 30),  # noqa: E501
    ModelSpec("o1-mini", "chat", "/v1/chat/completions", 3.0, 12.0, 0, 900, 300, (60, 120), "chat", "conv", _OPENAI, 20),  # noqa: E501
    ModelSpec("codestral-latest", "completion", "/v1/fim/completions", 0.30, 0.90, 0, 180, 60, (90, 150), "chat", "code", (("mistral-la-plateforme", 100),), 55),  # noqa: E501
    ModelSpec("qwen2.5-coder-32b-instruct", "completion", "/v1/completions", 0.80, 0.80, 0, 220, 120, (45, 85), "chat", "code", _OSS, 45),  # noqa: E501
    ModelSpec("text-embedding-3-small", "embedding", "/v1/embeddings", 0.02, 0, 0, 80, 15, (1, 1), "embed", "conv", _OPENAI, 75),  # noqa: E501
    ModelSpec("text-embedding-3-large", "embedding", "/v1/embeddings", 0.13, 0, 0, 110, 25, (1, 1), "embed", "conv", _OPENAI, 25),  # noqa: E501
    ModelSpec("dall-e-3", "image", "/v1/images/generations", 0, 0, 0.04, 9000, 0, (1, 1), "image", "conv", _OPENAI, 1),  # noqa: E501
    ModelSpec("gpt-4o-mini-tts", "audio", "/v1/audio/speech", 0.60, 12.0, 0, 350, 30, (300, 600), "audio", "conv", _OPENAI, 60),  # noqa: E501
    ModelSpec("whisper-1", "audio", "/v1/audio/transcriptions", 0, 0, 0.006, 1200, 0, (200, 400), "audio", "conv", _OPENAI, 40),  # noqa: E501
    ModelSpec("omni-moderation-latest", "moderation", "/v1/moderations", 0, 0, 0, 90, 10, (1, 1), "limited", "conv", _OPENAI, 1),  # noqa: E501
    ModelSpec("rerank-english-v3.0", "rerank", "/v1/rerank", 0, 0, 0.002, 150, 40, (1, 1), "limited", "conv", (("cohere-api", 100),), 1),  # noqa: E501
)
# fmt: on

# How token counts derive from a trace pair (ctx, gen); errors have none.
_TOKENS_SQL = {
    "in": (
        "CASE WHEN is_error THEN 0 WHEN tok_mode = 'chat' THEN ctx "
        "WHEN tok_mode = 'embed' THEN least(ctx, 8191) "
        "WHEN tok_mode = 'image' THEN least(ctx / 40 + 12, 400) "
        "WHEN tok_mode = 'audio' THEN least(ctx / 10 + 5, 2000) "
        "ELSE least(ctx, 4000) END"
    ),
    "out": (
        "CASE WHEN is_error THEN 0 WHEN tok_mode = 'chat' THEN gen "
        "WHEN tok_mode = 'audio' THEN gen * 6 ELSE 0 END"
    ),
}

# (status, reason shown in the list, weight, duration range ms)
# fmt: off
ERROR_KINDS = (
    (429, "rate_limit_exceeded: Rate limit reached on tokens per min (TPM)", 34, (15, 120)),
    (400, "context_length_exceeded: This model's maximum context length is exceeded", 10,
     (20, 150)),
    (400, "invalid_value: Invalid value for 'temperature': must be between 0 and 2", 9, (10, 80)),
    (401, "invalid_api_key: Incorrect API key provided: sk-proj-****", 5, (10, 60)),
    (500, "internal_error: The server had an error while processing your request", 14,
     (300, 8000)),
    (502, "bad_gateway: upstream connect error or disconnect/reset before headers", 9,
     (50, 3000)),
    (503, "overloaded: The engine is currently overloaded, please try again later", 13,
     (100, 1500)),
    (504, "upstream_timeout: Upstream did not answer within 60 s", 6, (60_000, 60_400)),
)
# fmt: on

GROUPS = (("default", 1.0), ("vip", 0.8), ("enterprise", 0.6))

# Relative traffic by local hour 0..23.
# fmt: off
OFFICE = (
    0.10, 0.07, 0.05, 0.05, 0.05, 0.08, 0.20, 0.45, 0.80, 1.00, 1.00, 0.95,
    0.75, 0.90, 1.00, 1.00, 0.95, 0.80, 0.55, 0.40, 0.32, 0.25, 0.18, 0.13,
)
NIGHTLY = (
    0.50, 1.60, 2.00, 1.80, 1.20, 0.50, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30,
    0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.35,
)
# fmt: on


@dataclass(frozen=True)
class Role:
    hours: tuple[float, ...]
    weekend: float
    stream_share: float


ROLES = {
    "backend": Role(OFFICE, 0.45, 0.8),
    "pipeline": Role(NIGHTLY, 0.9, 0.1),
    "notebook": Role(OFFICE, 0.15, 0.6),
    "coding": Role(OFFICE, 0.1, 0.5),
}

COMPANY = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne",
    "Soylent", "Hooli", "Vandelay", "Oscorp", "Aperture", "Nakatomi", "Dunder", "Massive",
    "Gringotts", "Monarch", "Virtucon", "Sirius", "Zorg", "Kwik", "Bluth", "Pendant",
)  # fmt: skip
SECTOR = ("Robotics", "Research", "Labs", "Health", "Finance", "Logistics", "Media", "Retail")
UTC_OFFSETS = (-8, -8, -7, -5, -5, -4, 0, 1, 1, 2, 3, 5, 8, 9)
KEY_NAMES = (
    "prod-backend", "staging", "data-pipeline", "notebook", "batch-eval", "ci-codegen",
    "support-bot", "search-api", "analytics", "prod-eu", "prod-us", "mobile-app", "web-app",
    "dev-alice", "dev-bob", "dev-carol", "dev-dave", "etl-nightly", "rag-indexer", "chatbot",
    "summarizer", "translator", "classifier", "qa-bot", "sandbox", "load-test",
)  # fmt: skip
PIPELINE_KEYS = {"data-pipeline", "batch-eval", "etl-nightly", "rag-indexer", "analytics"}
PIPELINE_KEYS |= {"classifier"}
NOTEBOOK_KEYS = {"notebook", "sandbox", "dev-alice", "dev-bob", "dev-carol", "dev-dave"}
CODING_KEYS = {"ci-codegen"}


def key_role(name: str) -> str:
    if name in PIPELINE_KEYS:
        return "pipeline"
    if name in NOTEBOOK_KEYS:
        return "notebook"
    if name in CODING_KEYS:
        return "coding"
    return "backend"


# A key's mix of call types: (call type, share, probability that a key of this role uses it).
ROLE_MIX = {
    "backend": (
        ("chat", 80, 1.0),
        ("embedding", 10, 0.5),
        ("moderation", 4, 0.3),
        ("completion", 5, 0.1),
        ("image", 1.5, 0.1),
        ("audio", 1, 0.1),
        ("rerank", 1, 0.15),
    ),
    "pipeline": (("chat", 55, 1.0), ("embedding", 40, 0.8), ("rerank", 5, 0.4)),
    "notebook": (
        ("chat", 75, 1.0),
        ("completion", 8, 0.3),
        ("embedding", 8, 0.4),
        ("image", 5, 0.3),
        ("audio", 4, 0.2),
    ),
    "coding": (("completion", 70, 1.0), ("chat", 30, 1.0)),
}


@dataclass
class KeyPlan:
    id: int
    account_id: int
    group_id: int
    ratio: float
    name: str
    role: str
    weight: float  # share of all traffic
    utc_offset: int
    client_ip: str
    combos: list[tuple[int, float]]  # (model index, share)


def zipf(n: int, s: float) -> list[float]:
    raw = [1 / (rank**s) for rank in range(1, n + 1)]
    total = sum(raw)
    return [w / total for w in raw]


def apportion(total: int, weights: list[float]) -> list[int]:
    """Integers proportional to ``weights`` that add up to ``total`` (largest remainder)."""
    whole = sum(weights)
    if whole <= 0:
        return [0] * len(weights)
    exact = [total * w / whole for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def create_world(rng: random.Random, since: datetime, accounts: int, keys: int) -> list[KeyPlan]:
    """Groups, accounts and keys through the ORM; returns what the generator needs of each key."""
    from accounts.models import Account, ApiKey, Group
    from accounts.services import hash_secret

    groups = {
        name: Group.objects.create(name=name, price_ratio=ratio, description=f"{name} pricing")
        for name, ratio in GROUPS
    }
    names = [f"{c} {s}" for c in COMPANY for s in SECTOR]
    rng.shuffle(names)
    account_share = zipf(accounts, 1.0)
    key_counts = apportion(keys, [share**0.5 for share in account_share])
    chat_models = [i for i, m in enumerate(MODELS) if m.call_type == "chat"]
    plans: list[KeyPlan] = []
    for number in range(accounts):
        name = names[number]
        account = Account.objects.create(
            name=name, slug=name.lower().replace(" ", "-"), created_at=since - timedelta(days=90)
        )
        # Big customers are on contracts, small ones pay list price.
        tier = "enterprise" if number < 5 else "vip" if number < 15 else "default"
        offset = rng.choice(UTC_OFFSETS)
        count = max(2, key_counts[number])
        key_names = list(KEY_NAMES[:count]) + [
            f"svc-{i:03d}" for i in range(count - len(KEY_NAMES))
        ]
        key_share = zipf(count, 1.1)
        # Each account prefers a few chat models, by global popularity.
        favourites = _weighted_sample(
            rng, chat_models, [MODELS[i].popularity for i in chat_models], k=4
        )
        for key_number, key_name in enumerate(key_names):
            group_name = "default" if key_name in ("staging", "sandbox", "load-test") else tier
            secret = "sk-" + secrets.token_urlsafe(36)
            api_key = ApiKey.objects.create(
                account=account,
                name=key_name,
                group=groups[group_name],
                prefix=secret[: ApiKey.PREFIX_LENGTH],
                secret_hash=hash_secret(secret),
                created_at=since - timedelta(days=60),
            )
            role = key_role(key_name)
            plans.append(
                KeyPlan(
                    id=api_key.pk,
                    account_id=account.pk,
                    group_id=groups[group_name].pk,
                    ratio=dict(GROUPS)[group_name],
                    name=key_name,
                    role=role,
                    weight=account_share[number] * key_share[key_number],
                    utc_offset=offset,
                    client_ip=f"{rng.choice(('203.0.113', '198.51.100', '192.0.2'))}."
                    f"{rng.randrange(1, 255)}",
                    combos=_key_combos(rng, role, favourites),
                )
            )
    return plans


def _weighted_sample(rng: random.Random, items: list, weights: list, k: int) -> list:
    items, weights = list(items), list(weights)
    chosen = []
    for _ in range(min(k, len(items))):
        pick = rng.choices(range(len(items)), weights=weights)[0]
        chosen.append(items.pop(pick))
        weights.pop(pick)
    return chosen


def _key_combos(rng: random.Random, role: str, favourites: list[int]) -> list[tuple[int, float]]:
    """The (model, share) pairs one key uses: a few models, as one client would."""
    combos: list[tuple[int, float]] = []
    for call_type, share, used in ROLE_MIX[role]:
        if rng.random() >= used:
            continue
        if call_type == "chat":
            how_many = 3 if role == "notebook" else rng.choice((1, 1, 2, 2, 3))
            for rank, model in enumerate(favourites[:how_many]):
                combos.append(
                    (model, share * (0.6, 0.3, 0.1)[rank] / (0.6, 0.9, 1.0)[how_many - 1])
                )
        else:
            candidates = [i for i, m in enumerate(MODELS) if m.call_type == call_type]
            model = rng.choices(candidates, weights=[MODELS[i].popularity for i in candidates])[0]
            combos.append((model, share))
    return combos


# --- the generator's lookup tables -------------------------------------------------------------


def hour_weight(plan: KeyPlan, hour: datetime) -> float:
    local = hour + timedelta(hours=plan.utc_offset)
    role = ROLES[plan.role]
    factor = role.weekend if local.weekday() >= 5 else 1.0
    return plan.weight * role.hours[local.hour] * factor


def fill_lookup_tables(cur, plans: list[KeyPlan], first_hour: datetime, hours: int, calls: int):
    """benchgen.hours / keyslot / combo / model / trace / errkind, and returns hours' rows."""
    from logs.demo import load_trace

    cur.execute(f"DROP SCHEMA IF EXISTS {GEN} CASCADE")
    cur.execute(f"CREATE SCHEMA {GEN}")

    # Calls per hour: the sum of every key's weight at that (local) hour.
    starts = [first_hour + timedelta(hours=i) for i in range(hours)]
    volumes = [sum(hour_weight(p, h) for p in plans) for h in starts]
    counts = apportion(calls, volumes)
    cur.execute(
        f"CREATE TABLE {GEN}.hours (idx int PRIMARY KEY, start_at timestamptz, wk boolean, "
        "hod int, first_n bigint, cnt int)"
    )
    rows, first = [], 1
    for idx, (start, count) in enumerate(zip(starts, counts, strict=True)):
        rows.append((idx, start, start.weekday() >= 5, start.hour, first, count))
        first += count
    _copy(cur, f"{GEN}.hours", ("idx", "start_at", "wk", "hod", "first_n", "cnt"), rows)

    # Which key a call at a given (weekend, UTC hour of day) comes from.
    cur.execute(
        f"CREATE TABLE {GEN}.keyslot (wk boolean, hod int, idx int, key_id bigint, "
        "account_id bigint, group_id bigint, ratio float8, stream_share float8, client_ip inet)"
    )
    rows = []
    # Representative days for UTC weekdays and weekends (volumes use the real dates).
    wednesday, saturday = datetime(2024, 1, 3, tzinfo=UTC), datetime(2024, 1, 6, tzinfo=UTC)
    for wk, day in ((False, wednesday), (True, saturday)):
        for hod in range(24):
            moment = day + timedelta(hours=hod)
            slots = apportion(SLOTS_PER_HOUR, [hour_weight(p, moment) for p in plans])
            idx = 0
            for plan, n in zip(plans, slots, strict=True):
                for _ in range(n):
                    rows.append(
                        (
                            wk,
                            hod,
                            idx,
                            plan.id,
                            plan.account_id,
                            plan.group_id,
                            plan.ratio,
                            ROLES[plan.role].stream_share,
                            plan.client_ip,
                        )
                    )
                    idx += 1
    columns = ("wk", "hod", "idx", "key_id", "account_id", "group_id", "ratio", "stream_share")
    _copy(cur, f"{GEN}.keyslot", (*columns, "client_ip"), rows)

    cur.execute(f"CREATE TABLE {GEN}.combo (key_id bigint, idx int, model_id int)")
    rows = []
    for plan in plans:
        slots = apportion(COMBO_SLOTS, [share for _, share in plan.combos])
        idx = 0
        for (model, _), n in zip(plan.combos, slots, strict=True):
            for _ in range(n):
                rows.append((plan.id, idx, model))
                idx += 1
    _copy(cur, f"{GEN}.combo", ("key_id", "idx", "model_id"), rows)

    traces = {name: load_trace(name).tokens for name in ("conv", "code")}
    cur.execute(
        f"CREATE TABLE {GEN}.model (id int PRIMARY KEY, name text, call_type text, endpoint text, "
        "price_in float8, price_out float8, per_request float8, overhead_ms float8, "
        "ms_per_1k float8, tps_lo float8, tps_hi float8, tok_mode text, can_stream boolean, "
        "trace_kind text, trace_n int, up1 text, up1_cum float8, up2 text, up2_cum float8, "
        "up3 text)"
    )
    rows = []
    for idx, m in enumerate(MODELS):
        ups = list(m.upstreams) + [(m.upstreams[-1][0], 0)] * (3 - len(m.upstreams))
        total = sum(w for _, w in m.upstreams)
        rows.append(
            (
                idx,
                m.name,
                m.call_type,
                m.endpoint,
                m.price_in,
                m.price_out,
                m.per_request,
                m.overhead_ms,
                m.ms_per_1k_in,
                m.tps[0],
                m.tps[1],
                m.tokens,
                m.call_type in ("chat", "completion"),
                m.trace,
                len(traces[m.trace]),
                ups[0][0],
                ups[0][1] / total,
                ups[1][0],
                (ups[0][1] + ups[1][1]) / total,
                ups[2][0],
            )
        )
    cur.execute(f"SELECT * FROM {GEN}.model LIMIT 0")
    _copy(cur, f"{GEN}.model", tuple(d.name for d in cur.description), rows)

    cur.execute(f"CREATE TABLE {GEN}.trace (kind text, idx int, ctx int, gen int)")
    rows = [
        (name, idx, ctx, gen)
        for name, pairs in traces.items()
        for idx, (ctx, gen) in enumerate(pairs)
    ]
    _copy(cur, f"{GEN}.trace", ("kind", "idx", "ctx", "gen"), rows)

    cur.execute(
        f"CREATE TABLE {GEN}.errkind (idx int, status int, reason text, dmin int, dmax int)"
    )
    slots = apportion(ERROR_SLOTS, [kind[2] for kind in ERROR_KINDS])
    rows, idx = [], 0
    for (status, reason, _, (dmin, dmax)), n in zip(ERROR_KINDS, slots, strict=True):
        for _ in range(n):
            rows.append((idx, status, reason, dmin, dmax))
            idx += 1
    _copy(cur, f"{GEN}.errkind", ("idx", "status", "reason", "dmin", "dmax"), rows)
    for table in ("hours", "keyslot", "combo", "model", "trace", "errkind"):
        cur.execute(f"ANALYZE {GEN}.{table}")
    return counts


def _copy(cur, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.SQL(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


# One chunk of hours -> calls. Randoms are drawn once per row in the innermost
# subquery (volatile functions keep it from being flattened), every other
# column is a pure function of them and of the lookup tables.
INSERT_CALLS = f"""
INSERT INTO logs_callrecord (
    id, request_id, created_at, account_id, api_key_id, group_id, call_type, model, endpoint,
    is_stream, status_code, error_reason, duration_ms, ttft_ms, input_tokens, output_tokens,
    total_tokens, usage, cost, client_ip, upstream, content_hash)
SELECT n, 'req_' || substr(md5(%(seed)s::text || ':' || n::text), 1, 24), created_at,
    account_id, key_id, group_id, call_type, model, endpoint, is_stream,
    CASE WHEN is_error THEN status ELSE 200 END,
    CASE WHEN is_error THEN reason ELSE '' END,
    duration_ms, CASE WHEN is_stream AND NOT is_error THEN least(ttft_ms, duration_ms) END,
    in_tok, out_tok, in_tok + out_tok, cost * {USAGE_PER_COST_UNIT}, cost, client_ip, upstream,
    md5(n::text || 'a') || md5(n::text || 'b')
FROM (
    SELECT t.*,
        CASE WHEN is_error THEN 0 ELSE round(
            ((in_tok * price_in + out_tok * price_out) * 100 + per_request * 1e8) * ratio
        )::bigint END AS cost,
        least(CASE WHEN is_error THEN dmin + (dmax - dmin) * r_speed
             ELSE (pre_ms + out_tok * 1000.0 / (tps_lo + (tps_hi - tps_lo) * r_speed))
                  * exp(0.25 * sqrt(-2 * ln(1 - r_n1)) * cos(2 * pi() * r_n2)) END,
             86400000)::int AS duration_ms,
        (pre_ms * exp(0.25 * sqrt(-2 * ln(1 - r_n1)) * cos(2 * pi() * r_n2)))::int AS ttft_ms
    FROM (
        SELECT x.*,
            {_TOKENS_SQL["in"]} AS in_tok,
            {_TOKENS_SQL["out"]} AS out_tok,
            overhead_ms * (0.6 + 0.8 * r_ov)
                + ({_TOKENS_SQL["in"]}) * ms_per_1k / 1000.0 AS pre_ms
        FROM (
            SELECT g.n, g.created_at, k.key_id, k.account_id, k.group_id, k.ratio, k.client_ip,
                m.name AS model, m.call_type, m.endpoint, m.price_in, m.price_out,
                m.per_request, m.overhead_ms, m.ms_per_1k, m.tps_lo, m.tps_hi, m.tok_mode,
                t.ctx, t.gen, e.status, e.reason, e.dmin, e.dmax,
                g.r_err < {ERROR_RATE} AS is_error,
                m.can_stream AND g.r_stream < k.stream_share AS is_stream,
                CASE WHEN g.r_up < m.up1_cum THEN m.up1 WHEN g.r_up < m.up2_cum THEN m.up2
                     ELSE m.up3 END AS upstream,
                g.r_speed, g.r_n1, g.r_n2, g.r_ov
            FROM (
                SELECT n, h.wk, h.hod,
                    h.start_at + ((n - h.first_n) + random()) * (interval '1 hour' / h.cnt)
                        AS created_at,
                    random() AS r_key, random() AS r_combo, random() AS r_tok,
                    random() AS r_err, random() AS r_kind, random() AS r_stream,
                    random() AS r_speed, random() AS r_up, random() AS r_n1, random() AS r_n2,
                    random() AS r_ov
                FROM {GEN}.hours h CROSS JOIN LATERAL generate_series(h.first_n,
                     h.first_n + h.cnt - 1) AS n
                WHERE h.idx >= %(lo)s AND h.idx < %(hi)s AND h.cnt > 0
                OFFSET 0
            ) g
            JOIN {GEN}.keyslot k ON k.wk = g.wk AND k.hod = g.hod
                AND k.idx = floor(g.r_key * {SLOTS_PER_HOUR})::int
            JOIN {GEN}.combo c ON c.key_id = k.key_id
                AND c.idx = floor(g.r_combo * {COMBO_SLOTS})::int
            JOIN {GEN}.model m ON m.id = c.model_id
            JOIN {GEN}.trace t ON t.kind = m.trace_kind AND t.idx = floor(g.r_tok * m.trace_n)::int
            JOIN {GEN}.errkind e ON e.idx = floor(g.r_kind * {ERROR_SLOTS})::int
        ) x
    ) t
) f
"""

INSERT_PAYLOADS = f"""
INSERT INTO logs_callpayload (
    call_id, created_at, account_id,
    request_params, request_params_truncated, request_params_original_bytes,
    request_headers, request_headers_truncated, request_headers_original_bytes,
    request_body, request_body_truncated, request_body_original_bytes,
    response, response_truncated, response_original_bytes,
    error_detail, error_detail_truncated, error_detail_original_bytes)
SELECT id, created_at, account_id,
    json_build_object('model', model, 'temperature', 0.7, 'max_tokens', 1024,
                      'stream', is_stream)::text, false, NULL,
    '{{"Authorization": "[REDACTED]", "Content-Type": "application/json", '
    '"User-Agent": "openai-python/1.54.3"}}', false, NULL,
    json_build_object('messages', json_build_array(json_build_object('role', 'user',
        'content', left(repeat('Summarise the ticket below and suggest a reply. ', 1 +
        least(input_tokens, 16000) / 10), least(input_tokens, 16000) * 4))))::text, false, NULL,
    CASE WHEN status_code < 400 THEN json_build_object('choices', json_build_array(
        json_build_object('message', json_build_object('role', 'assistant', 'content',
        left(repeat('Thanks for the details; here is what I suggest. ', 1 +
        least(output_tokens, 4000) / 10), least(output_tokens, 4000) * 4)))))::text
        ELSE '' END, false, NULL,
    CASE WHEN status_code >= 400 THEN json_build_object('type', split_part(error_reason, ':', 1),
        'message', error_reason)::text ELSE '' END, false, NULL
FROM logs_callrecord WHERE id % {PAYLOAD_EVERY} = 0
"""


# --- indexes and constraints -----------------------------------------------------------------


def detach_keys(cur, table: str) -> list[str]:
    """Drop the indexes and key constraints of ``table`` (a partitioned parent); return
    the statements that create them again, in order."""
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f')",
        [table],
    )
    constraints = cur.fetchall()
    cur.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid "
        "AND c.conrelid = x.indrelid)",
        [table],
    )
    indexes = cur.fetchall()
    quoted = sql.Identifier(table).as_string(cur)
    order = {"p": 0, "u": 1, "f": 3}
    recreate = sorted(
        [(order[kind], f"ALTER TABLE {quoted} ADD CONSTRAINT \"{name}\" {definition}")
         for name, definition, kind in constraints]
        # The catalog spells a partitioned index "ON ONLY": that would not build
        # the partitions' indexes. Plain ON builds them all, as the migration did.
        + [(2, definition.replace(" ON ONLY ", " ON ", 1)) for _, definition in indexes]
    )  # fmt: skip
    for name, _, _kind in sorted(constraints, key=lambda c: c[2] != "f"):
        cur.execute(f'ALTER TABLE {quoted} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    return [statement for _, statement in recreate]


# --- steps ---------------------------------------------------------------------------------------


class Steps:
    def __init__(self):
        self.started = time.monotonic()
        self.timings: list[tuple[str, float]] = []

    def run(self, name: str, function, *args, **kwargs):
        print(f"-- {name} …", flush=True)
        began = time.monotonic()
        result = function(*args, **kwargs)
        seconds = time.monotonic() - began
        self.timings.append((name, seconds))
        print(f"   {name}: {seconds:.1f} s", flush=True)
        return result


def recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    maintenance = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "usagelogs_site.settings")
    import django

    django.setup()


def load_calls(url: str, counts: list[int], seed: int) -> None:
    """Run INSERT_CALLS over chunks of hours on LOADERS connections at once."""
    total = sum(counts)
    target = max(total // max(2, min(40, total // 100_000)), 1)
    chunks, lo, acc = [], 0, 0
    for idx, count in enumerate(counts):
        acc += count
        if acc >= target or idx == len(counts) - 1:
            chunks.append((lo, idx + 1, acc))
            lo, acc = idx + 1, 0
    done = [0]
    lock = threading.Lock()
    began = time.monotonic()

    def work(chunk):
        lo, hi, rows = chunk
        with psycopg.connect(url, autocommit=True) as conn:
            # Same seed, same chunk, same rows (given the same hours).
            conn.execute("SELECT setseed(%s)", [random.Random(f"{seed}|{lo}").random() * 2 - 1])
            conn.execute("SET work_mem = '256MB'")
            conn.execute("SET synchronous_commit = off")
            conn.execute(INSERT_CALLS, {"lo": lo, "hi": hi, "seed": seed})
        with lock:
            done[0] += rows
            elapsed = time.monotonic() - began
            print(
                f"   … {done[0]:,} / {total:,} calls ({elapsed:.0f} s, "
                f"{done[0] / max(elapsed, 1e-9):,.0f} rows/s)",
                flush=True,
            )

    with ThreadPoolExecutor(LOADERS) as pool:
        for future in [pool.submit(work, chunk) for chunk in chunks]:
            future.result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--database-url", required=True, help="postgres://… (dropped, recreated)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument(
        "--force", action="store_true", help="allow a database name without 'bench' in it"
    )
    args = parser.parse_args(argv)
    url = args.database_url
    if not url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a postgres:// URL")
    name = urlsplit(url).path.lstrip("/")
    if "bench" not in name and not args.force:
        parser.error(f"refusing to drop database {name!r}: its name lacks 'bench' (use --force)")
    if args.calls < 1 or args.days < 1:
        parser.error("--calls and --days must be at least 1")
    if args.accounts < 1 or args.accounts > len(COMPANY) * len(SECTOR):
        parser.error(f"--accounts must be 1 to {len(COMPANY) * len(SECTOR)}")

    steps = Steps()
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    last_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = args.days * 24
    first_hour = last_hour - timedelta(hours=hours)
    print(
        f"Building {args.calls:,} calls over {args.days} days "
        f"({first_hour:%Y-%m-%d %H:%M} to {last_hour:%Y-%m-%d %H:%M} UTC) in {name!r}, "
        f"seed {args.seed}."
    )

    steps.run("create database", recreate_database, url)
    setup_django(url)
    from django.core.management import call_command
    from django.db import connection

    from logs.retention.partitions import ensure_partitions, month_of, next_month
    from logs.rollups.rebuild import rebuild_rollups

    steps.run("migrate", call_command, "migrate", verbosity=0)

    def months():
        month, wanted = month_of(first_hour), set()
        while month <= month_of(last_hour):
            wanted.add(month)
            month = next_month(month)
        return ensure_partitions(wanted)

    created = steps.run("partitions", months)
    print(f"   {len(created)} partitions created")
    plans = steps.run("accounts and keys", create_world, rng, first_hour, args.accounts, args.keys)
    print(f"   {args.accounts} accounts, {len(plans)} keys, {len(MODELS)} models")

    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        counts = steps.run(
            "lookup tables", fill_lookup_tables, cur, plans, first_hour, hours, args.calls
        )
        recreate = steps.run("drop calls indexes and keys", detach_keys, cur, "logs_callrecord")
    # Each loader seeds its own random(); repeatable row-by-row only up to that.
    steps.run("load calls", load_calls, url, counts, args.seed)

    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        cur.execute("SET max_parallel_maintenance_workers = 2")

        def rebuild_keys():
            for statement in recreate:
                began = time.monotonic()
                cur.execute(statement)
                print(f"   {time.monotonic() - began:6.1f} s  {statement[:110]}", flush=True)

        steps.run("recreate calls indexes and keys", rebuild_keys)
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('logs_callrecord', 'id'), "
            "coalesce((SELECT max(id) FROM logs_callrecord), 0) + 1, false)"
        )
        steps.run("payloads (1%)", cur.execute, INSERT_PAYLOADS)
        steps.run(
            "models per account",
            cur.execute,
            "INSERT INTO logs_accountmodel (account_id, model, first_seen_at) "
            "SELECT account_id, model, min(created_at) FROM logs_callrecord GROUP BY 1, 2",
        )
        steps.run(
            "keys' last use",
            cur.execute,
            "UPDATE accounts_apikey k SET last_used_at = u.last FROM (SELECT api_key_id, "
            "max(created_at) AS last FROM logs_callrecord GROUP BY 1) u WHERE u.api_key_id = k.id",
        )
        cur.execute(f"DROP SCHEMA {GEN} CASCADE")

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SET work_mem = '256MB'")
    written = steps.run("rollups (rebuild_rollups)", rebuild_rollups)
    connection.close()
    print(f"   {written:,} rollup rows")

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        steps.run("VACUUM ANALYZE", conn.execute, "VACUUM ANALYZE")
        row = conn.execute(
            "SELECT (SELECT count(*) FROM logs_callrecord), (SELECT count(*) FROM "
            "logs_callpayload), (SELECT count(*) FROM logs_hourlycallrollup), "
            "(SELECT count(*) FROM accounts_apikey), pg_size_pretty(pg_database_size(%s)), "
            "(SELECT count(*) FILTER (WHERE status_code >= 400)::float / greatest(count(*), 1) "
            "FROM logs_callrecord)",
            [name],
        ).fetchone()
    print(
        f"\nDone in {time.monotonic() - steps.started:.0f} s: {row[0]:,} calls, {row[1]:,} "
        f"payloads, {row[2]:,} rollup rows, {row[3]} keys, error rate {row[5]:.2%}, "
        f"database {row[4]}."
    )
    # Each level's rows: what a level costs in space (the quarter-hour summaries
    # beside the hourly ones, for zones whose hours are not UTC hours).
    from logs.models import COARSE_ROLLUP_LEVELS, FINE_ROLLUP_LEVELS, HourlyCallRollup

    connection.ensure_connection()
    print("Rollup rows per level:")
    for level in (HourlyCallRollup, *COARSE_ROLLUP_LEVELS, *FINE_ROLLUP_LEVELS):
        print(f"  {level.__name__:<34} {level.objects.count():10,}")
    connection.close()
    print("Step timings:")
    for step, seconds in steps.timings:
        print(f"  {step:<34} {seconds:8.1f} s")
    digest = hashlib.sha256(f"{args.seed}|{args.calls}|{args.days}".encode()).hexdigest()[:8]
    print(f"Dataset id {digest} (seed {args.seed}, {args.calls:,} calls, {args.days} days).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
