"""Garbage rows in a dump (anything a hand-edited CSV or JSONL can hold): never a
crash, a clear message naming the row and its field, and nothing of the batch written."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logs.models import CallRecord, ImportRun
from tests.logs.imports.sources import NEWAPI_COLUMNS, realistic_rows

pytestmark = pytest.mark.django_db

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "2", "5", "1e9", "true", "[]", "{", "{}", "\x00", "\ud800"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)

garbage_row = st.fixed_dictionaries(
    {"type": st.sampled_from([2, 5, 1, "2", "x", None])},
    optional={column: junk for column in NEWAPI_COLUMNS if column not in ("id", "type")},
)


def _import(rows: list[dict], *args: str) -> tuple[str, CommandError | None]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "logs.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")  # \ud800 as its escape
        out = io.StringIO()
        try:
            call_command(
                "import_history",
                "--from",
                "newapi",
                str(path),
                "--batch-size",
                "1000",
                *args,
                stdout=out,
                stderr=io.StringIO(),
            )
        except CommandError as exc:
            return out.getvalue(), exc
        finally:
            for skip_file in args[1:]:
                Path(skip_file).unlink(missing_ok=True)
    return out.getvalue(), None


def _reset() -> None:
    CallRecord.objects.all().delete()
    ImportRun.objects.all().delete()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.lists(garbage_row, min_size=1, max_size=4), position=st.integers(0, 5))
def test_a_garbage_row_stops_the_batch_with_its_id_and_field(garbage, position):
    _reset()
    rows = realistic_rows(6, seed=position)
    for offset, row in enumerate(garbage):
        rows.insert(position, {**row, "id": 9000 + offset})

    _, error = _import(rows)

    if error is None:  # garbage that happened to be a valid row, or a skipped type
        return
    message = str(error)
    assert message.startswith("row "), message
    bad_id = message.split(":")[0].removeprefix("row ")
    assert bad_id in {str(r["id"]) for r in rows}
    assert CallRecord.objects.count() == 0  # one batch: nothing of it written


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.lists(garbage_row, min_size=1, max_size=4))
def test_skip_bad_accounts_for_every_garbage_row(garbage, tmp_path):
    _reset()
    rows = realistic_rows(6, seed=3)
    rows += [{**row, "id": 9000 + n} for n, row in enumerate(garbage)]
    refused_file = str(tmp_path / "refused.jsonl")

    _out, error = _import(rows, "--skip-bad", refused_file)

    assert error is None, error
    good = sum(1 for r in rows[:6] if r["type"] in (2, 5))
    assert CallRecord.objects.filter(request_id__regex=r"^newapi-[1-6]$").count() == good
    run = ImportRun.objects.get()
    skipped = sum(run.skipped.values())
    assert run.imported + run.refused + skipped == len(rows)
