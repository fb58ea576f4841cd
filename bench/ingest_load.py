"""Ingest throughput through gunicorn, one command.

    .venv/bin/python bench/ingest_load.py \\
        --database-url postgres://root@127.0.0.1:5432/usagelogs_bench \\
        [--clients 1,4] [--batches 30] [--workers 4] [--fold loop|inline] [--redis-url URL]

Against a dataset built by ``bench/build_dataset.py``: starts gunicorn with
``--workers`` sync workers on the benchmark settings (DEBUG off, throttles out
of the way) and, with ``--fold loop`` (the default, as production runs it),
``manage.py fold_rollups --loop`` beside it. Then, for each client count, that
many client processes each post ``--batches`` batches of 1,000 realistic
records (bench/run.py ``realistic_records``, ``--records``: ~1.4 KB each, payloads with
credentials to redact) over a kept-alive connection, after one warm-up batch
each. It prints, per client count:

* records/s in aggregate (all records ÷ the time from the first post to the
  last answer) and the median per batch;
* the ingest path's own CPU time per 1,000 records, as the server reports it
  in each answer's ``Server-Timing`` (``cpu``: the worker's CPU time for the
  batch, waits for the database excluded) — median and p95;
* lock waits between clients: ``pg_stat_activity`` sampled every 20 ms during
  the run, the samples in which a backend of this database waited on a lock
  (``wait_event_type = 'Lock'``), by wait event (advisory, transactionid,
  tuple, relation…).

Every call written is removed afterwards (and the rollups of its hours rebuilt).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import removed_afterwards, setup_django  # noqa: E402

URL = "/api/v1/calls/ingest/"
BATCH = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(args) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": args.database_url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-ingest-load-not-secret",
        "ALLOWED_HOSTS": "127.0.0.1",
        "USAGELOGS_FOLD_AFTER_INGEST": "1" if args.fold == "inline" else "0",
    }
    env.pop("DATABASE_REPLICA_URLS", None)
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    return env


def start_gunicorn(args, port: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "usagelogs_site.wsgi:application"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(args.workers)]
    command += ["--log-level", "warning", "--timeout", "120"]
    with log.open("ab") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=server_env(args), stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gunicorn did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.2)


def start_folder(args, log: Path) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "fold_rollups", "--loop", "--interval", "0.2"]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=server_env(args), stdout=out, stderr=out)


def post(connection: http.client.HTTPConnection, token: str, body: bytes) -> tuple[float, dict]:
    began = time.perf_counter()
    connection.request(
        "POST",
        URL,
        body=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            # As behind the TLS proxy production runs behind (else DEBUG off redirects).
            "X-Forwarded-Proto": "https",
        },
    )
    response = connection.getresponse()
    answer = response.read()
    elapsed = time.perf_counter() - began
    if response.status != 201:
        raise RuntimeError(f"ingest answered {response.status}: {answer[:500]!r}")
    if json.loads(answer)["created"] != BATCH:
        raise RuntimeError(f"ingest created {answer!r} of {BATCH}")
    timing = {}
    for item in (response.getheader("Server-Timing") or "").split(","):
        name, _, duration = item.strip().partition(";dur=")
        if duration:
            timing[name] = float(duration)
    return elapsed, timing


def client(port: int, token: str, bodies: list[bytes], start, results) -> None:
    """One client process: a warm-up batch, then wait for the others, then the rest."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        post(connection, token, bodies[0])
        start.wait()
        results.put([post(connection, token, body) for body in bodies[1:]])
    except Exception as exc:
        results.put(exc)
        raise


class LockSampler(threading.Thread):
    """Samples pg_stat_activity of the database until stopped."""

    def __init__(self, dsn: str, interval: float = 0.02):
        super().__init__(daemon=True)
        self.dsn, self.interval = dsn, interval
        self.stopping = threading.Event()
        self.samples = 0
        self.waiting_samples = 0
        self.by_event: collections.Counter[str] = collections.Counter()
        self.active: list[int] = []

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as connection:
            while not self.stopping.is_set():
                rows = connection.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
                self.samples += 1
                self.active.append(sum(1 for state, *_ in rows if state == "active"))
                waits = [event for _, kind, event in rows if kind == "Lock"]
                if waits:
                    self.waiting_samples += 1
                    self.by_event.update(waits)
                time.sleep(self.interval)


def run_clients(args, port: int, tokens: list[str], bodies: list[bytes], count: int) -> dict:
    per_client = args.batches + 1  # + the warm-up batch
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    processes = [
        context.Process(
            target=client,
            args=(port, tokens[i], bodies[i * per_client : (i + 1) * per_client], start, results),
        )
        for i in range(count)
    ]
    from django.db import connections

    connections.close_all()  # not shared with the forked clients
    for process in processes:
        process.start()
    time.sleep(1 + 0.5 * count)  # the warm-up batches (the workers import and connect)
    sampler = LockSampler(args.database_url)
    sampler.start()
    began = time.perf_counter()
    start.set()
    samples = []
    for _ in processes:
        answer = results.get(timeout=3600)
        if isinstance(answer, Exception):
            sampler.stopping.set()
            raise SystemExit(f"a client failed: {answer}")
        samples += answer
    seconds = time.perf_counter() - began
    sampler.stopping.set()
    sampler.join()
    for process in processes:
        process.join()
    walls = [wall * 1000 for wall, _ in samples]
    cpus = sorted(timing["cpu"] for _, timing in samples if "cpu" in timing)
    return {
        "clients": count,
        "batches": len(samples),
        "records_per_s": len(samples) * BATCH / seconds,
        "median_batch_ms": statistics.median(walls),
        "cpu_ms_per_1000_median": statistics.median(cpus) if cpus else None,
        "cpu_ms_per_1000_p95": cpus[int(0.95 * (len(cpus) - 1))] if cpus else None,
        "activity_samples": sampler.samples,
        "samples_with_lock_waits": sampler.waiting_samples,
        "lock_waits_by_event": dict(sampler.by_event),
        "mean_active_backends": statistics.mean(sampler.active) if sampler.active else 0,
    }


def make_tokens(count: int) -> list[str]:
    """One ingest token per client (their throttle counters are apart, as real clients')."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    from accounts.services import create_access_token

    user, _ = get_user_model().objects.get_or_create(username="bench-ingest")
    user.user_permissions.add(Permission.objects.get(codename="ingest_callrecord"))
    return [
        create_access_token(user=user, name=f"bench-load-{i}", can_ingest=True).secret
        for i in range(count)
    ]


def fold_everything() -> None:
    from logs.rollups.fold import fold_pending_rollups

    while (result := fold_pending_rollups()) is not None and result.deltas:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--clients", default="1,4", help="client counts, comma-separated")
    parser.add_argument("--batches", type=int, default=30, help="timed batches per client")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument(
        "--fold",
        choices=("loop", "inline"),
        default="loop",
        help="loop: fold_rollups --loop beside gunicorn (production); "
        "inline: each request folds after its commit (the default set-up)",
    )
    parser.add_argument("--redis-url", default="", help="the shared cache in Redis")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument(
        "--records",
        choices=("gateway", "demo"),
        default="gateway",
        help="gateway (~1.4 KB) or demo (~7.4 KB) records: bench/run.py RECORD_SHAPES",
    )
    parser.add_argument("--json-out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]
    setup_django(args.database_url)

    from bench.run import machine_facts, realistic_records

    tokens = make_tokens(max(counts))
    log = Path(f"/tmp/ingest_load_{os.getpid()}.log")
    port = free_port()
    results = []
    with removed_afterwards():
        server = start_gunicorn(args, port, log)
        folder = start_folder(args, log) if args.fold == "loop" else None
        try:
            for count in counts:
                records = realistic_records(
                    count * (args.batches + 1) * BATCH, args.seed + count, args.records
                )
                bodies = [
                    json.dumps(records[i : i + BATCH]).encode()
                    for i in range(0, len(records), BATCH)
                ]
                del records
                result = run_clients(args, port, tokens, bodies, count)
                results.append(result)
                print(
                    f"{count} client(s), {result['batches']} batches of {BATCH}: "
                    f"{result['records_per_s']:,.0f} records/s "
                    f"(median batch {result['median_batch_ms']:.0f} ms); "
                    f"ingest CPU {result['cpu_ms_per_1000_median']:.1f} ms per 1000 "
                    f"(p95 {result['cpu_ms_per_1000_p95']:.1f}); "
                    f"lock waits in {result['samples_with_lock_waits']} of "
                    f"{result['activity_samples']} samples {result['lock_waits_by_event']}",
                    flush=True,
                )
        finally:
            for process in (folder, server):
                if process is not None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=60)
            fold_everything()
    facts = machine_facts()
    print(f"load average after: {os.getloadavg()}; {facts}")
    if args.json_out:
        meta = {"args": vars(args), "load_average_end": os.getloadavg(), **facts}
        Path(args.json_out).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
