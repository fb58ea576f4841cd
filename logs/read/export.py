"""CSV export of calls.

The columns and the formula escaping live here and nowhere else, so every
export (staff admin, portal, API) writes the same file. ``CSV_COLUMNS`` is the
single definition: each column says how Python renders its value and how SQL
computes the same cell. The django-import-export resource is built from it for
the admin, and ``stream_csv`` streams every export:

* on PostgreSQL, ``COPY (SELECT …) TO STDOUT WITH (FORMAT csv)`` writes the
  cells in the database (names joined, times, decimals and formula escaping
  done in SQL, in one flat query its parallel workers can compute) and its rows
  are passed on in chunks of about 256 KB as they arrive, so an export of any
  size keeps memory flat and no Python runs per cell;
* elsewhere (SQLite), ``iter_csv_rows`` reads ``values_list`` tuples in chunks
  and Python's ``csv.writer`` writes them.

Both write byte for byte the same file (tests/logs/test_export_copy.py), which
ends, once every row is written, with ``# end of export: N calls``: a file
without that line was cut off (``END_OF_EXPORT``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, transaction
from django.db.models import F, Func, QuerySet, TextField

from logs.models import COST_DECIMAL_PLACES, USAGE_DECIMAL_PLACES, CallRecord

# A spreadsheet runs a cell that starts with one of these as a formula
# (CSV injection); a leading apostrophe makes it plain text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _plain_decimal(value) -> str:
    # str(Decimal("0.00000012")) is "1.2E-7": spreadsheets and people want 0.00000012.
    return "" if value is None else format(value, "f")


def _tags(value: list[str]) -> str:
    """A call's tags as the JSON list PostgreSQL writes for jsonb (``["a", "b"]``:
    a tag may hold any separator); no tags, an empty cell."""
    return json.dumps(value, ensure_ascii=False) if value else ""


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


# Text, made formula-safe: ascii() is the first character's code (0 for "").
SQL_TEXT = (
    "CASE ascii({}) WHEN 0 THEN NULL "
    + " ".join(f"WHEN {ord(trigger)} THEN '''' || {{}}" for trigger in FORMULA_TRIGGERS)
    + " ELSE {} END"
)


# Counts, ids and statuses as they are: positive integer fields (a check
# constraint in the database), so never "-…", never escaped.
SQL_AS_IS = "{}"


# As _utc: ISO 8601 in UTC with a Z; the fraction only when microseconds are not 0.
SQL_UTC = (
    "replace(to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"
)


SQL_YES_NO = "CASE WHEN {} THEN 'yes' ELSE 'no' END"


# As _tags: jsonb's text is json.dumps's (", " between elements, the same
# escapes; tags hold no control characters). It starts with "[": formula-safe.
SQL_TAGS = "CASE WHEN jsonb_array_length({}) = 0 THEN NULL ELSE ({})::text END"


def sql_plain_decimal(places: int) -> str:
    """As _plain_decimal of a FixedDecimalField: the stored integer times 10**-places
    keeps exactly ``places`` decimals ("0.00000012", "0.000000"); formula-safe when
    negative, as escape_formula treats "-0.5"."""
    cell = "(({})::numeric * 0." + "0" * (places - 1) + "1)::text"
    return f"CASE WHEN {{}} < 0 THEN '''' || {cell} ELSE {cell} END"


@dataclass(frozen=True)
class CsvColumn:
    name: str
    header: str
    path: str  # a values_list() path on CallRecord
    render: Callable[[Any], Any] = _text  # Python: the value -> the cell (before escaping)
    sql: str = SQL_TEXT  # PostgreSQL: the whole cell, escaping included; "{}" is the column


CSV_COLUMNS: tuple[CsvColumn, ...] = (
    CsvColumn("id", "id", "id", sql=SQL_AS_IS),
    CsvColumn("request_id", "request id", "request_id"),
    CsvColumn("time", "time (UTC)", "created_at", _utc, SQL_UTC),
    CsvColumn("account", "account", "account__name"),
    CsvColumn("key_name", "key name", "api_key__name"),
    CsvColumn("key_prefix", "key prefix", "api_key__prefix"),
    CsvColumn("group", "group", "group__name"),
    CsvColumn("call_type", "call type", "call_type"),
    CsvColumn("model", "model", "model"),
    CsvColumn("endpoint", "endpoint", "endpoint"),
    CsvColumn("stream", "stream", "is_stream", _yes_no, SQL_YES_NO),
    CsvColumn("status", "status", "status_code", sql=SQL_AS_IS),
    CsvColumn("error_reason", "error reason", "error_reason"),
    CsvColumn("duration_ms", "duration (ms)", "duration_ms", sql=SQL_AS_IS),
    CsvColumn("ttft_ms", "time to first token (ms)", "ttft_ms", sql=SQL_AS_IS),
    CsvColumn("input_tokens", "input tokens", "input_tokens", sql=SQL_AS_IS),
    CsvColumn("output_tokens", "output tokens", "output_tokens", sql=SQL_AS_IS),
    CsvColumn("total_tokens", "total tokens", "total_tokens", sql=SQL_AS_IS),
    CsvColumn("cached_input_tokens", "cached input tokens", "cached_input_tokens", sql=SQL_AS_IS),
    CsvColumn("cache_write_tokens", "cache write tokens", "cache_write_tokens", sql=SQL_AS_IS),
    CsvColumn("reasoning_tokens", "reasoning tokens", "reasoning_tokens", sql=SQL_AS_IS),
    CsvColumn("usage", "usage", "usage", _plain_decimal, sql_plain_decimal(USAGE_DECIMAL_PLACES)),
    CsvColumn("cost", "cost", "cost", _plain_decimal, sql_plain_decimal(COST_DECIMAL_PLACES)),
    CsvColumn("end_user", "end user", "end_user"),
    CsvColumn("tags", "tags", "tags", _tags, SQL_TAGS),
)


CSV_HEADERS = [column.header for column in CSV_COLUMNS]


EXPORT_ORDERING = ("-created_at", "-id")


def csv_cells(values: tuple) -> list:
    """One row's cells, rendered and made formula-safe, from a values_list() tuple."""
    return [
        escape_formula(column.render(value))
        for column, value in zip(CSV_COLUMNS, values, strict=True)
    ]


def iter_csv_rows(calls: QuerySet[CallRecord], *, chunk_size: int = 5000) -> Iterator[list]:
    """Every row of an export, read in chunks so memory stays flat at any size."""
    rows = calls.order_by(*EXPORT_ORDERING).values_list(*(c.path for c in CSV_COLUMNS))
    for values in rows.iterator(chunk_size=chunk_size):
        yield csv_cells(values)


def _cell(column: CsvColumn):
    """The column's cell as an expression on the queryset (joins where its path needs them)."""
    if column.sql == SQL_AS_IS:
        return F(column.path)
    return Func(
        F(column.path),
        template=column.sql.replace("{}", "%(expressions)s"),
        output_field=TextField(),
    )


def export_sql(calls: QuerySet[CallRecord], using: str) -> tuple[str, tuple]:
    """The SELECT of an export's cells, newest first, for database ``using``.

    One flat query: the scoped and filtered queryset, ordered, selecting each
    column's cell (``CsvColumn.sql``) rather than its value, names joined as the
    Python path joins them. Flat, so PostgreSQL computes the cells where it
    reads and joins the rows, in its parallel workers when it runs them, and the
    process sending the COPY only merges the sorted rows and writes them out (a
    subquery would leave all the cells to that one process).
    Raises EmptyResultSet when the queryset can have no rows."""
    rows = calls.order_by(*EXPORT_ORDERING).values_list(*(_cell(c) for c in CSV_COLUMNS))
    sql, params = rows.query.get_compiler(using=using).as_sql()
    return sql, tuple(params)


# Rows buffered per chunk of a streamed export (Python writer), and bytes per
# chunk (COPY): big enough to keep the per-chunk overhead low, small enough to
# keep memory flat.
EXPORT_CHUNK_ROWS = 2000


EXPORT_CHUNK_BYTES = 256 * 1024


# The last line of every complete export, and only of a complete one: written
# once the database has said the last row was sent. A server that dies or a
# database connection that drops midway ends the stream with an error instead
# (the connection is closed without the last chunk, which an HTTP/1.1 client
# sees), but an HTTP/1.0 client, such as nginx talking to the app by default,
# only sees the connection close, as at the end of a whole file: a file that
# does not end with this line was cut off. It is one CSV row of one cell.
END_OF_EXPORT = "# end of export: {rows} {noun}"


def end_of_export_line(rows: int) -> str:
    """The closing line of a complete export of ``rows`` calls, with its line end."""
    return END_OF_EXPORT.format(rows=rows, noun="call" if rows == 1 else "calls") + "\r\n"


def _header_line() -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(CSV_HEADERS)
    return buffer.getvalue()


def _crlf(data: bytes, rows: int = -1) -> bytes:
    """End rows with \\r\\n as Python's csv.writer does (COPY ends them with \\n),
    leaving line breaks inside quoted cells as they are. ``data`` holds whole
    rows (``rows`` of them, when known), so it starts outside quotes; quotes
    inside a cell are doubled, so every '"' switches between inside and outside."""
    if rows == data.count(b"\n") or b'"' not in data:  # no line break inside a cell
        return data.replace(b"\n", b"\r\n")
    parts = data.split(b'"')
    parts[::2] = [part.replace(b"\n", b"\r\n") for part in parts[::2]]
    return b'"'.join(parts)


class _Progress:
    rows = 0


def _python_chunks(calls, progress: _Progress) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADERS)
    for row in iter_csv_rows(calls):
        writer.writerow(row)
        progress.rows += 1
        if progress.rows % EXPORT_CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue() + end_of_export_line(progress.rows)


def _copy_batches(copy, pgconn, encoding: str) -> Iterator[list]:
    """The rows of a COPY TO, in lists of about EXPORT_CHUNK_BYTES; returns the
    row count.

    PostgreSQL sends one message per row. psycopg's ``copy.read()`` returns one
    and is the way to wait for the next, but costs microseconds of Python a
    row; so after each one, every row libpq has already received is taken
    straight from it (``get_copy_data`` without waiting: 0 when it has no whole
    row yet, -1 once the COPY is over, whose result is then read here)."""
    pending, size, count = [], 0, -1
    while row := copy.read():
        pending.append(row)
        size += len(row)
        while True:
            if size >= EXPORT_CHUNK_BYTES:
                yield pending
                pending, size = [], 0
            nbytes, row = pgconn.get_copy_data(1)
            if nbytes <= 0:
                break
            pending.append(row)
            size += nbytes
        if nbytes < 0:
            count = _copy_result(pgconn, encoding)
            break
    if pending:
        yield pending
    return count


def _copy_result(pgconn, encoding: str) -> int:
    """Read the result of a COPY whose end libpq has just handed over (what psycopg
    does after its own ``read()`` saw it): the row count, or the error raised."""
    from psycopg import errors, pq

    count, error = -1, None
    while (result := pgconn.get_result()) is not None:
        if result.status == pq.ExecStatus.COMMAND_OK:
            count = result.command_tuples
        elif error is None:
            error = result
    if error is not None:
        raise errors.error_from_result(error, encoding=encoding)
    return -1 if count is None else count


def _copy_chunks(calls, using: str, progress: _Progress) -> Iterator[bytes]:
    """The file from PostgreSQL's COPY, on the connection the queryset reads
    from (a replica when there is one), in a transaction of its own that lasts
    exactly as long as the rows are being sent (and is rolled back when the
    download stops midway)."""
    yield _header_line().encode()
    try:
        sql, params = export_sql(calls, using)
    except EmptyResultSet:
        yield end_of_export_line(0).encode()
        return
    statement = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"
    if not params:  # psycopg merges (and unescapes "%%") only when there are parameters
        statement = statement.replace("%%", "%")
    connection = connections[using]
    rows = 0
    with (
        transaction.atomic(using=using),
        connection.cursor() as cursor,
        connection.wrap_database_errors,
    ):
        # The statement's estimated cost always switches JIT on: compiling its
        # expressions takes seconds, far more than it saves on any export.
        cursor.execute("SET LOCAL jit = off")
        raw = cursor.cursor  # psycopg's own cursor: Django's wrapper has no copy()
        try:
            with raw.copy(statement, params or None) as copy:
                batches = _copy_batches(copy, raw.connection.pgconn, raw.connection.info.encoding)
                while True:
                    try:
                        batch = next(batches)
                    except StopIteration as end:
                        count = end.value
                        break
                    rows += len(batch)
                    yield _crlf(b"".join(batch), len(batch))
            # The COPY command's own count once it completed (read by us or by psycopg).
            if count >= 0 or raw.rowcount >= 0:
                rows = count if count >= 0 else raw.rowcount
        finally:
            progress.rows = rows
    # Only here, with the COPY complete and its transaction closed: any error
    # before this line left the stream without it.
    yield end_of_export_line(rows).encode()


def uses_copy(calls: QuerySet[CallRecord]) -> tuple[bool, str]:
    """Whether the export of ``calls`` runs as a COPY, and on which database alias."""
    using = calls.db
    return connections[using].vendor == "postgresql", using


def stream_csv(calls, *, on_done=None):
    """Yield a CSV file in chunks; ``on_done`` learns how many rows were sent.

    A complete file ends with ``end_of_export_line``; when reading the rows
    fails midway the error is raised from here, without that line, so the
    server aborts the response rather than ending it as if it were whole."""
    progress = _Progress()
    copy, using = uses_copy(calls)
    chunks = _copy_chunks(calls, using, progress) if copy else _python_chunks(calls, progress)
    try:
        yield from chunks
    finally:
        chunks.close()
        if on_done is not None:
            on_done(progress.rows)
