"""``python manage.py import_calls FILE``: JSON Lines through the ingest service, batch by
batch; bad lines reported by number; a bad batch writes nothing; re-runs are idempotent."""

from __future__ import annotations

import io
import json
import re
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from logs.models import CallPayload, CallRecord
from tests.factories import ApiKeyFactory, record_dict

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def records(api_key, count: int, *, prefix: str = "req-imp") -> list[dict]:
    return [
        record_dict(
            api_key, request_id=f"{prefix}-{n:02d}", created_at=START + timedelta(minutes=n)
        )
        for n in range(1, count + 1)
    ]


def write_lines(path, lines: list) -> str:
    """Write one line per item: dicts as JSON, strings as they are."""
    text = "\n".join(item if isinstance(item, str) else json.dumps(item) for item in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return str(path)


def run(*args):
    """Run the command; (stdout, stderr, the CommandError or None)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_calls", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue(), exc
    return out.getvalue(), err.getvalue(), None


def stored_ids() -> list[str]:
    return sorted(CallRecord.objects.values_list("request_id", flat=True))


def test_a_good_file_is_imported_through_the_ingest_service(tmp_path, api_key):
    lines = records(api_key, 5)
    lines[2]["request"]["headers"]["Authorization"] = "Bearer sk-importedSECRET0123456789abcdef"
    path = write_lines(tmp_path / "calls.jsonl", lines)

    out, err, error = run(path)

    assert error is None
    assert err == ""
    assert "Done: 5 created, 0 already present, 0 bad lines." in out
    assert stored_ids() == [f"req-imp-{n:02d}" for n in range(1, 6)]
    call = CallRecord.objects.get(request_id="req-imp-03")
    assert call.api_key == api_key
    assert call.created_at == START + timedelta(minutes=3)
    # the service's redaction ran: no credential was stored
    headers = CallPayload.objects.get(call=call).request_headers
    assert "sk-importedSECRET" not in headers
    assert "[REDACTED]" in headers


def test_bad_lines_are_reported_by_number_and_their_batch_is_not_written(tmp_path, api_key):
    good = records(api_key, 6)
    bad = dict(good[3], status_code=99)  # line 5 (line 1 is blank)
    lines = ["", good[0], good[1], good[2], bad, good[4], good[5]]
    path = write_lines(tmp_path / "calls.jsonl", lines)

    _, err, error = run(path, "--batch-size", "2")

    assert isinstance(error, CommandError)
    assert "1 bad lines" in str(error)
    assert "4 created" in str(error)
    assert "line 5: status_code: must be between 100 and 599, got 99" in err
    assert "lines 4-5 not imported (batch had errors)" in err
    # batches: lines 2-3 written; lines 4-5 refused as a whole; lines 6-7 written
    assert stored_ids() == ["req-imp-01", "req-imp-02", "req-imp-05", "req-imp-06"]


def test_every_bad_line_of_a_batch_is_reported(tmp_path, api_key):
    good = records(api_key, 4)
    lines = [
        good[0],
        dict(good[1], api_key="sk-unknown12"),
        "{not json",
        dict(good[3], call_type="telepathy"),
    ]
    path = write_lines(tmp_path / "calls.jsonl", lines)

    _, err, error = run(path)

    assert error is not None
    assert "line 3: not valid JSON" in err
    assert "lines 1-4 not imported (batch had errors)" in err
    assert stored_ids() == []
    # once the JSON is fixed, the ingest service's own problems are reported by line
    write_lines(tmp_path / "calls.jsonl", [good[0], lines[1], good[2], lines[3]])
    _, err, error = run(path)
    assert error is not None
    assert "line 2: api_key: no key with prefix 'sk-unknown12'" in err
    assert "line 4: call_type: must be one of" in err
    assert "line 1:" not in err
    assert "line 3:" not in err
    assert stored_ids() == []


def test_an_invalid_json_line_is_reported_with_its_line_number(tmp_path, api_key):
    good = records(api_key, 3)
    path = write_lines(tmp_path / "calls.jsonl", [good[0], good[1], '{"request_id": "x",', good[2]])

    _, err, error = run(path, "--batch-size", "1")

    assert isinstance(error, CommandError)
    assert err.splitlines()[0].startswith("line 3: not valid JSON: ")
    assert "lines 3-3 not imported" in err
    assert stored_ids() == ["req-imp-01", "req-imp-02", "req-imp-03"]
    assert "3 created, 0 already present, 1 bad lines" in str(error)


def test_running_the_same_file_again_is_idempotent(tmp_path, api_key):
    path = write_lines(tmp_path / "calls.jsonl", records(api_key, 4))
    run(path, "--batch-size", "3")

    out, _, error = run(path, "--batch-size", "3")

    assert error is None
    assert "Done: 0 created, 4 already present, 0 bad lines." in out
    assert CallRecord.objects.count() == 4


def test_a_failed_import_is_resumed_by_running_the_fixed_file_again(tmp_path, api_key):
    good = records(api_key, 4)
    path = write_lines(
        tmp_path / "calls.jsonl", [good[0], good[1], dict(good[2], model=""), good[3]]
    )
    _, _, error = run(path, "--batch-size", "2")
    assert error is not None
    assert stored_ids() == ["req-imp-01", "req-imp-02"]

    write_lines(tmp_path / "calls.jsonl", good)
    out, _, error = run(path, "--batch-size", "2")

    assert error is None
    assert "Done: 2 created, 2 already present, 0 bad lines." in out
    assert stored_ids() == [f"req-imp-{n:02d}" for n in range(1, 5)]


def test_a_changed_replay_is_reported_not_written(tmp_path, api_key):
    good = records(api_key, 2)
    path = write_lines(tmp_path / "calls.jsonl", good)
    run(path)

    write_lines(tmp_path / "calls.jsonl", [good[0], dict(good[1], model="other-model")])
    _, err, error = run(path)

    assert error is not None
    assert "line 2: request_id: 'req-imp-02' was already recorded with different content" in err
    assert CallRecord.objects.get(request_id="req-imp-02").model == "gpt-4o-mini"


def test_values_the_database_cannot_store_are_reported_by_line(tmp_path, api_key):
    """A NUL, a lone surrogate (both spelled as JSON escapes) or a zoned IPv6 address
    is a bad line like any other: reported by number, its batch not written, no
    traceback; and the report itself can be written to a UTF-8 terminal."""
    good = records(api_key, 6)
    lines = [
        good[0],
        good[1],
        dict(good[2], request_id="req-imp-\x0003"),
        dict(good[3], model="gpt-\ud800"),
        dict(good[4], client_ip="fe80::1%eth0"),
        dict(good[5], request={"body": {"k\udfff": "v"}}),
    ]
    path = write_lines(tmp_path / "calls.jsonl", lines)  # json.dumps writes \u0000, \ud800

    out, err, error = run(path, "--batch-size", "2")

    assert isinstance(error, CommandError)
    assert "2 created, 0 already present, 4 bad lines" in str(error)
    assert "line 3: request_id: must not contain the NUL character" in err
    assert "line 4: model: must not contain a lone surrogate" in err
    assert "line 5: client_ip: must be an address without a zone" in err
    assert "line 6: request.body: has a key ('k\\udfff') with a lone surrogate" in err
    assert stored_ids() == ["req-imp-01", "req-imp-02"]
    (out + err + str(error)).encode("utf-8")


def test_a_dash_reads_standard_input(monkeypatch, api_key):
    lines = "\n".join(json.dumps(r) for r in records(api_key, 3, prefix="req-stdin")) + "\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))

    out, _, error = run("-")

    assert error is None
    assert "Done: 3 created" in out
    assert stored_ids() == ["req-stdin-01", "req-stdin-02", "req-stdin-03"]


def test_a_missing_file_is_a_command_error(tmp_path, db):
    _, _, error = run(str(tmp_path / "nope.jsonl"))

    assert isinstance(error, CommandError)
    assert "cannot read" in str(error)
    assert "nope.jsonl" in str(error)


def test_a_file_that_is_not_utf8_is_a_command_error(tmp_path, db):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"model": "caf\u00e9"}\n'.encode("latin-1"))

    _, _, error = run(str(path))

    assert isinstance(error, CommandError)
    assert "not UTF-8" in str(error)
    assert stored_ids() == []


@pytest.mark.parametrize("size", ["0", "-1", "1001", "abc"])
def test_an_invalid_batch_size_is_a_command_error(tmp_path, api_key, size, settings):
    settings.USAGELOGS_INGEST_MAX_BATCH = 1000
    path = write_lines(tmp_path / "calls.jsonl", records(api_key, 2))

    with pytest.raises(CommandError):
        call_command(
            "import_calls", path, f"--batch-size={size}", stdout=io.StringIO(), stderr=io.StringIO()
        )

    assert stored_ids() == []


def test_the_batch_size_is_capped_by_the_ingest_limit(tmp_path, api_key, settings):
    settings.USAGELOGS_INGEST_MAX_BATCH = 3
    path = write_lines(tmp_path / "calls.jsonl", records(api_key, 7))

    _, _, too_big = run(path, "--batch-size", "4")
    assert isinstance(too_big, CommandError)
    assert "between 1 and 3" in str(too_big)
    assert stored_ids() == []

    out, _, error = run(path)  # the default is the limit: three batches
    assert error is None
    assert out.count("… line ") == 3
    assert CallRecord.objects.count() == 7


def test_an_empty_file_imports_nothing(tmp_path, db):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")

    out, _, error = run(str(path))

    assert error is None
    assert "Done: 0 created, 0 already present, 0 bad lines." in out


# --- worker processes (PostgreSQL) -----------------------------------------------------


def without_timings(text: str) -> str:
    """Progress lines end with the elapsed time, which differs from run to run."""
    return re.sub(r" \(\d+\.\d s\)$", "", text, flags=re.MULTILINE)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")  # replicas too, if set
def test_worker_processes_report_exactly_what_one_process_does(tmp_path):
    key = ApiKeyFactory()
    good = records(key, 9)
    lines = [*good[:4], dict(good[4], status_code=99), "{not json", *good[5:], "", good[0]]
    path = write_lines(tmp_path / "calls.jsonl", lines)

    out_parallel, err_parallel, error_parallel = run(path, "--batch-size", "2", "--workers", "3")
    stored_parallel = stored_ids()
    payloads_parallel = CallPayload.objects.count()
    CallPayload.objects.all().delete()
    CallRecord.objects.all().delete()
    out_single, err_single, error_single = run(path, "--batch-size", "2", "--workers", "1")

    assert without_timings(out_parallel) == without_timings(out_single)
    assert err_parallel == err_single
    assert str(error_parallel) == str(error_single)
    assert "line 6: not valid JSON" in err_parallel
    assert "lines 5-6 not imported (batch had errors)" in err_parallel
    assert "8 created, 1 already present, 1 bad lines" in str(error_parallel)
    assert stored_parallel == stored_ids()
    assert stored_parallel == [f"req-imp-{n:02d}" for n in (1, 2, 3, 4, 6, 7, 8, 9)]
    assert payloads_parallel == CallPayload.objects.count() == 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")  # replicas too, if set
def test_worker_processes_import_a_large_file_once(tmp_path):
    key = ApiKeyFactory()
    path = write_lines(tmp_path / "calls.jsonl", records(key, 60))

    out, _, error = run(path, "--batch-size", "7", "--workers", "2")
    again, _, again_error = run(path, "--batch-size", "5", "--workers", "2")

    assert error is None and again_error is None
    assert "Done: 60 created, 0 already present, 0 bad lines." in out
    assert "Done: 0 created, 60 already present, 0 bad lines." in again
    assert CallRecord.objects.count() == 60


def test_workers_need_postgresql_and_no_open_transaction(tmp_path, api_key):
    path = write_lines(tmp_path / "calls.jsonl", records(api_key, 2))

    _, _, error = run(path, "--workers", "2")  # inside the test's transaction (or on SQLite)

    assert isinstance(error, CommandError)
    assert "--workers" in str(error)
    assert stored_ids() == []
    _, _, error = run(path, "--workers", "0")
    assert isinstance(error, CommandError)
