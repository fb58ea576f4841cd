"""Demo data: a small, believable world of customers and their API calls.

Two halves, kept apart on purpose:

* ``generate_calls`` / ``iter_calls`` build call records as plain dicts in the
  ingest format (docs/ingest-format.md). They touch no database and read no
  clock: the output is a pure function of ``(seed, count, now, days)``, so tests
  can compare two runs dict for dict and a bug report can name a seed.
* ``ensure_demo_world`` creates the accounts, pricing groups and API keys the
  records refer to. It is idempotent: what exists already is reused.

The records then go through ``logs.ingest.ingest_calls`` like any other
calls (``manage.py seed_demo`` does that), so demo data gets the same
validation and credential redaction as production data — the demo shows
redaction working on requests that really did carry secrets.

Realism comes from the Azure LLM inference trace 2023 shipped in
``fixtures/azure-llm-trace-2023/`` (CC BY 4.0, see its README.md): token counts
are (ContextTokens, GeneratedTokens) pairs of real requests, and arrival times
replay the trace's inter-arrival gaps, stretched over the demo period and bent
to each customer's working day.

Prices are approximate public list prices (USD per 1M tokens) from late 2024;
they only need to be plausible. ``usage`` is in quota units as new-api counts
them: 500,000 units per USD of cost (after the group's price ratio).
"""

from __future__ import annotations

import base64
import bisect
import csv
import functools
import hashlib
import itertools
import random
import string
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from django.db import transaction

from accounts.models import Account, ApiKey, Group
from accounts.services import KEY_SCHEME, create_api_key
from logs.models import COST_DECIMAL_PLACES, USAGE_DECIMAL_PLACES

TRACE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "azure-llm-trace-2023"
USAGE_UNITS_PER_USD = Decimal(500_000)
DEFAULT_DAYS = 30

_COST_QUANTUM = Decimal(1).scaleb(-COST_DECIMAL_PLACES)
_USAGE_QUANTUM = Decimal(1).scaleb(-USAGE_DECIMAL_PLACES)
_MILLION = Decimal(1_000_000)


# --- the real trace ---------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """Token pairs and inter-arrival gaps (seconds) of one trace file, in file order."""

    tokens: tuple[tuple[int, int], ...]
    gaps: tuple[float, ...]


def _seconds_of_day(timestamp: str) -> float:
    # "2023-11-16 18:15:46.6805900": seven fractional digits, which older
    # datetime.fromisoformat versions refuse; every row is on the same day.
    clock = timestamp.split(" ", 1)[1]
    hours, minutes, seconds = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@functools.cache
def load_trace(name: str) -> Trace:
    """``name`` is ``conv`` (chat service) or ``code`` (coding service).

    Cached: the files are read once per process (about 30 ms for both).
    """
    path = TRACE_DIR / f"AzureLLMInferenceTrace_{name}.csv"
    with path.open(newline="", encoding="ascii") as handle:
        rows = list(csv.DictReader(handle))
    tokens = tuple((int(r["ContextTokens"]), int(r["GeneratedTokens"])) for r in rows)
    moments = [_seconds_of_day(r["TIMESTAMP"]) for r in rows]
    gaps = tuple(b - a for a, b in itertools.pairwise(moments))
    return Trace(tokens=tokens, gaps=gaps)


# --- the world: groups, accounts, keys ----------------------------------------------


@dataclass(frozen=True)
class GroupSpec:
    name: str
    price_ratio: Decimal
    description: str


GROUPS = (
    GroupSpec("default", Decimal("1"), "List price."),
    GroupSpec("vip", Decimal("0.8"), "Committed monthly spend: 20% off list price."),
    GroupSpec("enterprise", Decimal("0.6"), "Annual contract: 40% off list price."),
)
_RATIOS = {g.name: g.price_ratio for g in GROUPS}


@dataclass(frozen=True)
class KeySpec:
    name: str
    group: str
    # What the key is used for decides call types, models, streaming and the
    # hours it is busy (see ROLES).
    role: str
    weight: int  # share of the account's traffic
    user_agent: str
    client_ips: tuple[str, ...]


@dataclass(frozen=True)
class AccountSpec:
    name: str
    slug: str
    utc_offset: int  # hours; the customer's working day drives the traffic
    weight: int  # share of all traffic
    themes: tuple[str, ...]  # which prompts (CHAT_SCRIPTS) its people send
    chat_models: tuple[tuple[str, int], ...]
    keys: tuple[KeySpec, ...]


_NODE = "OpenAI/NodeJS 4.71.1"
_PY = "openai-python/1.54.3"
_LANGCHAIN = "langchain-openai/0.2.9 openai-python/1.54.3"

# Client addresses are from the documentation ranges (RFC 5737, RFC 3849).
ACCOUNTS = (
    AccountSpec(
        name="Acme Robotics",
        slug="acme-robotics",
        utc_offset=-8,
        weight=45,
        themes=("robotics", "general"),
        chat_models=(
            ("gpt-4o-mini", 45),
            ("gpt-4o", 25),
            ("claude-3-5-sonnet", 18),
            ("llama-3.1-70b-instruct", 12),
        ),
        keys=(
            KeySpec("prod-backend", "vip", "backend", 50, _NODE, ("203.0.113.10", "203.0.113.11")),
            KeySpec("staging", "default", "backend", 10, _NODE, ("203.0.113.40",)),
            KeySpec("data-pipeline", "vip", "pipeline", 25, _PY, ("203.0.113.77",)),
            KeySpec("notebook", "default", "notebook", 15, _LANGCHAIN, ("2001:db8:ac::17",)),
        ),
    ),
    AccountSpec(
        name="Globex Research",
        slug="globex-research",
        utc_offset=1,
        weight=35,
        themes=("research", "general"),
        chat_models=(
            ("claude-3-5-sonnet", 35),
            ("gpt-4o", 30),
            ("gpt-4o-mini", 20),
            ("llama-3.1-70b-instruct", 15),
        ),
        keys=(
            KeySpec("prod-backend", "enterprise", "backend", 35, _PY, ("198.51.100.20",)),
            KeySpec("batch-eval", "enterprise", "pipeline", 30, _PY, ("198.51.100.21",)),
            KeySpec(
                "research-notebook", "enterprise", "notebook", 20, _LANGCHAIN, ("2001:db8:9b::4",)
            ),
            KeySpec("ci-codegen", "default", "coding", 15, "curl/8.5.0", ("198.51.100.99",)),
        ),
    ),
    AccountSpec(
        name="Initech",
        slug="initech",
        utc_offset=-5,
        weight=20,
        themes=("office", "general"),
        chat_models=(("gpt-4o-mini", 60), ("llama-3.1-70b-instruct", 25), ("gpt-4o", 15)),
        keys=(
            KeySpec("prod-backend", "default", "backend", 55, _NODE, ("192.0.2.50",)),
            KeySpec("staging", "default", "backend", 15, _NODE, ("192.0.2.51",)),
            KeySpec("tps-reports", "default", "pipeline", 20, _PY, ("192.0.2.52",)),
            KeySpec("notebook", "default", "notebook", 10, _LANGCHAIN, ("192.0.2.80",)),
        ),
    ),
)


@dataclass(frozen=True)
class DemoKey:
    account: AccountSpec
    spec: KeySpec
    secret: str

    @property
    def prefix(self) -> str:
        return self.secret[: ApiKey.PREFIX_LENGTH]


def demo_secret(seed: int, account_slug: str, key_name: str) -> str:
    """A full key secret that depends only on the seed, in the same shape as
    ``accounts.services.generate_secret`` makes, so a seed reproduces its keys
    (and the records that name them by prefix)."""
    label = f"usagelogs-demo-key|{seed}|{account_slug}|{key_name}".encode()
    raw = base64.urlsafe_b64encode(hashlib.sha512(label).digest()[:36]).decode()
    return KEY_SCHEME + raw.replace("-", "x").replace("_", "y")


def demo_keys(seed: int) -> tuple[DemoKey, ...]:
    return tuple(
        DemoKey(account=a, spec=k, secret=demo_secret(seed, a.slug, k.name))
        for a in ACCOUNTS
        for k in a.keys
    )


# --- models and prices ----------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    name: str
    call_type: str
    endpoint: str
    input_per_m: Decimal  # USD per 1M input tokens
    output_per_m: Decimal  # USD per 1M output tokens
    per_request: Decimal  # USD per call (images, rerank searches)
    overhead_ms: int  # network, auth, queueing: paid by every call
    input_ms_per_1k: float  # prefill time per 1,000 input tokens
    output_tps: tuple[float, float]  # output tokens per second, slowest and fastest
    upstreams: tuple[tuple[str, int], ...]
    family: str  # whose error messages it speaks


_OPENAI = (("openai-primary", 50), ("azure-eastus-2", 30), ("azure-swedencentral", 20))
_D = Decimal

# fmt: off
MODELS = {m.name: m for m in (
    #         name, call type, endpoint,
    #         $ per 1M in, per 1M out, per call, overhead ms, ms per 1k in, tok/s, upstreams, family
    ModelSpec("gpt-4o", "chat", "/v1/chat/completions",
              _D("2.50"), _D("10.00"), _D(0), 320, 200, (55, 95), _OPENAI, "openai"),
    ModelSpec("gpt-4o-mini", "chat", "/v1/chat/completions",
              _D("0.15"), _D("0.60"), _D(0), 250, 120, (70, 130), _OPENAI, "openai"),
    ModelSpec("claude-3-5-sonnet", "chat", "/v1/chat/completions",
              _D("3.00"), _D("15.00"), _D(0), 450, 250, (45, 75),
              (("anthropic-direct", 70), ("aws-bedrock-us-east-1", 30)), "anthropic"),
    ModelSpec("llama-3.1-70b-instruct", "chat", "/v1/chat/completions",
              _D("0.88"), _D("0.88"), _D(0), 280, 180, (30, 60),
              (("together-ai", 60), ("fireworks-ai", 40)), "oss"),
    ModelSpec("codestral-latest", "completion", "/v1/fim/completions",
              _D("0.30"), _D("0.90"), _D(0), 180, 60, (90, 150),
              (("mistral-la-plateforme", 100),), "oss"),
    ModelSpec("qwen2.5-coder-32b-instruct", "completion", "/v1/completions",
              _D("0.80"), _D("0.80"), _D(0), 220, 120, (45, 85),
              (("together-ai", 50), ("fireworks-ai", 50)), "oss"),
    ModelSpec("text-embedding-3-small", "embedding", "/v1/embeddings",
              _D("0.02"), _D(0), _D(0), 80, 15, (1, 1), _OPENAI, "openai"),
    ModelSpec("text-embedding-3-large", "embedding", "/v1/embeddings",
              _D("0.13"), _D(0), _D(0), 110, 25, (1, 1), _OPENAI, "openai"),
    ModelSpec("dall-e-3", "image", "/v1/images/generations",
              _D(0), _D(0), _D("0.04"), 9000, 0, (1, 1), _OPENAI, "openai"),
    ModelSpec("gpt-4o-mini-tts", "audio", "/v1/audio/speech",
              _D("0.60"), _D("12.00"), _D(0), 350, 30, (300, 600), _OPENAI, "openai"),
    ModelSpec("omni-moderation-latest", "moderation", "/v1/moderations",
              _D(0), _D(0), _D(0), 90, 10, (1, 1), _OPENAI, "openai"),
    ModelSpec("rerank-english-v3.0", "rerank", "/v1/rerank",
              _D(0), _D(0), _D("0.002"), 150, 40, (1, 1), (("cohere-api", 100),), "oss"),
)}
# fmt: on

# Models of the other call types (each account picks its own chat models).
OTHER_MODELS: dict[str, tuple[tuple[str, int], ...]] = {
    "completion": (("codestral-latest", 55), ("qwen2.5-coder-32b-instruct", 45)),
    "embedding": (("text-embedding-3-small", 75), ("text-embedding-3-large", 25)),
    "image": (("dall-e-3", 1),),
    "audio": (("gpt-4o-mini-tts", 1),),
    "moderation": (("omni-moderation-latest", 1),),
    "rerank": (("rerank-english-v3.0", 1),),
}


# --- what keys are used for ---------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    call_types: tuple[tuple[str, float], ...]
    stream_share: float  # of chat calls; completions stream half as often
    # Local-hour weights 0..23 and the weekend factor: the shape of a day.
    hours: tuple[float, ...]
    weekend: float


# Relative traffic by local hour, 0 to 23.
# fmt: off
_OFFICE = (
    0.10, 0.07, 0.05, 0.05, 0.05, 0.08, 0.20, 0.45, 0.80, 1.00, 1.00, 0.95,
    0.75, 0.90, 1.00, 1.00, 0.95, 0.80, 0.55, 0.40, 0.32, 0.25, 0.18, 0.13,
)
# Batch jobs run overnight and a little all day, weekends included.
_NIGHTLY = (
    0.50, 1.60, 2.00, 1.80, 1.20, 0.50, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30,
    0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.30, 0.35,
)
# fmt: on

ROLES = {
    "backend": Role(
        call_types=(
            ("chat", 78.5),
            ("completion", 5),
            ("embedding", 9),
            ("image", 1.5),
            ("audio", 1),
            ("moderation", 4),
            ("rerank", 1),
        ),
        stream_share=0.8,
        hours=_OFFICE,
        weekend=0.45,  # customers' customers use it on weekends too
    ),
    "pipeline": Role(
        call_types=(("chat", 52), ("embedding", 38), ("rerank", 5), ("moderation", 5)),
        stream_share=0.1,
        hours=_NIGHTLY,
        weekend=0.9,
    ),
    "notebook": Role(
        call_types=(
            ("chat", 72),
            ("completion", 8),
            ("embedding", 8),
            ("image", 7),
            ("audio", 5),
        ),
        stream_share=0.6,
        hours=_OFFICE,
        weekend=0.15,
    ),
    "coding": Role(
        call_types=(("completion", 70), ("chat", 30)),
        stream_share=0.5,
        hours=_OFFICE,
        weekend=0.1,
    ),
}


# --- errors -------------------------------------------------------------------------------

ERROR_RATE = 0.02  # plus two upstream incidents: about 2% in all


@dataclass(frozen=True)
class ErrorKind:
    status: int
    type: str
    code: str
    weight: int
    duration_ms: tuple[int, int]


ERROR_KINDS = (
    ErrorKind(429, "rate_limit_exceeded", "rate_limit_exceeded", 34, (15, 120)),
    ErrorKind(400, "invalid_request_error", "context_length_exceeded", 10, (20, 150)),
    ErrorKind(400, "invalid_request_error", "invalid_value", 9, (10, 80)),
    ErrorKind(401, "invalid_api_key", "invalid_api_key", 5, (10, 60)),
    ErrorKind(500, "server_error", "internal_error", 14, (300, 8000)),
    ErrorKind(502, "bad_gateway", "bad_gateway", 9, (50, 3000)),
    ErrorKind(503, "overloaded", "overloaded", 13, (100, 1500)),
    ErrorKind(504, "timeout", "upstream_timeout", 6, (60_000, 60_400)),
)
_ERRORS_BY_STATUS = {kind.status: kind for kind in ERROR_KINDS}
# Bad request parameters: (parameter, the value sent, what the upstream said).
INVALID_VALUES = (
    ("temperature", 2.5, "Invalid value for 'temperature': must be between 0 and 2, got 2.5."),
    ("top_p", 1.5, "Invalid value for 'top_p': must be between 0 and 1, got 1.5."),
    (
        "max_tokens",
        "1024",
        "Invalid type for 'max_tokens': expected an integer, but got a string instead.",
    ),
)


def _error_object(kind: ErrorKind, model: str, family: str, rng: random.Random) -> dict:
    """What the upstream (or the gateway) answered, worded as each vendor does."""
    param = None
    if kind.code == "rate_limit_exceeded":
        limit = rng.choice((30_000, 200_000, 800_000, 2_000_000))
        used = limit - rng.randint(0, limit // 50)
        wait = rng.randint(2, 90) / 10
        message = (
            f"Rate limit reached for {model} on tokens per min (TPM): Limit {limit}, "
            f"Used {used}, Requested {rng.randint(300, 9000)}. Please try again in {wait}s."
        )
    elif kind.code == "context_length_exceeded":
        window = 200_000 if family == "anthropic" else 128_000
        message = (
            f"This model's maximum context length is {window} tokens. However, your messages "
            f"resulted in {window + rng.randint(1, 40_000)} tokens. Please reduce the length "
            "of the messages."
        )
    elif kind.code == "invalid_value":
        param, _, message = rng.choice(INVALID_VALUES)
    elif kind.code == "invalid_api_key":
        # Upstream refused the gateway's channel key: a rotation went wrong.
        # The key is masked the way OpenAI masks it, so nothing here is secret.
        message = "Incorrect API key provided: sk-proj-****" + "".join(
            rng.choices(string.ascii_letters + string.digits, k=4)
        )
    elif kind.code == "internal_error":
        message = "The server had an error while processing your request. Sorry about that!"
    elif kind.code == "bad_gateway":
        message = (
            "upstream connect error or disconnect/reset before headers. "
            "reset reason: connection termination"
        )
    elif kind.code == "overloaded":
        message = (
            "Overloaded"
            if family == "anthropic"
            else "The engine is currently overloaded, please try again later."
        )
    else:
        message = "Upstream did not answer within 60 s; the gateway gave up."
    error: dict[str, Any] = {"type": kind.type, "code": kind.code, "message": message}
    if param is not None:
        error["param"] = param
    return error


# --- what people send ------------------------------------------------------------------------

# (theme, system prompt or "", user message, assistant answer)
CHAT_SCRIPTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "robotics",
        "You are a maintenance assistant for industrial robot arms. Answer briefly.",
        "Arm R-7 on line 3 logs 'E-204 joint 4 overcurrent' about twice per shift since Monday. "
        "What should the technician check first?",
        "Start with joint 4 itself: a steady E-204 rate usually means mechanical drag, not a "
        "failing drive. 1) Check the payload settings match the new gripper. 2) Inspect the J4 "
        "cable for wear near the wrist. 3) Run the friction test from the service menu and "
        "compare it with the commissioning baseline.",
    ),
    (
        "robotics",
        "Translate technical notices into German for the Stuttgart plant.",
        "Emergency stop must be reset at the cell controller before restarting the conveyor.",
        "Der Not-Halt muss am Zellen-Controller zurückgesetzt werden, bevor das Förderband "
        "wieder gestartet wird.",
    ),
    (
        "robotics",
        "",
        "Summarise this shift report in three bullet points: 412 picks, 3 mis-grips on SKU "
        "88-114 (shiny packaging), vision recalibrated 14:20, no safety events, conveyor B "
        "slowed to 80% after 16:00 for belt tracking.",
        "- 412 picks; 3 mis-grips, all on SKU 88-114 (reflective packaging).\n"
        "- Vision recalibrated at 14:20; no safety events.\n"
        "- Conveyor B ran at 80% from 16:00 for belt tracking.",
    ),
    (
        "research",
        "You extract structured data from scientific abstracts. Reply with JSON only.",
        "Abstract: We report a perovskite solar cell with a certified efficiency of 24.1% that "
        "retains 95% of its initial output after 1,000 h at 85 C under one-sun illumination.",
        '{"material": "perovskite", "efficiency_pct": 24.1, "retention_pct": 95, '
        '"test_hours": 1000, "temperature_c": 85}',
    ),
    (
        "research",
        "You are a careful lab assistant.",
        "Suggest three follow-up experiments to separate thermal from photo-induced "
        "degradation in our perovskite cells.",
        "1. Age matched cells at 85 C in the dark and under light; compare the decay rates.\n"
        "2. Light-soak at 25 C with active cooling to isolate photo effects.\n"
        "3. Track PbI2 formation with XRD at fixed intervals in both conditions.",
    ),
    (
        "research",
        "",
        "Rewrite for a grant reviewer, max 60 words: our method makes the catalyst cheaper "
        "because it uses less platinum and it also lasts longer in the tests we did.",
        "Our synthesis cuts platinum loading by 40% while extending catalyst lifetime in "
        "accelerated stress tests, lowering both the material cost and the replacement "
        "frequency of fuel-cell stacks.",
    ),
    (
        "office",
        "You write replies for the billing support team. Be polite and concise.",
        "Draft a reply to a customer asking why invoice INV-20931 shows two charges for October.",
        "Thank you for pointing this out. Invoice INV-20931 lists October twice because a "
        "plan change on 14 October was billed pro rata: the first line covers 1-13 October on "
        "the old plan, the second 14-31 October on the new one. You have not been charged twice.",
    ),
    (
        "office",
        "",
        "Turn these notes into action items with owners: Bill wants TPS cover sheets on all "
        "reports from Monday; Peter to update the template; Michael checks the printer driver.",
        "- Peter: update the TPS report template with the new cover sheet (before Monday).\n"
        "- Michael: fix the printer driver so cover sheets print.\n"
        "- Everyone: attach a cover sheet to every TPS report from Monday.",
    ),
    (
        "office",
        "Classify the sentiment of customer feedback as positive, negative or mixed.",
        "Arrived two days late but the software works great and support was friendly.",
        "mixed",
    ),
    (
        "general",
        "",
        "Explain the difference between a mutex and a semaphore in two sentences.",
        "A mutex lets exactly one thread hold a lock and must be released by the thread that "
        "took it. A semaphore is a counter that lets up to N holders in at once and can be "
        "signalled by any thread.",
    ),
    (
        "general",
        "You are a senior data engineer.",
        "Write a SQL query returning the 10 customers with the highest total order value in 2024.",
        "SELECT c.id, c.name, SUM(o.total) AS order_value\nFROM customers c\nJOIN orders o ON "
        "o.customer_id = c.id\nWHERE o.created_at >= '2024-01-01' AND o.created_at < "
        "'2025-01-01'\nGROUP BY c.id, c.name\nORDER BY order_value DESC\nLIMIT 10;",
    ),
    (
        "general",
        "",
        "What's a good name for an internal tool that shows API usage per team?",
        "A few options: Meter, Tally, Ledger, or Gauge. 'Ledger' suggests exact accounting; "
        "'Gauge' suggests live monitoring.",
    ),
)

CODE_SCRIPTS = (
    (
        'def parse_duration(text: str) -> int:\n    """Seconds in an ISO 8601 duration like '
        'PT1H30M."""\n',
        "    match = re.fullmatch(r'PT(?:(\\d+)H)?(?:(\\d+)M)?(?:(\\d+)S)?', text)\n"
        "    if not match:\n        raise ValueError(text)\n"
        "    h, m, s = (int(g or 0) for g in match.groups())\n    return h * 3600 + m * 60 + s\n",
    ),
    (
        "export function debounce<T extends (...args: any[]) => void>(fn: T, ms: number) {\n",
        "  let timer: ReturnType<typeof setTimeout> | undefined;\n  return (...args: "
        "Parameters<T>) => {\n    clearTimeout(timer);\n    timer = setTimeout(() => "
        "fn(...args), ms);\n  };\n}\n",
    ),
    (
        "class RetryPolicy:\n    def delay(self, attempt: int) -> float:\n",
        "        return min(self.max_delay, self.base * 2 ** attempt) * (0.5 + random.random() / "
        "2)\n",
    ),
    (
        "func (s *Store) Get(ctx context.Context, id string) (*Item, error) {\n",
        "\trow := s.db.QueryRowContext(ctx, `SELECT id, name FROM items WHERE id = $1`, id)\n"
        "\tvar it Item\n\tif err := row.Scan(&it.ID, &it.Name); err != nil {\n\t\treturn nil, "
        "err\n\t}\n\treturn &it, nil\n}\n",
    ),
)

EMBEDDING_INPUTS = (
    "Joint 4 overcurrent (E-204): check payload configuration, cable wear and friction.",
    "Perovskite degradation pathways under combined heat and light stress.",
    "Refund policy: annual plans are refunded pro rata within 30 days of renewal.",
    "How to rotate an API key without downtime.",
    "Quarterly TPS report cover sheet requirements, revised.",
)
IMAGE_PROMPTS = (
    "Isometric illustration of a friendly robot arm sorting parcels, flat pastel colours",
    "Product photo of a matte black fuel-cell stack on a white background",
    "Line-art icon of a stapler, red, minimal",
    "Watercolour of a lab bench at sunrise with glassware and a laptop",
)
SPEECH_TEXTS = (
    "Your order has shipped and will arrive on Thursday.",
    "Welcome to the Acme support line. Please say the serial number of your robot.",
    "Reminder: the quarterly review starts in fifteen minutes in room 4B.",
)
RERANK_QUERIES = (
    ("how do I reset the emergency stop", 6),
    ("thermal stability of perovskite cells", 12),
    ("refund for annual plan", 4),
)
# Users paste credentials into prompts and clients send them in odd places.
# These are fake, but shaped like real keys, so redaction has work to do.
LEAK_PROMPTS = (
    'Why does this fail with 401? client = OpenAI(api_key="{key}")',
    "Our .env has OPENAI_API_KEY={key} - is it OK to commit it to the repo?",
)
LEAK_ANSWER = (
    "Do not commit it: anyone who can read the repository can use that key. Revoke it now, "
    "create a new one, keep it in an environment variable or a secret manager, and add .env "
    "to .gitignore."
)
LEAK_SHARE = 0.03


def _fake_key(rng: random.Random, kind: str) -> str:
    alphabet = string.ascii_letters + string.digits
    if kind == "github":
        return "ghp_" + "".join(rng.choices(alphabet, k=36))
    return "sk-proj-" + "".join(rng.choices(alphabet + "_-", k=48))


# --- arrival times ------------------------------------------------------------------------------


def _bucket_weights(start: datetime, hours: int, role: Role, utc_offset: int) -> list[float]:
    """Relative traffic of each hour of the demo period for one key: its
    customer's local daily rhythm, quieter weekends, and slow growth over the
    period (a gateway's usage rarely stands still)."""
    weights = []
    for bucket in range(hours):
        local = start + timedelta(hours=bucket + 0.5 + utc_offset)
        weight = role.hours[local.hour] * (role.weekend if local.weekday() >= 5 else 1.0)
        weights.append(weight * (0.8 + 0.4 * bucket / hours))
    return weights


def _arrival_offsets(
    rng: random.Random, n: int, gaps: tuple[float, ...], cumulative: list[float], span_ms: int
) -> list[int]:
    """``n`` arrival times in ms after the start of the period.

    The trace's own gaps (from a random place in it) give the spacing, so the
    calls come in the trace's bursts and lulls; mapping that "trace time"
    through the inverse of the cumulative hourly weights then stretches it
    over the period, denser where the daily rhythm is busy.
    """
    begin = rng.randrange(len(gaps))
    moments = list(itertools.accumulate(gaps[(begin + j) % len(gaps)] for j in range(n + 1)))
    total_trace, total_weight = moments[-1], cumulative[-1]
    bucket_ms = span_ms / (len(cumulative) - 1)
    offsets = []
    for moment in moments[:-1]:
        target = moment / total_trace * total_weight
        bucket = max(bisect.bisect_right(cumulative, target) - 1, 0)
        width = cumulative[bucket + 1] - cumulative[bucket]
        within = (target - cumulative[bucket]) / width if width else 0.0
        offsets.append(min(int((bucket + within) * bucket_ms), span_ms - 1))
    return offsets


# --- the generator -------------------------------------------------------------------------------


@dataclass
class _Incident:
    """An upstream having a bad hour: its calls fail far more often."""

    upstream: str
    start_ms: int
    end_ms: int
    status: int


@dataclass
class _Run:
    seed: int
    rng: random.Random
    now: datetime
    span_ms: int
    run_id: str
    incidents: list[_Incident] = field(default_factory=list)


def iter_calls(
    seed: int, count: int, now: datetime, *, days: int = DEFAULT_DAYS
) -> Iterator[dict[str, Any]]:
    """``count`` demo call records in the ingest format, oldest first, one at a time.

    All created between ``now - days`` and ``now`` (exclusive), as UTC
    ISO 8601 strings with a ``Z``. Deterministic: the same ``(seed, count,
    now, days)`` always yields the same records; nothing reads the clock or
    the global ``random`` state. The request ids embed a digest of all four,
    so a later run adds new calls instead of clashing with earlier ones,
    while an identical run replays harmlessly (ingest counts it as already
    present).
    """
    # Checked here, not in the generator below, so a bad call fails at once
    # rather than at the first next().
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return _iter_calls(seed, count, now.astimezone(UTC), days)


def _iter_calls(seed: int, count: int, now: datetime, days: int) -> Iterator[dict[str, Any]]:
    run_id = hashlib.sha256(f"{seed}|{count}|{days}|{now.isoformat()}".encode()).hexdigest()[:8]
    run = _Run(seed, random.Random(seed), now, days * 86_400_000, run_id)
    rng = run.rng
    keys = demo_keys(seed)
    start = now - timedelta(days=days)

    # How many calls each key makes: accounts by weight, keys within accounts by weight.
    key_weights = [
        key.account.weight * key.spec.weight / sum(k.weight for k in key.account.keys)
        for key in keys
    ]
    per_key = Counter(rng.choices(range(len(keys)), weights=key_weights, k=count))

    arrivals: list[tuple[int, int]] = []
    for index, key in enumerate(keys):
        if not per_key[index]:
            continue
        role = ROLES[key.spec.role]
        weights = _bucket_weights(start, days * 24, role, key.account.utc_offset)
        cumulative = [0.0, *itertools.accumulate(weights)]
        # Coding keys arrive like the coding service, the rest like the chat service.
        gaps = load_trace("code" if key.spec.role == "coding" else "conv").gaps
        for offset in _arrival_offsets(rng, per_key[index], gaps, cumulative, run.span_ms):
            arrivals.append((offset, index))
    arrivals.sort()

    for _ in range(2):
        upstream = rng.choice(("azure-eastus-2", "anthropic-direct", "together-ai"))
        begin = rng.randrange(run.span_ms)
        length = rng.randint(20, 90) * 60_000
        run.incidents.append(_Incident(upstream, begin, begin + length, rng.choice((502, 503))))

    for number, (offset, index) in enumerate(arrivals):
        yield _make_call(run, number, offset, keys[index])


def generate_calls(
    seed: int, count: int, now: datetime, *, days: int = DEFAULT_DAYS
) -> list[dict[str, Any]]:
    """``iter_calls`` as a list (fine for tests and small runs)."""
    return list(iter_calls(seed, count, now, days=days))


def _pick(rng: random.Random, table: tuple[tuple[str, Any], ...]) -> str:
    return rng.choices([name for name, _ in table], weights=[w for _, w in table])[0]


def _make_call(run: _Run, number: int, offset_ms: int, key: DemoKey) -> dict[str, Any]:
    rng = run.rng
    role = ROLES[key.spec.role]
    call_type = _pick(rng, role.call_types)
    if call_type == "chat":
        model = MODELS[_pick(rng, key.account.chat_models)]
    else:
        model = MODELS[_pick(rng, OTHER_MODELS[call_type])]
    upstream = _pick(rng, model.upstreams)
    created_at = run.now - timedelta(milliseconds=run.span_ms - offset_ms)

    if call_type == "chat":
        stream = rng.random() < role.stream_share
    elif call_type == "completion":
        stream = rng.random() < role.stream_share / 2
    else:
        stream = False

    input_tokens, output_tokens = _tokens(rng, call_type)
    request, response = _payload(rng, key, model, stream, input_tokens, output_tokens)

    # The gateway sends the customer's key upstream as a bearer token (or, for
    # Anthropic-style clients, as x-api-key); ingest must strip it.
    if model.family == "anthropic" and rng.random() < 0.3:
        request["headers"] = {"x-api-key": key.secret, "anthropic-version": "2023-06-01"}
    else:
        request["headers"] = {"Authorization": f"Bearer {key.secret}"}
    request["headers"] |= {"Content-Type": "application/json", "User-Agent": key.spec.user_agent}

    record: dict[str, Any] = {
        "request_id": f"req_demo{run.seed}_{run.run_id}_{number:08d}",
        "created_at": created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "api_key": key.prefix,
        "group": key.spec.group,
        "call_type": call_type,
        "model": model.name,
        "endpoint": model.endpoint,
        "stream": stream,
        "client_ip": rng.choice(key.spec.client_ips),
        "upstream": upstream,
        "request": request,
    }

    error_kind = _error_kind(run, offset_ms, upstream, model)
    if error_kind is not None:
        error = _error_object(error_kind, model.name, model.family, rng)
        if "param" in error:
            # The request must show the bad value the upstream complained about.
            bad = next(value for name, value, _ in INVALID_VALUES if name == error["param"])
            request["params"][error["param"]] = bad
        record |= {
            "status_code": error_kind.status,
            "error_reason": f"{error['code']}: {error['message']}"[:255],
            "duration_ms": rng.randint(*error_kind.duration_ms),
            "ttft_ms": None,
            "input_tokens": 0,
            "output_tokens": 0,
            "total_tokens": 0,
            "usage": "0",
            "cost": "0",
            "response": None,
            "error": error,
        }
        return record

    duration_ms, ttft_ms = _timing(rng, model, input_tokens, output_tokens)
    cost = _cost(model, input_tokens, output_tokens, _RATIOS[key.spec.group])
    usage = (cost * USAGE_UNITS_PER_USD).quantize(_USAGE_QUANTUM, ROUND_HALF_UP)
    record |= {
        "status_code": 200,
        "error_reason": "",
        "duration_ms": duration_ms,
        "ttft_ms": ttft_ms if stream else None,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "usage": format(usage, "f"),
        "cost": format(cost, "f"),
        "response": response,
        "error": None,
    }
    return record


def _error_kind(run: _Run, offset_ms: int, upstream: str, model: ModelSpec) -> ErrorKind | None:
    rng = run.rng
    for incident in run.incidents:
        hit = incident.upstream == upstream and incident.start_ms <= offset_ms < incident.end_ms
        if hit and rng.random() < 0.4:
            return _ERRORS_BY_STATUS[incident.status]
    if rng.random() >= ERROR_RATE:
        return None
    kinds = ERROR_KINDS
    if model.call_type not in ("chat", "completion"):
        # Context windows and sampling parameters belong to text generation.
        kinds = tuple(k for k in kinds if k.status != 400)
    weights = [
        k.weight * (3 if model.family == "anthropic" and k.status == 503 else 1) for k in kinds
    ]
    return rng.choices(kinds, weights=weights)[0]


def _tokens(rng: random.Random, call_type: str) -> tuple[int, int]:
    """Token counts from real requests: chat from the conversation service,
    completions from the coding service; others use the prompt side only, or
    small counts where that is what such calls have."""
    if call_type == "chat":
        return rng.choice(load_trace("conv").tokens)
    if call_type == "completion":
        return rng.choice(load_trace("code").tokens)
    if call_type == "embedding":
        # Embedding models take at most 8,191 tokens; clients chunk to fit.
        return min(rng.choice(load_trace("conv").tokens)[0], 8191), 0
    if call_type == "moderation":
        return min(rng.choice(load_trace("conv").tokens)[0], 4000), 0
    if call_type == "image":
        return rng.randint(12, 90), 0
    if call_type == "audio":
        # Speech: text tokens in, audio tokens out (about 20 per second of speech).
        text_tokens = rng.randint(12, 300)
        return text_tokens, int(text_tokens * rng.uniform(5.5, 7.5))
    return rng.randint(200, 4000), 0  # rerank: query plus documents


def _timing(
    rng: random.Random, model: ModelSpec, input_tokens: int, output_tokens: int
) -> tuple[int, int]:
    """Duration and time to first token: prefill grows with input tokens,
    generation with output tokens at the model's speed; both vary with load,
    and now and then a call waits in an upstream queue."""
    prefill = (model.overhead_ms + input_tokens * model.input_ms_per_1k / 1000) * (
        rng.lognormvariate(0, 0.25)
    )
    if rng.random() < 0.012:
        prefill *= rng.uniform(4, 12)
    speed = rng.uniform(*model.output_tps) * rng.lognormvariate(0, 0.15)
    if rng.random() < 0.005:
        speed /= rng.uniform(2, 4)
    generation = output_tokens * 1000 / speed
    ttft = max(int(prefill), 1)
    return ttft + int(generation), ttft


def _cost(model: ModelSpec, input_tokens: int, output_tokens: int, ratio: Decimal) -> Decimal:
    base = (input_tokens * model.input_per_m + output_tokens * model.output_per_m) / _MILLION
    return ((base + model.per_request) * ratio).quantize(_COST_QUANTUM, ROUND_HALF_UP)


def _payload(
    rng: random.Random,
    key: DemoKey,
    model: ModelSpec,
    stream: bool,
    input_tokens: int,
    output_tokens: int,
) -> tuple[dict[str, Any], Any]:
    """Request params and body and the response, shaped like the real API's.
    A chat's messages are about as long as its input tokens (a conversation
    history before the question, ~4 characters a token, up to
    ``PROMPT_MAX_CHARS``) and its answer as long as its output tokens; a
    streamed answer is stored as the stream of chunks the client received."""
    call_id = "".join(rng.choices(string.ascii_letters + string.digits, k=24))
    usage = {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    params: dict[str, Any] = {"model": model.name}
    ct = model.call_type

    if ct == "chat":
        scripts = [s for s in CHAT_SCRIPTS if s[0] in key.account.themes]
        _, system, user, answer = rng.choice(scripts)
        leak = (
            rng.choice(("prompt", "prompt", "body", "metadata"))
            if rng.random() < LEAK_SHARE
            else ""
        )
        if leak == "prompt":
            user = rng.choice(LEAK_PROMPTS).format(key=_fake_key(rng, "openai"))
            answer = LEAK_ANSWER
        max_tokens = next((m for m in (256, 512, 1024, 2048, 4096) if m >= output_tokens), None)
        params |= {"temperature": rng.choice((0, 0.2, 0.7, 1.0)), "stream": stream}
        if max_tokens is not None and rng.random() < 0.7:
            params["max_tokens"] = max_tokens
        if rng.random() < 0.3:
            params["top_p"] = rng.choice((0.9, 0.95, 1.0))
        if stream:
            params["stream_options"] = {"include_usage": True}
        messages = _conversation(rng, scripts, system, user, input_tokens)
        answer = _as_long_as(rng, answer, scripts, output_tokens, ANSWER_MAX_CHARS)
        body: dict[str, Any] = {"messages": messages}
        # Misconfigured SDK wrappers put keys in the body.
        if leak == "body":
            body["api_key"] = _fake_key(rng, "openai")
        elif leak == "metadata":
            body["metadata"] = {"github_token": _fake_key(rng, "github")}
        finish = "length" if params.get("max_tokens") == output_tokens else "stop"
        if stream:
            response = _chunks(call_id, model.name, answer, finish, usage)
        else:
            response = {
                "id": f"chatcmpl-{call_id}",
                "object": "chat.completion",
                "model": model.name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": finish,
                    }
                ],
                "usage": usage,
            }
    elif ct == "completion":
        prompt, completion = rng.choice(CODE_SCRIPTS)
        params |= {"temperature": 0.2, "max_tokens": 2048, "stream": stream}
        body = {"prompt": prompt}
        if model.endpoint.endswith("/fim/completions"):
            body["suffix"] = "\n"
        response = {
            "id": f"cmpl-{call_id}",
            "object": "text_completion",
            "model": model.name,
            "choices": [{"index": 0, "text": completion, "finish_reason": "stop"}],
            "usage": usage,
        }
    elif ct == "embedding":
        dims = 1536 if model.name.endswith("small") else 3072
        params |= {"encoding_format": "float"}
        body = {"input": [rng.choice(EMBEDDING_INPUTS)]}
        response = {
            "object": "list",
            "model": model.name,
            "data": [{"object": "embedding", "index": 0, "embedding_dims": dims}],
            "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens},
        }
    elif ct == "image":
        params |= {"size": rng.choice(("1024x1024", "1792x1024")), "quality": "standard", "n": 1}
        prompt = rng.choice(IMAGE_PROMPTS)
        body = {"prompt": prompt}
        response = {
            "created": 1_700_000_000 + rng.randrange(10**8),
            "data": [
                {
                    "url": f"https://images.example.net/demo/img-{call_id}.png",
                    "revised_prompt": prompt + ", high detail",
                }
            ],
        }
    elif ct == "audio":
        params |= {"voice": rng.choice(("alloy", "nova", "onyx")), "response_format": "mp3"}
        body = {"input": rng.choice(SPEECH_TEXTS)}
        response = {"content_type": "audio/mpeg", "bytes": output_tokens * 160}
    elif ct == "moderation":
        body = {"input": rng.choice([s[2] for s in CHAT_SCRIPTS])}
        response = {
            "id": f"modr-{call_id}",
            "model": model.name,
            "results": [{"flagged": False, "categories": {"harassment": False, "violence": False}}],
        }
    else:
        query, documents = rng.choice(RERANK_QUERIES)
        params |= {"top_n": 3}
        body = {"query": query, "documents": [f"doc-{i}" for i in range(documents)]}
        picks = rng.sample(range(documents), 3)
        scores = sorted((round(rng.uniform(0.2, 0.99), 3) for _ in picks), reverse=True)
        response = {
            "id": call_id,
            "results": [
                {"index": i, "relevance_score": s} for i, s in zip(picks, scores, strict=True)
            ],
        }
    return {"params": params, "body": body}, response


# A token is about four characters of English text.
CHARS_PER_TOKEN = 4
# Prompts and answers as long as their tokens, up to these (well under the
# 64 KB a stored payload part keeps): ~6,000 and ~3,000 tokens.
PROMPT_MAX_CHARS = 24_000
ANSWER_MAX_CHARS = 12_000
STREAM_MAX_CHUNKS = 40


def _conversation(
    rng: random.Random, scripts: list, system: str, user: str, input_tokens: int
) -> list[dict[str, str]]:
    """The messages of a chat whose text is about ``input_tokens`` long: the
    question after a conversation history (earlier turns of the same themes)."""
    target = min(input_tokens * CHARS_PER_TOKEN, PROMPT_MAX_CHARS)
    used = len(system) + len(user)
    history: list[dict[str, str]] = []
    while used < target:
        _, _, earlier_question, earlier_answer = rng.choice(scripts)
        for role, text in (("user", earlier_question), ("assistant", earlier_answer)):
            piece = text[: max(0, target - used)]
            if piece:
                history.append({"role": role, "content": piece})
                used += len(piece)
    system_message = [{"role": "system", "content": system}] if system else []
    return [*system_message, *history, {"role": "user", "content": user}]


def _as_long_as(rng: random.Random, text: str, scripts: list, tokens: int, most: int) -> str:
    """``text``, continued with other answers of the same themes, about ``tokens`` long."""
    target = min(tokens * CHARS_PER_TOKEN, most)
    if target <= len(text):
        return text
    parts, used = [text], len(text)
    while used < target:
        more = rng.choice(scripts)[3]
        parts.append(more)
        used += len(more) + 2
    return "\n\n".join(parts)[:target]


def _chunks(call_id: str, model: str, answer: str, finish: str, usage: dict) -> list[dict]:
    """A streamed answer as the client received it: chunks of its text, then
    the finish reason, then the usage (``stream_options.include_usage``)."""
    size = max(24, -(-len(answer) // STREAM_MAX_CHUNKS))
    base = {"id": f"chatcmpl-{call_id}", "object": "chat.completion.chunk", "model": model}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"content": answer[i : i + size]}}]}
        for i in range(0, len(answer), size)
    ]
    chunks[:0] = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append({**base, "choices": [], "usage": usage})
    return chunks


# --- creating the world --------------------------------------------------------------------------


@dataclass
class DemoWorld:
    """What ``ensure_demo_world`` found or made."""

    accounts: list[Account]
    # Prefix a record of this seed names -> prefix of the key actually stored
    # under that account and name (differs when another seed created it).
    prefixes: dict[str, str]
    revoked_at: dict[str, datetime]  # stored prefix -> when, for revoked keys
    created: Counter = field(default_factory=Counter)


@transaction.atomic
def ensure_demo_world(seed: int, *, since: datetime) -> DemoWorld:
    """Create the demo groups, accounts and keys that do not exist yet.

    Idempotent: groups are found by name, accounts by slug and keys by
    (account, name), so a second run creates nothing. Keys that already exist
    are reused whatever secret they were made with; ``prefixes`` tells the
    caller which stored key stands for each of this seed's keys. New objects
    are back-dated to before ``since`` so no call predates its key.
    """
    created: Counter = Counter()
    groups = {}
    for spec in GROUPS:
        groups[spec.name], made = Group.objects.get_or_create(
            name=spec.name,
            defaults={"price_ratio": spec.price_ratio, "description": spec.description},
        )
        created["groups"] += made

    accounts = []
    prefixes: dict[str, str] = {}
    revoked_at: dict[str, datetime] = {}
    by_account: dict[str, list[DemoKey]] = {}
    for key in demo_keys(seed):
        by_account.setdefault(key.account.slug, []).append(key)
    for account_number, spec in enumerate(ACCOUNTS):
        account, made = Account.objects.get_or_create(slug=spec.slug, defaults={"name": spec.name})
        if made:
            created["accounts"] += 1
            Account.objects.filter(pk=account.pk).update(
                created_at=since - timedelta(days=60 + 7 * account_number)
            )
        accounts.append(account)
        existing = {k.name: k for k in ApiKey.objects.filter(account=account)}
        for key_number, key in enumerate(by_account[spec.slug]):
            stored = existing.get(key.spec.name)
            if stored is None:
                stored = create_api_key(
                    account=account,
                    name=key.spec.name,
                    group=groups[key.spec.group],
                    secret=key.secret,
                ).api_key
                ApiKey.objects.filter(pk=stored.pk).update(
                    created_at=since - timedelta(days=14 - key_number, hours=3 * key_number)
                )
                created["keys"] += 1
            prefixes[key.prefix] = stored.prefix
            if stored.revoked_at is not None:
                revoked_at[stored.prefix] = stored.revoked_at
    return DemoWorld(accounts=accounts, prefixes=prefixes, revoked_at=revoked_at, created=created)
