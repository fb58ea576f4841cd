"""A complete export says so in its last line; one cut off midway does not.

When the server dies or the database connection drops mid-export, an
HTTP/1.0 client (nginx's default towards the app) sees the connection close,
as at the end of a whole file. So every complete export (admin, portal, API;
by COPY on PostgreSQL, by Python elsewhere) ends with ``# end of export: N
calls``, written once the database has handed over the last row, and an
export whose reading fails midway ends with an error (the server aborts the
response) and without that line.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import OperationalError, connections

from logs.models import AccessRecord, CallRecord
from logs.read import export as resources
from logs.read.export import CSV_HEADERS
from tests.conftest import logged_in
from tests.factories import AccountFactory, ApiKeyFactory, StaffUserFactory, make_calls, owner_of

BASE = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
SURFACES = {
    "api": "/api/v1/calls/export/",
    "admin": "/admin/logs/callrecord/export/",
    "portal": "/portal/logs/callrecord/export/",
}
CLOSING = b"# end of export:"


@pytest.fixture
def shop(db):
    """One account with twelve calls, its owner, and support staff."""
    account = AccountFactory(name="Shop")
    key = ApiKeyFactory(account=account, name="shop-prod")
    make_calls(key, 12, created_at=BASE)
    return {"owner": owner_of(account), "staff": StaffUserFactory(), "calls": 12}


def client_for(shop, surface: str):
    return logged_in(shop["staff"] if surface == "admin" else shop["owner"])


def read_until_it_breaks(response) -> tuple[bytes, Exception | None]:
    """What a client receives of a streamed response, and the error that ended
    it early if one did (the server then closes the connection)."""
    received = []
    try:
        for chunk in response.streaming_content:
            received.append(chunk if isinstance(chunk, bytes) else chunk.encode())
    except Exception as error:  # the server's view: the response is aborted
        return b"".join(received), error
    return b"".join(received), None


def force_python_path(monkeypatch) -> None:
    monkeypatch.setattr(resources, "uses_copy", lambda calls: (False, calls.db))


# --- complete files -------------------------------------------------------------------------


@pytest.mark.parametrize("surface", SURFACES)
def test_a_complete_export_ends_with_the_count_of_its_calls(shop, surface):
    data, error = read_until_it_breaks(client_for(shop, surface).get(SURFACES[surface]))

    assert error is None
    assert data.endswith(b"\r\n# end of export: 12 calls\r\n")
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[0] == CSV_HEADERS
    assert len(rows) == 1 + 12 + 1
    # One cell of its own, so a CSV reader reads it as one short last row.
    assert rows[-1] == ["# end of export: 12 calls"]


@pytest.mark.parametrize(("calls", "line"), [(0, b"0 calls"), (1, b"1 call")])
def test_an_export_of_no_or_one_call_closes_too(db, calls, line):
    key = ApiKeyFactory()
    if calls:
        make_calls(key, calls, created_at=BASE)
    client = logged_in(owner_of(key.account))

    data, error = read_until_it_breaks(client.get(SURFACES["api"]))

    assert error is None
    assert data.endswith(b"\r\n# end of export: " + line + b"\r\n")


def test_an_export_filtered_to_nothing_closes_with_zero(shop):
    client = client_for(shop, "api")

    data, error = read_until_it_breaks(client.get(SURFACES["api"], {"model": "no-such-model"}))

    assert error is None
    assert data.decode().split("\r\n") == [",".join(CSV_HEADERS), "# end of export: 0 calls", ""]


@pytest.mark.parametrize("path", ["python", pytest.param("copy", marks=pytest.mark.postgres)])
def test_both_paths_write_the_same_closing_line(shop, monkeypatch, path):
    if path == "python":
        force_python_path(monkeypatch)
    calls = CallRecord.objects.all()

    data = b"".join(
        chunk if isinstance(chunk, bytes) else chunk.encode()
        for chunk in resources.stream_csv(calls)
    )

    assert data.endswith(b"\r\n# end of export: 12 calls\r\n")


# --- files cut off midway ---------------------------------------------------------------------


@pytest.mark.parametrize("surface", SURFACES)
def test_a_read_failing_midway_aborts_without_the_closing_line(shop, monkeypatch, surface):
    """The Python path (SQLite; forced on PostgreSQL): the database read breaks
    after a few rows have gone out."""
    force_python_path(monkeypatch)
    monkeypatch.setattr(resources, "EXPORT_CHUNK_ROWS", 1)
    whole_rows = resources.iter_csv_rows

    def rows_then_a_dropped_connection(calls, **kwargs):
        for number, row in enumerate(whole_rows(calls, **kwargs)):
            if number == 5:
                raise OperationalError("server closed the connection unexpectedly")
            yield row

    monkeypatch.setattr(resources, "iter_csv_rows", rows_then_a_dropped_connection)

    data, error = read_until_it_breaks(client_for(shop, surface).get(SURFACES[surface]))

    assert isinstance(error, OperationalError)
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[0] == CSV_HEADERS
    assert len(rows) == 1 + 5  # what was sent before the failure
    assert CLOSING not in data
    record = AccessRecord.objects.get(action=AccessRecord.Action.EXPORT)
    assert record.row_count == 5


@pytest.mark.postgres
@pytest.mark.parametrize("surface", SURFACES)
def test_a_copy_failing_midway_aborts_without_the_closing_line(shop, monkeypatch, surface):
    """The COPY path: the connection breaks after the first rows went out."""
    monkeypatch.setattr(resources, "EXPORT_CHUNK_BYTES", 1)
    whole_batches = resources._copy_batches

    def batches_then_a_dropped_connection(*args):
        batches = whole_batches(*args)
        yield next(batches)
        yield next(batches)
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(resources, "_copy_batches", batches_then_a_dropped_connection)

    data, error = read_until_it_breaks(client_for(shop, surface).get(SURFACES[surface]))

    assert isinstance(error, OperationalError)  # Django's, wrapping psycopg's
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[0] == CSV_HEADERS
    assert len(rows) == 1 + 2
    assert CLOSING not in data


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_database_connection_killed_mid_copy_leaves_no_closing_line(monkeypatch):
    """The real thing: the server ends the export's database session between
    two chunks, as when PostgreSQL restarts or a proxy drops the connection."""
    monkeypatch.setattr(resources, "EXPORT_CHUNK_BYTES", 1)
    key = ApiKeyFactory()
    make_calls(key, 50, created_at=BASE)
    client = logged_in(owner_of(key.account))
    response = client.get(SURFACES["api"])
    stream = iter(response.streaming_content)
    received = [next(stream), next(stream)]  # the header and the first row
    connection = connections["default"]
    backend = connection.connection.info.backend_pid
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        password=settings["PASSWORD"] or None,
        autocommit=True,
    ) as other:
        # Waits (up to 10 s) until that session is gone.
        assert other.execute("SELECT pg_terminate_backend(%s, 10000)", [backend]).fetchone()[0]

    try:
        with pytest.raises(OperationalError):
            for chunk in stream:
                received.append(chunk)
    finally:
        response.close()
        connection.close()

    data = b"".join(received)
    assert data.startswith(b"id,request id,")
    assert CLOSING not in data
    assert CallRecord.objects.count() == 50  # a new session; nothing was lost


@pytest.mark.parametrize("rows", [0, 1, 2, 1_000_000])
def test_the_closing_line_is_one_plain_csv_cell(rows):
    line = resources.end_of_export_line(rows)

    assert line.endswith("\r\n")
    assert list(csv.reader(io.StringIO(line, newline=""))) == [[line[:-2]]]
    assert line.startswith("# end of export: ")
    assert int(line.split(": ")[1].split()[0]) == rows


def test_a_csv_dict_reader_sees_the_closing_line_in_the_first_column(shop):
    data, _ = read_until_it_breaks(client_for(shop, "api").get(SURFACES["api"]))

    records = list(csv.DictReader(io.StringIO(data.decode(), newline="")))

    assert len(records) == 12 + 1
    assert records[-1]["id"] == "# end of export: 12 calls"
    assert all(value is None for key, value in records[-1].items() if key != "id")
    assert all(int(record["id"]) for record in records[:-1])
