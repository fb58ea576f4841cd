#!/usr/bin/env python
"""Time ``import_history`` on a source of N rows (docs/benchmarks.md).

    python bench/import_history.py --format newapi --rows 1000000 \\
        --database-url postgres://root@127.0.0.1:5432/usagelogs_bench_import \\
        [--source sqlite|postgresql|csv|jsonl] [--workers N] [--batch-size N] [--profile N]

Builds the source first: new-api's (or one-api's) ``logs`` table, or
LiteLLM's ``LiteLLM_SpendLogs``, as a SQLite file, a PostgreSQL database
(``<target>_source`` on the same server) or a CSV / JSON Lines dump; rows
spread over the six months before this one, 50 users with 200 tokens, 92% calls,
4% errors, 4% top-ups and management entries; or, with ``--format jsonl``, this
project's own records (JSON Lines) for 200 keys of 50 accounts created first.
Then drops and recreates the target database (its name must contain
``bench``), migrates it, and runs the import in a child process, timing it
whole: reading, mapping, checking, writing and the rollup rebuild at the end.
Prints the rate and, with ``--json-out``, writes it with the machine's
description.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NEWAPI_COLUMNS = (
    "id", "user_id", "created_at", "type", "content", "username", "token_name", "model_name",
    "quota", "prompt_tokens", "completion_tokens", "use_time", "is_stream", "channel_id",
    "token_id", "group", "ip", "other",
)  # fmt: skip
NEWAPI_PG_DDL = (
    "CREATE TABLE logs (id bigserial PRIMARY KEY, user_id bigint, created_at bigint, type bigint, "
    "content text, username text DEFAULT '', token_name text DEFAULT '', model_name text "
    "DEFAULT '', quota bigint DEFAULT 0, prompt_tokens bigint DEFAULT 0, completion_tokens "
    "bigint DEFAULT 0, use_time bigint DEFAULT 0, is_stream boolean DEFAULT false, channel_id "
    "bigint, token_id bigint DEFAULT 0, \"group\" text, ip text DEFAULT '', other text)"
)
NEWAPI_SQLITE_DDL = NEWAPI_PG_DDL.replace("bigserial PRIMARY KEY", "integer PRIMARY KEY")
LITELLM_COLUMNS = (
    "request_id", "call_type", "api_key", "spend", "total_tokens", "prompt_tokens",
    "completion_tokens", "startTime", "endTime", "completionStartTime", "model", "model_id",
    "model_group", "custom_llm_provider", "api_base", "user", "metadata", "cache_hit",
    "cache_key", "request_tags", "team_id", "end_user", "requester_ip_address", "messages",
    "response", "status",
)  # fmt: skip
MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "text-embedding-3-small", "deepseek-chat")


def newapi_rows(count: int, seed: int):
    rng = random.Random(seed)
    now = datetime.now(UTC)
    first = datetime(now.year - (now.month <= 6), (now.month - 7) % 12 + 1, 1, tzinfo=UTC)
    start = int(first.timestamp())
    span = int(datetime(now.year, now.month, 1, tzinfo=UTC).timestamp()) - start
    step = span / count
    for n in range(count):
        token = rng.randrange(200)
        user = token // 4
        kind = rng.choices((2, 5, 1, 3), weights=(92, 4, 2, 2))[0]
        prompt, completion = rng.randrange(1, 4000), rng.randrange(0, 800)
        created = start + int(n * step)
        if kind in (1, 3):
            yield (n + 1, user, created, kind, "top-up", f"user{user}", "", "", 500000, 0, 0,
                   0, False, 0, 0, "", "", "")  # fmt: skip
            continue
        other = {"model_ratio": 2.5, "group_ratio": 1, "completion_ratio": 4}
        other.update(frt=rng.randrange(100, 900), cache_tokens=rng.randrange(0, prompt))
        content = "模型倍率 2.50"
        if kind == 5:
            other.update(status_code=429, error_type="upstream_error")
            content = "upstream rate limit, retry later"
        yield (
            n + 1, user, created, kind, content, f"user{user}", f"token-{token}",
            rng.choice(MODELS), (prompt + completion * 4) * 5 // 2 if kind == 2 else 0,
            prompt if kind == 2 else 0, completion if kind == 2 else 0, rng.randrange(1, 30),
            rng.random() < 0.5, rng.randrange(1, 9), token + 1, rng.choice(("default", "vip")),
            f"10.0.{rng.randrange(256)}.{rng.randrange(256)}", json.dumps(other),
        )  # fmt: skip


def litellm_rows(count: int, seed: int):
    rng = random.Random(seed)
    now = datetime.now(UTC)
    first = datetime(now.year - (now.month <= 6), (now.month - 7) % 12 + 1, 1, tzinfo=UTC)
    span = datetime(now.year, now.month, 1, tzinfo=UTC).timestamp() - first.timestamp()
    for n in range(count):
        key = rng.randrange(200)
        start = datetime.fromtimestamp(first.timestamp() + n * span / count, tz=UTC)
        end = datetime.fromtimestamp(start.timestamp() + rng.uniform(0.2, 20), tz=UTC)
        prompt, completion = rng.randrange(1, 4000), rng.randrange(0, 800)
        failed = rng.random() < 0.04
        yield (
            f"chatcmpl-{seed}-{n:09d}", "acompletion", f"{key:064x}", 0.0 if failed else
            round((prompt * 15 + completion * 60) / 1e8, 8), prompt + completion, prompt,
            completion, start.isoformat(), end.isoformat(), None, rng.choice(MODELS), "m1",
            rng.choice(MODELS), "openai", "https://api.openai.com", "", json.dumps({}), "False",
            "", json.dumps(["prod"]), f"team-{key // 4}", f"customer-{rng.randrange(1000)}",
            "10.0.0.1", "{}", "{}", "failure" if failed else "success",
        )  # fmt: skip


OWN_KEYS = (
    "from accounts.models import Account, Group; from accounts.services import create_api_key; "
    "import json; g, _ = Group.objects.get_or_create(name='default'); "
    "accounts = [Account.objects.create(name=f'bench {n}', slug=f'bench-{n}') for n in range(50)]; "
    "print(json.dumps([create_api_key(account=accounts[n // 4], name=f'key-{n}', group=g)"
    ".api_key.prefix for n in range(200)]))"
)


def own_rows(count: int, seed: int, prefixes: list[str]):
    """This project's own records (docs/ingest-format.md), as ``import_calls`` takes them."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    first = datetime(now.year - (now.month <= 6), (now.month - 7) % 12 + 1, 1, tzinfo=UTC)
    span = datetime(now.year, now.month, 1, tzinfo=UTC).timestamp() - first.timestamp()
    for n in range(count):
        start = datetime.fromtimestamp(first.timestamp() + n * span / count, tz=UTC)
        prompt, completion = rng.randrange(1, 4000), rng.randrange(0, 800)
        failed = rng.random() < 0.04
        record = {
            "request_id": f"own-{seed}-{n:09d}",
            "created_at": start.isoformat(),
            "api_key": prefixes[rng.randrange(len(prefixes))],
            "call_type": "chat",
            "model": rng.choice(MODELS),
            "endpoint": "/v1/chat/completions",
            "stream": rng.random() < 0.5,
            "status_code": 429 if failed else 200,
            "duration_ms": rng.randrange(1000, 20000),
            "ttft_ms": rng.randrange(100, 900),
            "input_tokens": prompt,
            "output_tokens": 0 if failed else completion,
            "usage": f"{(prompt + completion * 4) / 1e6:.6f}",
            "cost": f"{(prompt * 15 + completion * 60) / 1e8:.8f}",
            "client_ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
        }
        yield json.dumps(record)


def build_source(fmt: str, kind: str, rows: int, target_url: str, folder: Path) -> str:
    if fmt == "jsonl":
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", OWN_KEYS],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": target_url},
            check=True,
            capture_output=True,
            text=True,
        )
        prefixes = json.loads(done.stdout.strip().splitlines()[-1])
        path = folder / "calls.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for line in own_rows(rows, 1, prefixes):
                handle.write(line + "\n")
        return str(path)
    table = "LiteLLM_SpendLogs" if fmt == "litellm" else "logs"
    columns = LITELLM_COLUMNS if fmt == "litellm" else NEWAPI_COLUMNS
    generated = litellm_rows(rows, 1) if fmt == "litellm" else newapi_rows(rows, 1)
    if kind == "sqlite":
        path = folder / "source.db"
        db = sqlite3.connect(path)
        if fmt == "litellm":
            db.execute(f'CREATE TABLE "{table}" ({", ".join(f"{c!r} text" for c in columns)})')
        else:
            db.execute(NEWAPI_SQLITE_DDL.replace('"group"', "`group`"))
        marks = ", ".join("?" for _ in columns)
        db.executemany(f'INSERT INTO "{table}" VALUES ({marks})', generated)
        db.commit()
        db.close()
        return str(path)
    if kind in ("csv", "jsonl"):
        path = folder / f"source.{kind}"
        with path.open("w", newline="", encoding="utf-8") as handle:
            if kind == "csv":
                writer = csv.writer(handle)
                writer.writerow(columns)
                writer.writerows(generated)
            else:
                for row in generated:
                    handle.write(json.dumps(dict(zip(columns, row, strict=True))) + "\n")
        return str(path)
    import psycopg

    server, _, name = target_url.rpartition("/")
    source_name = f"{name}_source"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{source_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{source_name}"')
    url = f"{server}/{source_name}"
    with psycopg.connect(url) as db:
        if fmt == "litellm":
            typed = ", ".join(f'"{c}" text' for c in columns)
            db.execute(f'CREATE TABLE "{table}" ({typed})')
        else:
            db.execute(NEWAPI_PG_DDL)
        quoted = ", ".join(f'"{c}"' for c in columns)
        with db.cursor().copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
            for row in generated:
                copy.write_row(row)
    return url


def fresh_target(url: str) -> None:
    import psycopg

    server, _, name = url.rpartition("/")
    if "bench" not in name:
        sys.exit(f"the target database's name must contain 'bench' (it is dropped): {name}")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), load average {os.getloadavg()[0]:.1f} at the start"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--format", choices=("newapi", "oneapi", "litellm", "jsonl"), default="newapi"
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--source", choices=("sqlite", "postgresql", "csv", "jsonl"))
    parser.add_argument("--database-url", required=True, help="The target: dropped, migrated.")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--json-out")
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="Run the import under cProfile (give --workers 1: only this process is "
        "profiled) and print its N most costly functions by own time.",
    )
    args = parser.parse_args()
    kind = args.source or {"litellm": "postgresql", "jsonl": "jsonl"}.get(args.format, "sqlite")

    with tempfile.TemporaryDirectory() as folder:
        if args.format == "jsonl":
            fresh_target(args.database_url)  # the records name keys that must exist
        started = time.perf_counter()
        source = build_source(args.format, kind, args.rows, args.database_url, Path(folder))
        print(f"source: {args.rows:,} {args.format} rows as {kind} in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        if args.format != "jsonl":
            fresh_target(args.database_url)
        profile_file = Path(folder) / "import.prof"
        command = [sys.executable, "manage.py", "import_history", "--from", args.format, source]
        if args.profile:
            command[1:1] = ["-m", "cProfile", "-o", str(profile_file)]
        if args.workers:
            command += ["--workers", str(args.workers)]
        if args.batch_size:
            command += ["--batch-size", str(args.batch_size)]
        load = machine()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": args.database_url},
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if args.profile and profile_file.exists():
            import pstats

            pstats.Stats(str(profile_file)).sort_stats("tottime").print_stats(args.profile)
            pstats.Stats(str(profile_file)).sort_stats("cumulative").print_stats(args.profile)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(done.stdout.strip())
    if done.returncode:
        sys.exit(done.stderr)
    rate = args.rows / elapsed
    print(f"{args.rows:,} source rows in {elapsed:.1f} s: {rate:,.0f} rows/s ({load})")
    # The import's own processes (this one's children), not PostgreSQL's: the rate
    # one core of Python sustains, whatever else the machine was running.
    print(
        f"CPU time of the import's processes: {cpu:.1f} s, "
        f"{args.rows / cpu:,.0f} rows per CPU-second"
    )
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "format": args.format,
                    "source": kind,
                    "rows": args.rows,
                    "seconds": round(elapsed, 2),
                    "rows_per_second": round(rate),
                    "import_cpu_seconds": round(cpu, 1),
                    "rows_per_cpu_second": round(args.rows / cpu),
                    "command": " ".join(command[1:]),
                    "summary": done.stdout.strip(),
                    "machine": load,
                    "python": platform.python_version(),
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
