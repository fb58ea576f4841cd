"""The ingest path's own CPU time per 1,000 records, in process.

    .venv/bin/python bench/ingest_cpu.py \\
        --database-url postgres://root@127.0.0.1:5432/usagelogs_bench [--batches 20] [--profile]

Posts nothing over HTTP: each batch of 1,000 realistic records (bench/run.py
``realistic_records``) is parsed from its JSON body (``fastjson.loads``) and
given to ``ingest_calls``, and the thread's CPU time for both is taken
(``time.thread_time``: time spent waiting for PostgreSQL is not in it, and
other processes on the machine change it far less than wall time). Prints the
median and the range over the batches after the first (a warm-up). Rollups are
not folded after each batch (``USAGELOGS_FOLD_AFTER_INGEST=0``, as production
runs with ``fold_rollups --loop``). ``--profile`` prints a cProfile of the
batches (by own time; the profile's overhead inflates every figure in it).
The calls written are removed afterwards.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import python_reference_ms, removed_afterwards, setup_django


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--records",
        choices=("gateway", "demo"),
        default="gateway",
        help="gateway (~1.4 KB) or demo (~7.4 KB) records: bench/run.py RECORD_SHAPES",
    )
    args = parser.parse_args(argv)
    os.environ["USAGELOGS_FOLD_AFTER_INGEST"] = "0"
    setup_django(args.database_url)

    from bench.run import realistic_records
    from logs.ingest import fastjson
    from logs.ingest.service import ingest_calls

    records = realistic_records((args.batches + 1) * 1000, args.seed, args.records)
    bodies = [json.dumps(records[i : i + 1000]).encode() for i in range(0, len(records), 1000)]
    del records
    profile = cProfile.Profile() if args.profile else None
    samples = []
    with removed_afterwards():
        for number, body in enumerate(bodies):
            if profile and number:
                profile.enable()
            began = time.thread_time()
            with fastjson.paused_gc():
                result = ingest_calls(fastjson.loads(body))
            spent = (time.thread_time() - began) * 1000
            if profile:
                profile.disable()
            if result.created != 1000:
                raise SystemExit(f"ingest created {result.created} of 1000")
            if number:
                samples.append(spent)
    print(
        f"ingest CPU per 1000 records ({len(samples)} batches, mean body "
        f"{sum(map(len, bodies)) / len(bodies) / 1e6:.2f} MB): median "
        f"{statistics.median(samples):.1f} ms, {min(samples):.1f} to {max(samples):.1f}; "
        f"load average {os.getloadavg()[0]:.1f}; Python reference {python_reference_ms()} ms"
    )
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
