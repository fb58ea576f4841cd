"""Source tables built from their documented schemas, filled with realistic rows.

new-api's ``logs`` table as gorm creates it (``model/log.go``) on SQLite and
PostgreSQL, one-api's without group, ip and other, and dumps of either as CSV
and JSON Lines. The odd rows every real history has are in ``odd_rows``.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

NEWAPI_COLUMNS = (
    "id",
    "user_id",
    "created_at",
    "type",
    "content",
    "username",
    "token_name",
    "model_name",
    "quota",
    "prompt_tokens",
    "completion_tokens",
    "use_time",
    "is_stream",
    "channel_id",
    "token_id",
    "group",
    "ip",
    "other",
)
ONEAPI_COLUMNS = tuple(c for c in NEWAPI_COLUMNS if c not in ("group", "ip", "other", "use_time"))
ONEAPI_COLUMNS += ("elapsed_time",)

NEWAPI_SQLITE_DDL = (
    "CREATE TABLE `logs` (`id` integer PRIMARY KEY AUTOINCREMENT, `user_id` integer, "
    "`created_at` bigint, `type` integer, `content` text, `username` text DEFAULT '', "
    "`token_name` text DEFAULT '', `model_name` text DEFAULT '', `quota` integer DEFAULT 0, "
    "`prompt_tokens` integer DEFAULT 0, `completion_tokens` integer DEFAULT 0, "
    "`use_time` integer DEFAULT 0, `is_stream` numeric DEFAULT false, `channel_id` integer, "
    "`token_id` integer DEFAULT 0, `group` text, `ip` text DEFAULT '', `other` text)"
)
NEWAPI_POSTGRES_DDL = (
    "CREATE TABLE logs (id bigserial PRIMARY KEY, user_id bigint, created_at bigint, type bigint, "
    "content text, username text DEFAULT '', token_name text DEFAULT '', "
    "model_name text DEFAULT '', quota bigint DEFAULT 0, prompt_tokens bigint DEFAULT 0, "
    "completion_tokens bigint DEFAULT 0, use_time bigint DEFAULT 0, is_stream boolean DEFAULT "
    "false, channel_id bigint, token_id bigint DEFAULT 0, \"group\" text, ip text DEFAULT '', "
    "other text)"
)
ONEAPI_SQLITE_DDL = (
    "CREATE TABLE `logs` (`id` integer PRIMARY KEY AUTOINCREMENT, `user_id` integer, "
    "`created_at` bigint, `type` integer, `content` text, `username` text DEFAULT '', "
    "`token_name` text DEFAULT '', `model_name` text DEFAULT '', `quota` integer DEFAULT 0, "
    "`prompt_tokens` integer DEFAULT 0, `completion_tokens` integer DEFAULT 0, "
    "`channel_id` integer, `token_id` integer DEFAULT 0, `elapsed_time` integer DEFAULT 0, "
    "`is_stream` numeric DEFAULT false)"
)

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "text-embedding-3-small", "deepseek-chat")
USERS = {1: "alice", 2: "bob", 3: "carol"}
TOKENS = {11: (1, "alice-prod"), 12: (1, "alice-dev"), 21: (2, "bob-main"), 31: (3, "ci")}
START = 1_767_225_600  # 2026-01-01 00:00:00 UTC, months before the tests' pinned clock


def realistic_rows(count: int, *, seed: int = 7, start_id: int = 1) -> list[dict[str, Any]]:
    """new-api log rows: mostly consume (type 2), some errors (5), top-ups (1) and
    management entries (3), over a few months."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        row_id = start_id + n
        token_id = rng.choice(list(TOKENS))
        user_id, token_name = TOKENS[token_id]
        created = START + n * 137 + rng.randrange(100)
        kind = rng.choices((2, 5, 1, 3), weights=(90, 4, 3, 3))[0]
        model = rng.choice(MODELS)
        prompt, completion = rng.randrange(1, 4000), rng.randrange(0, 800)
        row: dict[str, Any] = {c: None for c in NEWAPI_COLUMNS}
        row.update(
            id=row_id,
            user_id=user_id,
            created_at=created,
            type=kind,
            username=USERS[user_id],
            token_name="",
            model_name="",
            quota=0,
            prompt_tokens=0,
            completion_tokens=0,
            use_time=0,
            is_stream=False,
            channel_id=0,
            token_id=0,
            group="",
            ip="",
            other="",
            content="",
        )
        if kind == 1:
            row.update(content="通过兑换码充值 $10.00 额度", quota=5_000_000)
        elif kind == 3:
            row.update(content="管理员将用户额度从 $1 修改为 $5")
        else:
            other = {
                "model_ratio": 2.5,
                "group_ratio": 1,
                "completion_ratio": 4,
                "frt": rng.randrange(100, 900),
                "cache_tokens": rng.randrange(0, prompt),
                "admin_info": {"use_channel": [str(rng.randrange(1, 4))]},
            }
            row.update(
                token_id=token_id,
                token_name=token_name,
                model_name=model,
                use_time=rng.randrange(1, 30),
                is_stream=rng.random() < 0.5,
                channel_id=rng.randrange(1, 4),
                group=rng.choice(("default", "vip")),
                ip=f"203.0.113.{rng.randrange(1, 250)}",
            )
            if kind == 2:
                row.update(
                    quota=(prompt + completion * 4) * 5 // 2,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    content="模型倍率 2.50\uff0c补全倍率 4.00\uff0c分组倍率 1.00",
                )
            else:
                other.update(status_code=429, error_type="upstream_error", error_code="rate_limit")
                row.update(content="当前分组上游负载已饱和\uff0c请稍后再试\nrequest id: abc")
            row["other"] = json.dumps(other, ensure_ascii=False)
        rows.append(row)
    return rows


def odd_rows(start_id: int) -> list[dict[str, Any]]:
    """Zero tokens, a huge ``other``, a user gone from the users table (only the
    log row names them), a call without a token, no other at all."""
    base = realistic_rows(1, seed=start_id)[0]
    base.update(type=2, token_id=11, token_name="alice-prod", model_name="gpt-4o-mini", user_id=1)
    zero = dict(base, id=start_id, prompt_tokens=0, completion_tokens=0, quota=0)
    huge = dict(
        base,
        id=start_id + 1,
        other=json.dumps(
            {"frt": 120, "log": "x" * 300_000, "nested": [{"a": i} for i in range(2000)]}
        ),
    )
    gone = dict(
        base, id=start_id + 2, user_id=99, username="", token_id=991, token_name="deleted-user-key"
    )
    no_token = dict(base, id=start_id + 3, token_id=0, token_name="")
    no_other = dict(base, id=start_id + 4, other="", group="")
    return [zero, huge, gone, no_token, no_other]


def write_newapi_sqlite(path: Path, rows: list[dict[str, Any]], *, invalid_utf8_ids=()) -> Path:
    """A new-api SQLite database holding ``rows``; the content of ``invalid_utf8_ids``
    rows is stored as bytes that are not UTF-8 (as a raw upstream error can be)."""
    db = sqlite3.connect(path)
    db.execute(NEWAPI_SQLITE_DDL)
    columns = ", ".join(f"`{c}`" for c in NEWAPI_COLUMNS)
    marks = ", ".join("?" for _ in NEWAPI_COLUMNS)
    db.executemany(
        f"INSERT INTO logs ({columns}) VALUES ({marks})",
        [tuple(row[c] for c in NEWAPI_COLUMNS) for row in rows],
    )
    for row_id in invalid_utf8_ids:
        db.execute(
            "UPDATE logs SET content = CAST(? AS TEXT) WHERE id = ?",
            (b"upstream said: \xff\xfe bad bytes", row_id),
        )
    db.commit()
    db.close()
    return path


def write_oneapi_sqlite(path: Path, rows: list[dict[str, Any]]) -> Path:
    db = sqlite3.connect(path)
    db.execute(ONEAPI_SQLITE_DDL)
    columns = ", ".join(f"`{c}`" for c in ONEAPI_COLUMNS)
    marks = ", ".join("?" for _ in ONEAPI_COLUMNS)
    db.executemany(
        f"INSERT INTO logs ({columns}) VALUES ({marks})",
        [
            tuple(
                row.get(c, row.get("use_time", 0) * 1000 if c == "elapsed_time" else None)
                for c in ONEAPI_COLUMNS
            )
            for row in rows
        ],
    )
    db.commit()
    db.close()
    return path


def write_csv(path: Path, rows: list[dict[str, Any]], columns=NEWAPI_COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: ("true" if v is True else "false" if v is False else v) for k, v in row.items()}
            )
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def source_sums(rows: list[dict[str, Any]], *, quota_per_usd: int = 500_000) -> dict:
    """(UTC day, model, token id) → calls, quota, prompt and completion tokens, errors,
    of the call rows (types 2 and 5), as the source counts them."""
    sums: dict = defaultdict(Counter)
    seen = set()
    for row in rows:
        if row["type"] not in (2, 5) or row["id"] in seen:
            continue
        seen.add(row["id"])
        day = datetime.fromtimestamp(row["created_at"], tz=UTC).date()
        token = str(row["token_id"]) if row["token_id"] else f"user-{row['user_id']}"
        slot = sums[(day, row["model_name"], token)]
        slot["calls"] += 1
        slot["quota"] += row["quota"]
        slot["input_tokens"] += row["prompt_tokens"]
        slot["output_tokens"] += row["completion_tokens"]
        slot["errors"] += row["type"] == 5
    return dict(sums)


def quota_cost(quota: int, quota_per_usd: int = 500_000) -> Decimal:
    return (Decimal(quota) / quota_per_usd).quantize(Decimal("0.00000001"))


# --- LiteLLM ------------------------------------------------------------------------

LITELLM_COLUMNS = (
    "request_id",
    "call_type",
    "api_key",
    "spend",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "startTime",
    "endTime",
    "completionStartTime",
    "model",
    "model_id",
    "model_group",
    "custom_llm_provider",
    "api_base",
    "user",
    "metadata",
    "cache_hit",
    "cache_key",
    "request_tags",
    "team_id",
    "end_user",
    "requester_ip_address",
    "messages",
    "response",
    "session_id",
    "status",
)
# As prisma migrates schema.prisma's model LiteLLM_SpendLogs on PostgreSQL.
LITELLM_POSTGRES_DDL = (
    'CREATE TABLE "LiteLLM_SpendLogs" ("request_id" TEXT NOT NULL, "call_type" TEXT NOT NULL, '
    '"api_key" TEXT NOT NULL DEFAULT \'\', "spend" DOUBLE PRECISION NOT NULL DEFAULT 0.0, '
    '"total_tokens" INTEGER NOT NULL DEFAULT 0, "prompt_tokens" INTEGER NOT NULL DEFAULT 0, '
    '"completion_tokens" INTEGER NOT NULL DEFAULT 0, "startTime" TIMESTAMP(3) NOT NULL, '
    '"endTime" TIMESTAMP(3) NOT NULL, "completionStartTime" TIMESTAMP(3), '
    "\"model\" TEXT NOT NULL DEFAULT '', \"model_id\" TEXT DEFAULT '', "
    "\"model_group\" TEXT DEFAULT '', \"custom_llm_provider\" TEXT DEFAULT '', "
    "\"api_base\" TEXT DEFAULT '', \"user\" TEXT DEFAULT '', \"metadata\" JSONB DEFAULT '{}', "
    "\"cache_hit\" TEXT DEFAULT '', \"cache_key\" TEXT DEFAULT '', "
    '"request_tags" JSONB DEFAULT \'[]\', "team_id" TEXT, "end_user" TEXT, '
    '"requester_ip_address" TEXT, "messages" JSONB DEFAULT \'{}\', '
    '"response" JSONB DEFAULT \'{}\', "session_id" TEXT, "status" TEXT, '
    'CONSTRAINT "LiteLLM_SpendLogs_pkey" PRIMARY KEY ("request_id"))'
)
LITELLM_SQLITE_DDL = (
    'CREATE TABLE "LiteLLM_SpendLogs" ('
    + ", ".join(
        f'"{c}" TEXT' if c != "request_id" else '"request_id" TEXT PRIMARY KEY'
        for c in LITELLM_COLUMNS
    )
    + ")"
)
KEY_HASHES = {f"{n:064x}": (f"team-{n % 3}" if n % 4 else None, f"key-{n}") for n in range(1, 9)}


def litellm_rows(count: int, *, seed: int = 5) -> list[dict[str, Any]]:
    """Spend-log rows: successes and failures, streamed and not, with and without a team."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        key_hash = rng.choice(list(KEY_HASHES))
        team, alias = KEY_HASHES[key_hash]
        start = datetime.fromtimestamp(START + n * 211 + rng.randrange(200), tz=UTC)
        streamed = rng.random() < 0.5
        seconds = rng.uniform(0.3, 20)
        end = start + timedelta(seconds=seconds)
        first = start + timedelta(seconds=seconds / 4) if streamed else end
        prompt, completion = rng.randrange(1, 3000), rng.randrange(0, 600)
        failed = rng.random() < 0.05
        metadata: dict[str, Any] = {
            "user_api_key_alias": alias,
            "user_api_key_team_alias": f"{team} alias" if team else None,
            "user_api_key_user_id": f"user-{rng.randrange(5)}",
            "spend_logs_metadata": None,
        }
        if failed:
            prompt = completion = 0
            metadata["error_information"] = {
                "error_code": "429",
                "error_class": "RateLimitError",
                "error_message": "litellm.RateLimitError: too many requests",
            }
        group = rng.choice(("gpt-4o", "claude-sonnet"))
        rows.append(
            {
                "request_id": f"chatcmpl-{seed}-{n:06d}",
                "call_type": "acompletion",
                "api_key": key_hash,
                "spend": 0.0 if failed else (prompt * 2.5e-06 + completion * 1e-05),
                "total_tokens": prompt + completion,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "startTime": start.replace(tzinfo=None),
                "endTime": end.replace(tzinfo=None),
                "completionStartTime": first.replace(tzinfo=None),
                "model": f"{group}-2024-08-06",
                "model_id": "deployment-1",
                "model_group": group,
                "custom_llm_provider": "openai",
                "api_base": "https://api.openai.com/v1",
                "user": "",
                "metadata": metadata,
                "cache_hit": "False",
                "cache_key": "",
                "request_tags": ["prod", "batch"] if n % 3 == 0 else [],
                "team_id": team,
                "end_user": f"customer-{n % 7}" if n % 2 else None,
                "requester_ip_address": "198.51.100.4",
                "messages": {},
                "response": {},
                "session_id": None,
                "status": "failure" if failed else "success",
            }
        )
    return rows


def litellm_as_text(row: dict[str, Any]) -> dict[str, Any]:
    """A row as a dump (or SQLite) holds it: times as text, JSON columns as JSON text."""
    return {
        k: v.isoformat(sep=" ")
        if isinstance(v, datetime)
        else json.dumps(v)
        if isinstance(v, dict | list)
        else v
        for k, v in row.items()
    }


def write_litellm_sqlite(path: Path, rows: list[dict[str, Any]]) -> Path:
    db = sqlite3.connect(path)
    db.execute(LITELLM_SQLITE_DDL)
    columns = ", ".join(f'"{c}"' for c in LITELLM_COLUMNS)
    marks = ", ".join("?" for _ in LITELLM_COLUMNS)
    db.executemany(
        f'INSERT INTO "LiteLLM_SpendLogs" ({columns}) VALUES ({marks})',
        [tuple(litellm_as_text(row)[c] for c in LITELLM_COLUMNS) for row in rows],
    )
    db.commit()
    db.close()
    return path


def litellm_sums(rows: list[dict[str, Any]]) -> dict:
    """(UTC day, model group, key hash) → calls, tokens and cost, as the spend logs count."""
    sums: dict = defaultdict(Counter)
    for row in rows:
        slot = sums[(row["startTime"].date(), row["model_group"], row["api_key"])]
        slot["calls"] += 1
        slot["input_tokens"] += row["prompt_tokens"]
        slot["output_tokens"] += row["completion_tokens"]
        slot["cost"] += Decimal(str(row["spend"])).quantize(Decimal("0.00000001"))
    return dict(sums)


def interrupted_after(batches: int) -> Callable[[Any], None]:
    """An ``on_batch`` for ``run_import`` that stops the run (as Ctrl-C would)
    once ``batches`` batches have been written and recorded."""
    seen = []

    def on_batch(outcome: Any) -> None:
        seen.append(outcome)
        if len(seen) == batches:
            raise KeyboardInterrupt

    return on_batch
