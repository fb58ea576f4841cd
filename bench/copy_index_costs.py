"""What each index of the calls table costs ingest: COPY of 1,000 calls, timed.

    .venv/bin/python bench/copy_index_costs.py \\
        --database-url postgres://root@127.0.0.1:5432/usagelogs_bench [--runs 9]

Clones the current month's partition (its rows and indexes) into a scratch
table, takes 1,000 of its rows as new calls (new ids and request ids), then
times their COPY into the clone with every index, with the primary key only,
and without each other index in turn (the index dropped inside a transaction
that is rolled back, so every run starts from the same table). Medians of
``--runs`` runs, the cases interleaved so a busy moment spreads over all of
them. Drops the clone at the end.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from datetime import UTC, datetime

import psycopg

CLONE = "bench_copy_index_clone"
COLUMNS = (
    "id, request_id, created_at, account_id, api_key_id, group_id, call_type, model, endpoint, "
    "is_stream, status_code, error_reason, duration_ms, ttft_ms, input_tokens, output_tokens, "
    "total_tokens, usage, cost, client_ip, upstream, content_hash"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    partition = f"logs_callrecord_p{datetime.now(UTC):%Y_%m}"
    with psycopg.connect(args.database_url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE IF EXISTS {CLONE}")
        connection.execute(f"CREATE TABLE {CLONE} (LIKE {partition} INCLUDING ALL)")
        connection.execute(f"INSERT INTO {CLONE} SELECT * FROM {partition}")
        connection.execute(f"VACUUM ANALYZE {CLONE}")
        rows = connection.execute(f"SELECT count(*) FROM {CLONE}").fetchone()[0]
        indexes = [
            name
            for (name,) in connection.execute(
                "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass",
                [CLONE],
            )
        ]
        constraints = {
            name
            for (name,) in connection.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass", [CLONE]
            )
        }
        select = COLUMNS.replace("id, request_id", "id + 1000000000000, 'copy-' || request_id", 1)
        data = io.BytesIO()
        with connection.cursor().copy(
            f"COPY (SELECT {select} FROM {CLONE} ORDER BY id DESC LIMIT 1000) TO STDOUT"
        ) as copy:
            for chunk in copy:
                data.write(chunk)
    print(f"{partition}: {rows:,} rows, {len(indexes)} indexes; COPY of 1,000 calls into a clone")

    primary = [name for name in indexes if name.endswith("pkey")]
    cases = {"every index": [], "primary key only": [n for n in indexes if n not in primary]}
    cases.update({f"without {name}": [name] for name in indexes if name not in primary})
    samples: dict[str, list[float]] = {case: [] for case in cases}
    try:
        with psycopg.connect(args.database_url) as connection:
            for _ in range(args.runs):
                for case, dropped in cases.items():
                    with connection.transaction(force_rollback=True):
                        for name in dropped:
                            if name in constraints:
                                connection.execute(f"ALTER TABLE {CLONE} DROP CONSTRAINT {name}")
                            else:
                                connection.execute(f"DROP INDEX {name}")
                        began = time.perf_counter()
                        with connection.cursor().copy(
                            f"COPY {CLONE} ({COLUMNS}) FROM STDIN"
                        ) as copy:
                            copy.write(data.getvalue())
                        samples[case].append((time.perf_counter() - began) * 1000)
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {CLONE}")
    every = statistics.median(samples["every index"])
    for case, times in samples.items():
        median = statistics.median(times)
        saves = f" (saves {every - median:.1f} ms)" if case.startswith("without") else ""
        print(f"  {case}: {median:.1f} ms{saves}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
