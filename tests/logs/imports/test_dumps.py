"""one-api's table, and dumps of either table as CSV or JSON Lines: the same calls
as from the database, duplicates in a dump found present, never imported twice."""

from __future__ import annotations

import pytest

from accounts.models import Account, Source
from logs.models import CallRecord
from tests.logs.imports.sources import (
    NEWAPI_COLUMNS,
    odd_rows,
    realistic_rows,
    source_sums,
    write_csv,
    write_jsonl,
    write_oneapi_sqlite,
)
from tests.logs.imports.test_newapi import rollup_sums, run, stored_sums, without_errors

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("writer", [write_csv, write_jsonl], ids=["csv", "jsonl"])
def test_a_dump_adds_up_like_the_table_and_its_duplicates_are_found_present(tmp_path, writer):
    rows = realistic_rows(300) + odd_rows(start_id=1000)
    duplicated = [*rows, rows[10], rows[11]]  # a dump taken while rows were being written
    path = writer(tmp_path / f"logs.{writer.__name__.removeprefix('write_')}", duplicated)

    out, _, error = run("--from", "newapi", str(path), "--batch-size", "64")

    assert error is None, error
    calls = sum(1 for r in rows if r["type"] in (2, 5))
    twice = sum(1 for r in rows[10:12] if r["type"] in (2, 5))
    assert f"Done: {calls:,} imported, {twice} already present" in out
    assert stored_sums() == source_sums(rows)
    assert rollup_sums() == without_errors(source_sums(rows))

    out, _, _ = run("--from", "newapi", str(path), "--restart")
    assert f"Done: 0 imported, {calls + twice:,} already present" in out


def test_a_dump_with_a_changed_row_of_the_same_id_is_refused(tmp_path):
    rows = realistic_rows(20)
    call = next(r for r in rows if r["type"] == 2)
    path = write_jsonl(tmp_path / "logs.jsonl", [*rows, dict(call, quota=call["quota"] + 1)])

    _, _, error = run("--from", "newapi", str(path))

    assert f"row {call['id']}: id (request_id): 'newapi-{call['id']}' was already recorded" in str(
        error
    )


def test_a_csv_dump_reads_its_text_columns_as_the_table_has_them(tmp_path):
    rows = realistic_rows(40)
    path = write_csv(tmp_path / "logs.csv", rows, columns=NEWAPI_COLUMNS)
    run("--from", "newapi", str(path))
    source = next(r for r in rows if r["type"] == 2 and r["is_stream"])
    call = CallRecord.objects.get(request_id=f"newapi-{source['id']}")
    assert call.is_stream is True
    assert call.input_tokens == source["prompt_tokens"]


def test_one_api_logs_are_one_api_accounts_and_keys(tmp_path):
    rows = [r for r in realistic_rows(200) if r["type"] != 5]  # one-api logs no errors
    path = write_oneapi_sqlite(tmp_path / "one-api.db", rows)

    _out, _, error = run("--from", "oneapi", str(path))

    assert error is None, error
    assert stored_sums() == source_sums(rows)
    call = CallRecord.objects.get(request_id=f"oneapi-{rows[0]['id']}")
    assert call.account.source == Source.ONEAPI
    assert call.api_key.source == Source.ONEAPI
    assert call.duration_ms == rows[0]["use_time"] * 1000  # elapsed_time, in ms
    assert call.group.name == "default"  # one-api has no group: the key's
    assert call.client_ip is None
    assert not Account.objects.filter(source=Source.NEWAPI).exists()


def test_our_own_json_lines_go_through_the_same_path(tmp_path, api_key):
    from tests.factories import record_dict

    records = [record_dict(api_key, request_id=f"own-{n}") for n in range(5)]
    path = write_jsonl(tmp_path / "calls.jsonl", records)

    out, _, error = run("--from", "jsonl", str(path))

    assert error is None, error
    assert "Done: 5 imported" in out
    assert sorted(CallRecord.objects.values_list("request_id", flat=True)) == [
        f"own-{n}" for n in range(5)
    ]
