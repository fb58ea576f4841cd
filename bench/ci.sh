#!/usr/bin/env bash
# The benchmark suite's smoke run (CI, `make bench-smoke`): a small dataset in a
# throwaway PostgreSQL database, then `bench/run.py --quick`. It proves every case
# runs; it fails only when a case errors, never on a missed target (the figures
# that count come from full runs, see docs/benchmarks.md).
#
#   BENCH_PG_SERVER  server URL without a database (default postgres://root@127.0.0.1:5432)
#   BENCH_CALLS      calls in the dataset (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-.venv/bin/python}"
SERVER="${BENCH_PG_SERVER:-postgres://root@127.0.0.1:5432}"
SERVER="${SERVER%/}"
DB="usagelogs_bench_ci_$$"

drop_database() {
    "$PY" - "$SERVER" "$DB" <<'PYTHON'
import sys

import psycopg
from psycopg import sql

server, name = sys.argv[1], sys.argv[2]
with psycopg.connect(server + "/postgres", autocommit=True) as conn:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
PYTHON
}
trap drop_database EXIT

"$PY" bench/build_dataset.py --calls "${BENCH_CALLS:-20000}" --database-url "$SERVER/$DB"
"$PY" bench/run.py --database-url "$SERVER/$DB" --quick
