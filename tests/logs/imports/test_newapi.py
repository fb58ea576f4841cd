"""``import_history --from newapi``: new-api's logs table, from a SQLite file, into calls
that add up to what new-api counted, per day, model and key."""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate

from accounts.models import Account, ApiKey, Source
from logs.imports.newapi import NewApiFormat
from logs.imports.runner import run_import
from logs.models import CallPayload, CallRecord, DailyCallRollup, ImportRun
from logs.retention.partitions import loading_name
from tests.logs.imports.sources import (
    interrupted_after,
    odd_rows,
    quota_cost,
    realistic_rows,
    source_sums,
    write_newapi_sqlite,
)

pytestmark = pytest.mark.django_db


def run(*args):
    """Run the command: (stdout, stderr, the CommandError or None)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_history", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def calls_written() -> int:
    """Calls written: in the calls table, and (PostgreSQL) in the months an
    unfinished import is loading without indexes, not yet attached."""
    count = CallRecord.objects.count()
    with connection.cursor() as cursor:
        for run in ImportRun.objects.all():
            for month in run.staged:
                table = loading_name("logs_callrecord", date.fromisoformat(month))
                cursor.execute(f'SELECT count(*) FROM "{table}"')
                count += cursor.fetchone()[0]
    return count


def stored_sums() -> dict:
    """(UTC day, model, the source's token id) → the same measures as source_sums, from
    the raw calls."""
    sums: dict = defaultdict(Counter)
    rows = (
        CallRecord.objects.annotate(day=TruncDate("created_at", tzinfo=None))
        .values("day", "model", "api_key__external_id")
        .annotate(
            calls=Count("id"),
            usage=Sum("usage"),
            input=Sum("input_tokens"),
            output=Sum("output_tokens"),
        )
    )
    errors = Counter(
        (r["day"], r["model"], r["api_key__external_id"])
        for r in CallRecord.objects.filter(status_code__gte=400)
        .annotate(day=TruncDate("created_at", tzinfo=None))
        .values("day", "model", "api_key__external_id")
    )
    for row in rows:
        slot_key = (row["day"], row["model"], row["api_key__external_id"])
        slot = sums[slot_key]
        slot["calls"] = row["calls"]
        slot["quota"] = int(row["usage"])
        slot["input_tokens"] = row["input"]
        slot["output_tokens"] = row["output"]
        slot["errors"] = errors[slot_key]
    return dict(sums)


def rollup_sums() -> dict:
    """The same from the daily rollups (what totals and stats read)."""
    sums: dict = defaultdict(Counter)
    for row in DailyCallRollup.objects.values(
        "day", "model", "api_key__external_id", "calls", "usage", "input_tokens", "output_tokens"
    ):
        slot = sums[(row["day"].date(), row["model"], row["api_key__external_id"])]
        slot["calls"] += row["calls"]
        slot["quota"] += int(row["usage"])
        slot["input_tokens"] += row["input_tokens"]
        slot["output_tokens"] += row["output_tokens"]
    return dict(sums)


def without_errors(sums: dict) -> dict:
    return {k: Counter({m: v for m, v in c.items() if m != "errors"}) for k, c in sums.items()}


@pytest.fixture
def history(tmp_path):
    rows = realistic_rows(400) + odd_rows(start_id=1000)
    path = write_newapi_sqlite(tmp_path / "one-api.db", rows, invalid_utf8_ids=(7, 1000))
    return rows, str(path)


def test_a_new_api_sqlite_file_adds_up_to_what_new_api_counted(history):
    rows, path = history

    out, _err, error = run("--from", "newapi", path, "--batch-size", "100")

    assert error is None, error
    kinds = Counter(row["type"] for row in rows)
    calls = kinds[2] + kinds[5]
    assert f"Done: {calls:,} imported, 0 already present" in out
    assert f"{kinds[1] + kinds[3]:,} skipped (type 1 (top-up): {kinds[1]}" in out
    assert f"type 3 (management): {kinds[3]})" in out
    assert "0 refused." in out
    assert "Rollups rebuilt for 2026-01-01 00:00" in out
    assert CallRecord.objects.count() == calls
    assert stored_sums() == source_sums(rows)
    # totals and stats read the rollups: rebuilt for the imported range, exactly
    assert rollup_sums() == without_errors(source_sums(rows))


def test_each_field_lands_where_the_mapping_says(history):
    rows, path = history
    run("--from", "newapi", path)

    source = next(r for r in rows if r["type"] == 2 and r["id"] > 10)
    other = json.loads(source["other"])
    call = CallRecord.objects.get(request_id=f"newapi-{source['id']}")
    assert call.created_at.timestamp() == source["created_at"]
    assert call.account.source == Source.NEWAPI
    assert call.account.external_id == str(source["user_id"])
    assert call.account.name == source["username"]
    assert call.api_key.external_id == str(source["token_id"])
    assert call.api_key.name == source["token_name"]
    assert call.group.name == source["group"]
    assert call.model == source["model_name"]
    assert call.is_stream == source["is_stream"]
    assert (call.input_tokens, call.output_tokens) == (
        source["prompt_tokens"],
        source["completion_tokens"],
    )
    assert call.cached_input_tokens == other["cache_tokens"]
    assert (call.cache_write_tokens, call.reasoning_tokens) == (0, 0)
    assert call.usage == Decimal(source["quota"])
    assert call.cost == quota_cost(source["quota"])
    assert call.duration_ms == source["use_time"] * 1000
    assert call.ttft_ms == other["frt"]
    assert call.upstream == f"channel-{source['channel_id']}"
    assert call.client_ip == source["ip"]
    assert call.status_code == 200
    params = json.loads(CallPayload.objects.get(call=call).request_params)
    assert params["cache_tokens"] == other["cache_tokens"]
    assert params["model_ratio"] == 2.5
    assert "admin_info" not in params  # new-api hides it from users too

    failed = next(r for r in rows if r["type"] == 5)
    call = CallRecord.objects.get(request_id=f"newapi-{failed['id']}")
    assert call.status_code == 429
    assert call.error_reason == failed["content"].splitlines()[0]
    error = json.loads(CallPayload.objects.get(call=call).error_detail)
    assert error == {
        "message": failed["content"],
        "error_type": "upstream_error",
        "error_code": "rate_limit",
    }


def test_odd_rows_are_imported_as_the_source_has_them(history):
    _, path = history
    run("--from", "newapi", path)

    zero = CallRecord.objects.get(request_id="newapi-1000")
    assert (zero.total_tokens, zero.usage, zero.cost) == (0, 0, 0)
    huge = CallRecord.objects.get(request_id="newapi-1001")
    payload = CallPayload.objects.get(call=huge)
    assert payload.request_params_truncated  # capped, as ingest caps every part
    gone = CallRecord.objects.get(request_id="newapi-1002")
    assert gone.account.external_id == "99"
    assert gone.api_key.name == "deleted-user-key"
    no_token = CallRecord.objects.get(request_id="newapi-1003")
    assert no_token.api_key.external_id == "user-1"
    assert no_token.api_key.name == "no token"
    # invalid UTF-8 in content: read with U+FFFD for each bad byte
    params = json.loads(CallPayload.objects.get(call=zero).request_params)
    assert params["content"] == "upstream said: \ufffd\ufffd bad bytes"


def test_running_it_again_imports_nothing_twice(history):
    rows, path = history
    run("--from", "newapi", path, "--batch-size", "100")

    out, _, error = run("--from", "newapi", path, "--batch-size", "100")
    assert error is None
    assert "Done: 0 imported, 0 already present, 0 skipped" in out  # read on from the end

    out, _, error = run("--from", "newapi", path, "--restart")
    calls = sum(1 for r in rows if r["type"] in (2, 5))
    assert f"Done: 0 imported, {calls:,} already present" in out
    assert CallRecord.objects.count() == calls
    assert stored_sums() == source_sums(rows)


def test_an_interrupted_import_continues_where_it_stopped(history):
    rows, path = history
    with pytest.raises(KeyboardInterrupt):
        run_import(NewApiFormat(), path, batch_size=50, on_batch=interrupted_after(2))
    run_record = ImportRun.objects.get(kind="newapi")
    assert run_record.checkpoint == [rows[99]["id"]]
    assert calls_written() == sum(1 for r in rows[:100] if r["type"] in (2, 5))
    assert run_record.rollups_from is not None  # remembered: the next run rebuilds them

    out, _, error = run("--from", "newapi", path, "--batch-size", "50")

    assert error is None
    assert "0 already present" in out
    assert stored_sums() == source_sums(rows)
    assert rollup_sums() == without_errors(source_sums(rows))


def test_a_bad_row_stops_the_import_naming_its_id_and_field(tmp_path):
    rows = realistic_rows(120)
    bad = next(r for r in rows[60:] if r["type"] == 2)
    bad["prompt_tokens"] = -5
    path = write_newapi_sqlite(tmp_path / "new-api.db", rows)

    _out, _, error = run("--from", "newapi", str(path), "--batch-size", "50")

    assert error is not None
    assert f"row {bad['id']}: prompt_tokens (input_tokens): must be between 0 and" in str(error)
    assert "Nothing of this row's batch was written" in str(error)
    # the batches before it are in; nothing of its own batch (rows 51-100)
    ids = {
        int(r.removeprefix("newapi-"))
        for r in CallRecord.objects.values_list("request_id", flat=True)
    }
    assert ids == {r["id"] for r in rows[:50] if r["type"] in (2, 5)}
    assert ImportRun.objects.get().checkpoint == [50]


@pytest.mark.parametrize("column", ["user_id", "token_id", "channel_id"])
def test_an_id_too_large_for_new_apis_columns_is_a_bad_field(tmp_path, column):
    """A hand-edited dump can hold 1e300 where an id goes: refused by name, not a
    database error over an account or key id of 301 digits."""
    rows = realistic_rows(10)
    bad = next(r for r in rows if r["type"] == 2)
    bad[column] = 1e300
    path = tmp_path / "logs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    _out, _, error = run("--from", "newapi", str(path))

    assert error is not None
    assert f"row {bad['id']}: {column}: must fit in 64 bits, got a number of 301 digits" in str(
        error
    )
    assert CallRecord.objects.count() == 0


def test_skip_bad_imports_the_rest_and_lists_each_refused_row(tmp_path):
    rows = realistic_rows(120)
    calls = [r for r in rows if r["type"] == 2]
    calls[3]["prompt_tokens"] = -5
    calls[40]["model_name"] = ""
    calls[41]["ip"] = "not-an-ip"
    path = write_newapi_sqlite(tmp_path / "new-api.db", rows)
    refused_path = tmp_path / "refused.jsonl"

    out, _, error = run(
        "--from", "newapi", str(path), "--batch-size", "50", "--skip-bad", str(refused_path)
    )

    assert error is None
    assert (
        "3 refused (ip (client_ip): 1, model_name (model): 1, prompt_tokens (input_tokens): 1)"
        in out
    )
    refused = [json.loads(line) for line in refused_path.read_text().splitlines()]
    assert [(r["source_id"], r["field"]) for r in refused] == [
        (str(calls[3]["id"]), "prompt_tokens (input_tokens)"),
        (str(calls[40]["id"]), "model_name (model)"),
        (str(calls[41]["id"]), "ip (client_ip)"),
    ]
    assert refused[1]["reason"] == "must not be empty"
    assert refused[0]["row"]["prompt_tokens"] == -5
    good = [r for r in rows if r["type"] in (2, 5) and r not in (calls[3], calls[40], calls[41])]
    assert CallRecord.objects.count() == len(good)
    assert stored_sums() == source_sums(good)


def test_keys_are_found_by_the_source_id_on_every_run(history):
    _, path = history
    run("--from", "newapi", path)
    keys = set(ApiKey.objects.filter(source=Source.NEWAPI).values_list("external_id", flat=True))
    assert {"11", "12", "21", "31", "991", "user-1"} <= keys
    run("--from", "newapi", path, "--restart")
    assert ApiKey.objects.filter(source=Source.NEWAPI).count() == len(keys)
    assert Account.objects.filter(source=Source.NEWAPI).count() == 4  # 1, 2, 3 and 99


def test_a_missing_file_or_table_is_a_clear_error(tmp_path):
    _, _, error = run("--from", "newapi", str(tmp_path / "nope.db"))
    assert "cannot read" in str(error)
    empty = tmp_path / "empty.db"
    import sqlite3

    sqlite3.connect(empty).execute("CREATE TABLE other (id integer)").connection.close()
    _, _, error = run("--from", "newapi", str(empty))
    assert "cannot read table 'logs'" in str(error)
    _, _, error = run("--from", "newapi", str(empty), "--quota-per-usd", "zero")
    assert "--quota-per-usd must be a positive number" in str(error)
