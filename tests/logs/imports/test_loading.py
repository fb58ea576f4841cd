"""PostgreSQL: past months without a partition are loaded into tables without
indexes, then indexed and attached as the months' partitions; a crash at any
point leaves whole batches, and the next run imports nothing twice."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from django.core.management import call_command
from django.db import connection

from logs.imports import loading as loading_module
from logs.imports import runner as runner_module
from logs.imports.newapi import NewApiFormat
from logs.imports.runner import run_import
from logs.models import (
    COARSE_ROLLUP_LEVELS,
    FINE_ROLLUP_LEVELS,
    CallRecord,
    HourlyCallRollup,
    ImportRun,
)
from logs.retention.partitions import loading_name, partition_name
from logs.rollups.rebuild import rebuild_rollups
from tests.factories import record_dict
from tests.logs.imports.sources import (
    interrupted_after,
    realistic_rows,
    write_jsonl,
    write_newapi_sqlite,
)
from tests.logs.imports.test_newapi import (
    calls_written,
    rollup_sums,
    source_sums,
    stored_sums,
)
from tests.logs.imports.test_newapi import without_errors as rollups_of

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _tables(pattern: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE %s", [pattern])
        return {row[0] for row in cursor.fetchall()}


def _index_definitions(table: str) -> set[str]:
    """The table's indexes, by what they index (names differ)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT regexp_replace(indexdef, '^.* USING ', '') FROM pg_indexes "
            "WHERE tablename = %s",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


def _every_rollup_row() -> dict[str, list[tuple]]:
    rows = {}
    for level in (HourlyCallRollup, *FINE_ROLLUP_LEVELS, *COARSE_ROLLUP_LEVELS):
        fields = [f.attname for f in level._meta.concrete_fields if f.attname != "id"]
        rows[level.__name__] = sorted(level.objects.values_list(*fields))
    return rows


def _months(rows) -> set[date]:
    return {
        date(moment.year, moment.month, 1)
        for moment in (datetime.fromtimestamp(r["created_at"], tz=UTC) for r in rows)
    }


def _drop_past_months() -> None:
    """Start with no partition of the sources' months (earlier tests' imports
    leave theirs: a flush empties tables, it does not drop them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname ~ %s",
            [r"^logs_call(record|payload)_p\d{4}_\d{2}(_load)?$"],
        )
        for (name,) in cursor.fetchall():
            if name.endswith("_load") or name[-7:] < "2026_11":
                cursor.execute(f'DROP TABLE "{name}"')


@pytest.fixture(autouse=True)
def no_past_months():
    _drop_past_months()
    yield
    _drop_past_months()


@pytest.fixture
def history(tmp_path):
    rows = realistic_rows(600)
    for n, row in enumerate(rows):
        row["created_at"] += n * 9_000  # over three months
    return rows, str(write_newapi_sqlite(tmp_path / "new-api.db", rows))


def test_past_months_are_loaded_without_indexes_and_attached_with_all_of_them(history):
    rows, path = history
    current = partition_name("logs_callrecord", date(2026, 12, 1))
    out = io.StringIO()

    call_command("import_history", "--from", "newapi", path, "--batch-size", "100", stdout=out)

    months = _months(rows)
    assert len(months) == 3
    assert "Months loaded without indexes, then indexed: " in out.getvalue()
    assert stored_sums() == source_sums(rows)
    assert rollup_sums() == rollups_of(source_sums(rows))
    assert _tables("%\\_load") == set()
    for month in months:
        for table in ("logs_callrecord", "logs_callpayload"):
            name = partition_name(table, month)
            reference = current.replace("logs_callrecord", table)
            assert _index_definitions(name) == _index_definitions(reference)
    assert ImportRun.objects.get().staged == []


def test_a_month_that_already_has_a_partition_is_written_the_usual_way(history):
    rows, path = history
    first = min(_months(rows))
    from logs.retention.partitions import ensure_partitions

    ensure_partitions([first])

    call_command("import_history", "--from", "newapi", path, stdout=io.StringIO())

    run = ImportRun.objects.get()
    assert stored_sums() == source_sums(rows)
    assert run.staged == []
    assert first not in {date.fromisoformat(m) for m in run.staged}


def test_a_crash_before_the_loaded_months_are_indexed_resumes_and_imports_nothing_twice(
    history,
):
    rows, path = history
    with pytest.raises(KeyboardInterrupt):
        run_import(NewApiFormat(), path, batch_size=100, on_batch=interrupted_after(2))

    run = ImportRun.objects.get()
    assert run.staged  # loaded, not yet indexed nor attached: in no query yet
    assert _tables("%\\_load")
    assert CallRecord.objects.count() == 0
    assert calls_written() == sum(1 for r in rows[:200] if r["type"] in (2, 5))

    out = io.StringIO()
    call_command("import_history", "--from", "newapi", path, "--batch-size", "100", stdout=out)

    assert "0 already present" in out.getvalue()
    assert stored_sums() == source_sums(rows)
    assert rollup_sums() == rollups_of(source_sums(rows))
    assert _tables("%\\_load") == set()
    run.refresh_from_db()
    assert run.imported == sum(1 for r in rows if r["type"] in (2, 5))


def test_a_batch_written_before_its_checkpoint_was_recorded_is_not_written_again(
    history, monkeypatch
):
    """The crash between a batch's commit and its checkpoint: the rerun reads the
    batch again, finds it noted in the run, and skips it (its calls, in a month
    loaded without indexes, are not looked up one by one)."""
    rows, path = history
    record = runner_module._record
    calls = []

    def crash_on_the_third(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return record(*args, **kwargs)

    monkeypatch.setattr(runner_module, "_record", crash_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        run_import(NewApiFormat(), path, batch_size=100)
    monkeypatch.setattr(runner_module, "_record", record)
    run = ImportRun.objects.get()
    assert run.checkpoint == [rows[199]["id"]]
    assert len(run.ahead) == 1
    assert calls_written() == sum(1 for r in rows[:300] if r["type"] in (2, 5))

    # Another batch size asked: the run keeps its own, to know its batches again.
    summary = run_import(NewApiFormat(), path, batch_size=70)

    assert stored_sums() == source_sums(rows)
    assert CallRecord.objects.count() == sum(1 for r in rows if r["type"] in (2, 5))
    run.refresh_from_db()
    assert run.ahead == []
    assert run.imported == sum(1 for r in rows if r["type"] in (2, 5))
    assert summary.imported + sum(1 for r in rows[:200] if r["type"] in (2, 5)) == run.imported


def test_a_crash_while_attaching_leaves_the_other_months_for_the_next_run(history, monkeypatch):
    rows, path = history
    attach = loading_module.attach_loaded_month
    attached = []

    def crash_after_the_first(month):
        if attached:
            raise KeyboardInterrupt
        attached.append(month)
        return attach(month)

    monkeypatch.setattr(loading_module, "attach_loaded_month", crash_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        run_import(NewApiFormat(), path, batch_size=100)
    monkeypatch.setattr(loading_module, "attach_loaded_month", attach)
    run = ImportRun.objects.get()
    assert len(run.staged) == len(_months(rows)) - 1
    assert loading_name("logs_callrecord", attached[0]) not in _tables("%\\_load")

    run_import(NewApiFormat(), path, batch_size=100)

    assert stored_sums() == source_sums(rows)
    assert rollup_sums() == rollups_of(source_sums(rows))
    assert _tables("%\\_load") == set()


def test_a_request_id_read_twice_is_judged_against_the_loaded_calls(tmp_path, api_key):
    """Own JSON Lines may repeat a request id; in a month loaded without indexes
    the second is judged in full: the same call is present, another is refused."""
    past = "2026-03-10T12:00:00+00:00"
    records = [record_dict(api_key, request_id=f"own-{n}", created_at=past) for n in range(8)]
    same = dict(records[1])
    other = {**records[2], "output_tokens": records[2]["output_tokens"] + 1}
    path = write_jsonl(tmp_path / "calls.jsonl", [*records, same, other])
    refused = tmp_path / "refused.jsonl"
    out = io.StringIO()

    call_command(
        "import_history", "--from", "jsonl", str(path), "--batch-size", "3",
        "--skip-bad", str(refused), stdout=out,
    )  # fmt: skip

    assert "Done: 8 imported, 1 already present" in out.getvalue()
    assert "1 refused (request_id: 1)" in out.getvalue()
    assert "own-2" in refused.read_text()
    assert sorted(CallRecord.objects.values_list("request_id", flat=True)) == [
        f"own-{n}" for n in range(8)
    ]
    assert ImportRun.objects.get().staged == []


def test_several_workers_load_the_months_and_rebuild_their_rollups_side_by_side(history):
    """Three months: batches written out of order by two workers, each month's
    rollups rebuilt in a transaction of its own, two at a time; all exact."""
    rows, path = history
    out = io.StringIO()

    call_command(
        "import_history", "--from", "newapi", path, "--batch-size", "50", "--workers", "2",
        stdout=out,
    )  # fmt: skip

    assert f"Done: {sum(1 for r in rows if r['type'] in (2, 5)):,} imported" in out.getvalue()
    assert stored_sums() == source_sums(rows)
    assert rollup_sums() == rollups_of(source_sums(rows))
    assert _tables("%\\_load") == set()
    run = ImportRun.objects.get()
    assert (run.staged, run.ahead, run.rollups_from) == ([], [], None)
    # Every level, row for row, as one rebuild of everything gives it.
    rebuilt_by_month = _every_rollup_row()
    rebuild_rollups()
    assert rebuilt_by_month == _every_rollup_row()
