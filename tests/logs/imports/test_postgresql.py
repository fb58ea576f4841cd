"""The PostgreSQL path: a new-api database read by URL, batches written by several
worker processes with COPY, an interrupted run resumed, the rollups exact."""

from __future__ import annotations

import io

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from logs.imports.newapi import NewApiFormat
from logs.imports.runner import run_import
from logs.models import CallRecord, ImportRun
from tests.logs.imports.sources import (
    NEWAPI_COLUMNS,
    NEWAPI_POSTGRES_DDL,
    interrupted_after,
    realistic_rows,
)
from tests.logs.imports.test_newapi import odd_rows, rollup_sums, source_sums, stored_sums
from tests.logs.imports.test_newapi import without_errors as rollups_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _server_url(dbname: str) -> str:
    info = connection.settings_dict
    user = f"{info['USER']}@" if info.get("USER") else ""
    port = f":{info['PORT']}" if info.get("PORT") else ""
    return f"postgresql://{user}{info.get('HOST') or '127.0.0.1'}{port}/{dbname}"


@pytest.fixture
def newapi_database():
    """A database of its own holding new-api's logs table; yields (url, fill)."""
    name = f"{connection.settings_dict['NAME']}_newapi"
    with psycopg.connect(_server_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _server_url(name)
    with psycopg.connect(url, autocommit=True) as source:
        source.execute(NEWAPI_POSTGRES_DDL)

    def fill(rows):
        columns = ", ".join(f'"{c}"' for c in NEWAPI_COLUMNS)
        with (
            psycopg.connect(url) as source,
            source.cursor().copy(f"COPY logs ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row([row[c] for c in NEWAPI_COLUMNS])

    yield url, fill
    with psycopg.connect(_server_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_new_api_postgresql_database_is_imported_by_several_workers(newapi_database):
    url, fill = newapi_database
    rows = realistic_rows(1500) + odd_rows(start_id=5000)
    fill(rows)
    out = io.StringIO()

    call_command(
        "import_history", "--from", "newapi", url, "--workers", "2", "--batch-size", "200",
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip

    calls = sum(1 for r in rows if r["type"] in (2, 5))
    assert f"Done: {calls:,} imported, 0 already present" in out.getvalue()
    assert stored_sums() == source_sums(rows)
    assert rollup_sums() == rollups_of(source_sums(rows))
    run = ImportRun.objects.get()
    assert run.location.endswith(f"/{connection.settings_dict['NAME']}_newapi logs")
    assert ":" not in run.location.split("//")[1].split("@")[0]  # no password kept
    assert run.checkpoint == [5004]


def test_an_interrupted_parallel_import_resumes_and_imports_nothing_twice(newapi_database):
    url, fill = newapi_database
    rows = realistic_rows(1200)
    fill(rows)
    with pytest.raises(KeyboardInterrupt):
        run_import(NewApiFormat(), url, batch_size=100, workers=2, on_batch=interrupted_after(3))
    # whole batches only: every call of a batch is there, or none
    stored = set(CallRecord.objects.values_list("request_id", flat=True))
    for start in range(0, 1200, 100):
        batch = {f"newapi-{r['id']}" for r in rows[start : start + 100] if r["type"] in (2, 5)}
        assert batch <= stored or not (batch & stored)
    assert ImportRun.objects.get().checkpoint == [300]

    run_import(NewApiFormat(), url, batch_size=100, workers=2)

    assert stored_sums() == source_sums(rows)
    assert rollup_sums() == rollups_of(source_sums(rows))
