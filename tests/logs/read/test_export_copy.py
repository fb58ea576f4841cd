"""The CSV export on PostgreSQL (``COPY … TO STDOUT``) writes byte for byte the
file the Python writer writes (the SQLite path), for awkward data: formula
triggers, commas, quotes, line breaks, unicode, empty and NULL cells, whole and
fractional seconds, tiny and large amounts; and it keeps the scope and filters
of the queryset it is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connections

from logs.models import AccessRecord, CallRecord
from logs.read.export import (
    CSV_COLUMNS,
    CSV_HEADERS,
    _copy_chunks,
    _crlf,
    _Progress,
    _python_chunks,
    stream_csv,
    uses_copy,
)
from logs.read.filters import CallFilters, filter_calls
from logs.read.scope import visible_calls
from tests.conftest import logged_in
from tests.factories import (
    AccountFactory,
    ApiKeyFactory,
    GroupFactory,
    StaffUserFactory,
    make_call,
    owner_of,
)
from tests.pages import whole_export_rows

API_EXPORT = "/api/v1/calls/export/"
ADMIN_EXPORT = "/admin/logs/callrecord/export/"
PORTAL_EXPORT = "/portal/logs/callrecord/export/"

MULTILINE = 'line one\nline "two", with a comma\r\nthree\rfour'
BASE = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


def python_file(calls) -> bytes:
    """The export as the Python writer (the SQLite path) writes it."""
    return "".join(_python_chunks(calls, _Progress())).encode()


def copy_file(calls) -> bytes:
    copy, using = uses_copy(calls)
    assert copy, "not on PostgreSQL"
    return b"".join(_copy_chunks(calls, using, _Progress()))


def rows_of(data: bytes) -> list[list[str]]:
    """The rows of a complete file, its closing line checked and left off."""
    return whole_export_rows(data.decode())


def body(response) -> bytes:
    assert response.status_code == 200, response.content
    content = b"".join(
        chunk if isinstance(chunk, bytes) else chunk.encode()
        for chunk in response.streaming_content
    )
    return content


class Awkward:
    """Two accounts; A's calls carry every awkward value, B has one plain call."""

    def __init__(self):
        self.a = AccountFactory(name='Ünïcødé, "Ltd" 🚀', slug="awk-a")
        self.b = AccountFactory(name="=Bravo+Corp", slug="awk-b")
        self.owner_a = owner_of(self.a, username="awk-owner-a")
        self.owner_b = owner_of(self.b, username="awk-owner-b")
        self.staff = StaffUserFactory(username="awk-support")
        formula_group = GroupFactory(name="=grp")
        plain_group = GroupFactory(name="plain")
        self.ops = ApiKeyFactory(account=self.a, name="@ops", group=formula_group)
        self.comma = ApiKeyFactory(account=self.a, name="prod, main", group=plain_group)
        self.unicode = ApiKeyFactory(account=self.a, name="clé-ü 数据", group=plain_group)
        self.b_key = ApiKeyFactory(account=self.b, name="-bravo", group=plain_group)

        def call(key, minutes, microsecond=0, **fields):
            created = (BASE + timedelta(minutes=minutes)).replace(microsecond=microsecond)
            return make_call(key, created_at=created, **fields)

        self.formulas = call(
            self.ops,
            0,
            request_id="=1+2",
            model='=HYPERLINK("http://evil.example","x")',
            endpoint="+cmd",
            status_code=500,
            error_reason="-2+3",
            ttft_ms=None,
            usage="123456.5",
            cost="0.00000012",
        )
        self.lines = call(
            self.comma,
            1,
            microsecond=5,
            request_id="multi-line",
            status_code=429,
            error_reason="placeholder",
            stream=True,
            usage="0",
            cost="0",
        )
        self.tabs = call(self.comma, 2, microsecond=123456, request_id="tabs", usage="0.000001")
        self.empty = call(
            self.unicode,
            3,
            microsecond=999999,
            request_id="unicode-ü",
            model="模型-🚀",
            endpoint="",
            error_reason="",
            call_type="embedding",
            cost="999999.99999999",
            usage="999999999.999999",
        )
        self.at = call(self.unicode, 4, request_id="@at", model="a=b, c", ttft_ms=0)
        self.theirs = call(self.b_key, 5, request_id="bravo-1", model="a=b, c")
        # Values ingest would strip or refuse, written directly: a cell may
        # still start with a tab or CR, hold line breaks, or be negative.
        CallRecord.objects.filter(pk=self.lines.pk).update(error_reason=MULTILINE)
        CallRecord.objects.filter(pk=self.tabs.pk).update(
            model="\tmodel", error_reason="\rreason", endpoint=" /v1/x", usage=Decimal("-0.5")
        )
        CallRecord.objects.filter(pk=self.at.pk).update(cost=Decimal("-0.00000001"))


@pytest.fixture
def awkward(db) -> Awkward:
    return Awkward()


# --- on any database ---------------------------------------------------------------------


def test_crlf_ends_rows_but_leaves_line_breaks_inside_cells():
    data = b'1,"a\nb ""q""\r\nc",x\n2,plain,"\n"\n3,,\n'
    assert _crlf(data) == b'1,"a\nb ""q""\r\nc",x\r\n2,plain,"\n"\r\n3,,\r\n'
    assert _crlf(b"1,a\n2,b\n") == b"1,a\r\n2,b\r\n"
    # Told how many rows it holds: three rows, five line breaks, two inside cells.
    assert _crlf(data, 3) == _crlf(data)
    assert _crlf(b'1,"a"\n2,"b"\n', 2) == b'1,"a"\r\n2,"b"\r\n'


def test_the_sql_of_every_column_is_safe_to_merge_parameters_into():
    # The COPY statement goes through psycopg's client-side merging: a bare "%"
    # would be taken for a placeholder.
    for column in CSV_COLUMNS:
        assert "%" not in column.sql and "{}" in column.sql, column.name


def test_the_python_path_writes_the_awkward_cells(awkward):
    rows = rows_of(python_file(visible_calls(awkward.staff)))
    cells = {row[1]: dict(zip(CSV_HEADERS, row, strict=True)) for row in rows[1:]}
    assert rows[0] == CSV_HEADERS
    assert cells["'=1+2"]["usage"] == "123456.500000"
    assert cells["'=1+2"]["cost"] == "0.00000012"
    assert cells["'=1+2"]["time to first token (ms)"] == ""
    assert cells["multi-line"]["error reason"] == MULTILINE
    assert cells["tabs"]["usage"] == "'-0.500000"


# --- PostgreSQL: COPY against the Python writer --------------------------------------------


@pytest.mark.postgres
def test_copy_writes_the_python_file_byte_for_byte(awkward):
    calls = visible_calls(awkward.staff)
    ours = copy_file(calls)
    assert ours == python_file(calls)
    # Rows end with CRLF; the line breaks inside a quoted cell stay as they are.
    assert ours.endswith(b"\r\n")
    assert b'"line one\nline ""two"", with a comma\r\nthree\rfour"' in ours
    assert ours.count(b"\r\n") == 7 + 1 + 1  # header, six rows (one has a CRLF), closing line
    assert ours.endswith(b"\r\n# end of export: 6 calls\r\n")


@pytest.mark.postgres
def test_copy_cells_are_exact(awkward):
    rows = rows_of(copy_file(visible_calls(awkward.staff)))
    assert rows[0] == CSV_HEADERS
    cells = {row[1]: dict(zip(CSV_HEADERS, row, strict=True)) for row in rows[1:]}
    assert list(cells) == ["bravo-1", "'@at", "unicode-ü", "tabs", "multi-line", "'=1+2"]

    evil = cells["'=1+2"]
    assert evil["account"] == 'Ünïcødé, "Ltd" 🚀'
    assert evil["key name"] == "'@ops"
    assert evil["group"] == "'=grp"
    assert evil["model"] == '\'=HYPERLINK("http://evil.example","x")'
    assert evil["endpoint"] == "'+cmd"
    assert evil["error reason"] == "'-2+3"
    assert evil["time (UTC)"] == "2026-03-14T15:09:26Z"
    assert evil["time to first token (ms)"] == ""
    assert evil["usage"] == "123456.500000"
    assert evil["cost"] == "0.00000012"
    assert evil["stream"] == "no"
    assert evil["id"] == str(awkward.formulas.pk)

    lines = cells["multi-line"]
    assert lines["error reason"] == MULTILINE
    assert lines["key name"] == "prod, main"
    assert lines["time (UTC)"] == "2026-03-14T15:10:26.000005Z"
    assert lines["stream"] == "yes"
    assert (lines["usage"], lines["cost"]) == ("0.000000", "0.00000000")

    tabs = cells["tabs"]
    assert tabs["model"] == "'\tmodel"
    assert tabs["error reason"] == "'\rreason"
    assert tabs["endpoint"] == " /v1/x"
    assert tabs["time (UTC)"] == "2026-03-14T15:11:26.123456Z"
    assert tabs["usage"] == "'-0.500000"

    empty = cells["unicode-ü"]
    assert empty["model"] == "模型-🚀"
    assert empty["key name"] == "clé-ü 数据"
    assert (empty["endpoint"], empty["error reason"]) == ("", "")
    assert empty["time (UTC)"] == "2026-03-14T15:12:26.999999Z"
    assert (empty["usage"], empty["cost"]) == ("999999999.999999", "999999.99999999")

    at = cells["'@at"]
    assert at["model"] == "a=b, c"
    assert at["time to first token (ms)"] == "0"
    assert at["cost"] == "'-0.00000001"

    assert cells["bravo-1"]["account"] == "'=Bravo+Corp"
    assert cells["bravo-1"]["key name"] == "'-bravo"


@pytest.mark.postgres
@pytest.mark.parametrize(
    "filters",
    [
        pytest.param(CallFilters(), id="none"),
        pytest.param(CallFilters(model="a=b, c"), id="model"),
        pytest.param(CallFilters(key_name="prod, main"), id="key"),
        pytest.param(CallFilters(group="=grp"), id="group"),
        pytest.param(CallFilters(call_type="embedding"), id="call-type"),
        pytest.param(CallFilters(status="client_error"), id="status"),
        pytest.param(CallFilters(request_id="=1+2"), id="request-id"),
        pytest.param(
            CallFilters(start=BASE + timedelta(minutes=1), end=BASE + timedelta(minutes=3)),
            id="time-range",
        ),
        pytest.param(CallFilters(model="no-such-model"), id="nothing"),
    ],
)
def test_copy_equals_the_python_file_for_every_filter_and_scope(awkward, filters):
    for user in (awkward.staff, awkward.owner_a, awkward.owner_b):
        calls = filter_calls(visible_calls(user), filters)
        assert copy_file(calls) == python_file(calls), (user.username, filters)


@pytest.mark.postgres
def test_an_owner_never_gets_another_accounts_row(awkward):
    theirs = {awkward.theirs.request_id}
    for filters in (
        CallFilters(),
        CallFilters(model="a=b, c"),
        CallFilters(account_id=awkward.b.pk),
    ):
        rows = rows_of(copy_file(filter_calls(visible_calls(awkward.owner_a), filters)))
        assert not theirs & {row[1] for row in rows[1:]}, filters
        assert {row[3] for row in rows[1:]} <= {'Ünïcødé, "Ltd" 🚀'}
    rows = rows_of(copy_file(visible_calls(awkward.owner_b)))
    assert [row[1] for row in rows[1:]] == ["bravo-1"]


@pytest.mark.postgres
def test_an_empty_queryset_exports_the_header_only(awkward):
    assert copy_file(CallRecord.objects.none()) == python_file(CallRecord.objects.none())
    assert rows_of(copy_file(CallRecord.objects.none())) == [CSV_HEADERS]


@pytest.mark.postgres
def test_every_surface_streams_the_copy_file(awkward):
    staff = logged_in(awkward.staff)
    owner = logged_in(awkward.owner_a)
    everything = python_file(visible_calls(awkward.staff))
    assert body(staff.get(API_EXPORT)) == everything
    assert body(staff.get(ADMIN_EXPORT)) == everything
    own = python_file(visible_calls(awkward.owner_a))
    assert body(owner.get(API_EXPORT)) == own
    assert body(owner.get(PORTAL_EXPORT)) == own
    assert body(owner.get(API_EXPORT, {"account": awkward.b.pk})) == python_file(
        CallRecord.objects.none()
    )
    filtered = filter_calls(visible_calls(awkward.owner_a), CallFilters(key_name="prod, main"))
    assert body(owner.get(API_EXPORT, {"key_name": "prod, main"})) == python_file(filtered)


@pytest.mark.postgres
def test_the_access_record_counts_rows_not_lines(awkward):
    client = logged_in(awkward.owner_a)
    data = body(client.get(API_EXPORT))
    record = AccessRecord.objects.get(action=AccessRecord.Action.EXPORT)
    assert record.row_count == 5 == len(rows_of(data)) - 1
    assert data.count(b"\n") > 6  # the multi-line cell


@pytest.mark.postgres
def test_on_done_learns_the_rows_of_a_complete_copy(awkward):
    done = []
    chunks = list(stream_csv(visible_calls(awkward.staff), on_done=done.append))
    assert done == [6]
    assert isinstance(chunks[0], bytes)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_download_stopped_midway_reports_what_was_read_and_frees_the_connection(
    monkeypatch,
):
    """Outside a transaction, as when serving: the COPY is cancelled, the
    connection is usable again and ``on_done`` gets the rows read so far."""
    monkeypatch.setattr("logs.read.export.EXPORT_CHUNK_BYTES", 1)
    key = ApiKeyFactory()
    for minute in range(40):
        make_call(key, created_at=BASE + timedelta(minutes=minute))
    calls = CallRecord.objects.all()
    done = []
    stream = stream_csv(calls, on_done=done.append)
    assert next(stream).startswith(b"id,request id,")
    next(stream)  # one row
    stream.close()
    assert done and 1 <= done[0] < 40
    connection = connections[calls.db]
    assert not connection.in_atomic_block
    assert CallRecord.objects.count() == 40
    assert rows_of(copy_file(calls))[1:] == rows_of(python_file(calls))[1:]


@pytest.mark.postgres
@pytest.mark.parametrize("chunk_bytes", [1, 700, 5000])
def test_a_file_sent_in_many_chunks_is_still_the_python_file(awkward, monkeypatch, chunk_bytes):
    """Rows taken from the connection in batches of every size: each chunk ends
    on a row, and the file, the rows and the access record's count stay the same."""
    for minute in range(6, 60):
        make_call(awkward.comma, created_at=BASE + timedelta(minutes=minute, microseconds=minute))
    monkeypatch.setattr("logs.read.export.EXPORT_CHUNK_BYTES", chunk_bytes)
    calls = visible_calls(awkward.staff)
    done = []
    chunks = list(stream_csv(calls, on_done=done.append))
    assert b"".join(chunks) == python_file(calls)
    assert done == [60]
    assert all(chunk.endswith(b"\r\n") for chunk in chunks)
    if chunk_bytes == 1:
        assert len(chunks) == 1 + 60 + 1  # the header, each row, the closing line
    assert chunks[-1] == b"# end of export: 60 calls\r\n"
    client = logged_in(awkward.staff)
    assert body(client.get(API_EXPORT)) == python_file(calls)
    assert AccessRecord.objects.get(action=AccessRecord.Action.EXPORT).row_count == 60


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_an_export_leaves_the_connection_as_it_found_it(awkward):
    """Outside a transaction, as when serving: the COPY runs in its own with JIT
    off; afterwards the connection's settings are its own again."""
    calls = visible_calls(awkward.staff)
    connection = connections[calls.db]
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        before = cursor.fetchone()[0]
    assert rows_of(copy_file(calls))[1][1] == "bravo-1"
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == before
    assert not connection.in_atomic_block
    assert CallRecord.objects.filter(pk=awkward.theirs.pk).exists()


@pytest.mark.postgres
@pytest.mark.replica
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_copy_reads_from_the_replica():
    key = ApiKeyFactory()
    make_call(key, request_id="on-the-replica")
    calls = visible_calls(StaffUserFactory())
    copy, using = uses_copy(calls)
    assert copy and using.startswith("replica_")
    rows = rows_of(b"".join(_copy_chunks(calls, using, _Progress())))
    assert [row[1] for row in rows[1:]] == ["on-the-replica"]
