"""Reading another gateway's table, row by row, from where an import stopped.

A table is read from a SQLite file, a PostgreSQL database (by URL), or a dump
of it: CSV with a header line, or JSON Lines (one object per row). Each row
comes as a dict with its *position*, a JSON value the import keeps as its
resume checkpoint: the values of the ordering columns in a database (read in
that order, so the rows after a position are exactly those not yet read), the
row's number in a dump.

Text that is not valid UTF-8 (a gateway that stored raw upstream bytes) is
read with U+FFFD in place of each invalid byte: the row still counts, and its
text says where bytes were lost.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

# Rows fetched per query from a database.
FETCH_ROWS = 10_000

SQLITE_MAGIC = b"SQLite format 3\x00"


class TableError(Exception):
    """The table cannot be read (no such file, table, column; not a dump)."""


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _plain(value: Any) -> Any:
    """A database value as JSON can hold it (positions, refused-rows file)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return _decode(bytes(value))
    return value


@dataclass
class Table:
    """One source table: ``location`` (a path or URL) and ``name``, read in the
    order of ``key`` (its columns; a dump is read in file order)."""

    location: str
    name: str
    key: Sequence[str]

    @property
    def kind(self) -> str:
        if self.location.startswith(("postgres://", "postgresql://")):
            return "postgresql"
        path = Path(self.location)
        if path.suffix.lower() == ".csv":
            return "csv"
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            return "jsonl"
        try:
            with path.open("rb") as handle:
                head = handle.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise TableError(f"cannot read {self.location}: {exc.strerror}") from exc
        if head == SQLITE_MAGIC:
            return "sqlite"
        raise TableError(
            f"{self.location} is neither a SQLite database nor a .csv or .jsonl dump "
            "(give a postgresql:// URL for a PostgreSQL database)"
        )

    def describe(self) -> str:
        """Where the rows come from, without a password: an import's identity."""
        if self.kind == "postgresql":
            from psycopg.conninfo import conninfo_to_dict

            info = conninfo_to_dict(self.location)
            user = f"{info['user']}@" if info.get("user") else ""
            port = f":{info['port']}" if info.get("port") else ""
            where = f"postgresql://{user}{info.get('host', '')}{port}/{info.get('dbname', '')}"
            return f"{where} {self.name}"
        return f"{Path(self.location).resolve()} {self.name}"

    def rows(self, after: Any = None) -> Iterator[tuple[Any, dict[str, Any]]]:
        """(position, row) of every row after ``after`` (all when None)."""
        reader = {
            "sqlite": self._sqlite_rows,
            "postgresql": self._postgresql_rows,
            "csv": self._csv_rows,
            "jsonl": self._jsonl_rows,
        }[self.kind]
        return reader(after)

    def count(self, after: Any = None) -> int | None:
        """How many rows ``rows(after)`` will give (for the progress bar)."""
        if self.kind == "sqlite":
            where, params = self._after_sql(after, "?")
            db = self._sqlite()
            try:
                return db.execute(f'SELECT count(*) FROM "{self.name}"{where}', params).fetchone()[
                    0
                ]
            except sqlite3.Error as exc:
                raise TableError(f"cannot read table {self.name!r}: {exc}") from exc
            finally:
                db.close()
        if self.kind == "postgresql":
            where, params = self._after_sql(after, "%s")
            with self._postgresql() as db:
                row = db.execute(f'SELECT count(*) AS n FROM "{self.name}"{where}', params)
                return row.fetchone()["n"]
        with open(self.location, "rb") as handle:
            lines = sum(1 for line in handle if line.strip())
        lines -= 1 if self.kind == "csv" else 0  # the header
        return max(lines - (after or 0), 0)

    # --- databases ------------------------------------------------------------------

    def _after_sql(self, after: Any, placeholder: str) -> tuple[str, list]:
        if after is None:
            return "", []
        columns = ", ".join(f'"{c}"' for c in self.key)
        marks = ", ".join(placeholder for _ in self.key)
        return f" WHERE ({columns}) > ({marks})", list(after)

    def _position(self, row: dict[str, Any]) -> list:
        return [_plain(row[column]) for column in self.key]

    def _sqlite(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(f"file:{Path(self.location).resolve()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise TableError(f"cannot open {self.location}: {exc}") from exc
        db.text_factory = _decode
        db.row_factory = sqlite3.Row
        return db

    def _sqlite_rows(self, after: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
        db = self._sqlite()
        order = ", ".join(f'"{c}"' for c in self.key)
        try:
            while True:
                where, params = self._after_sql(after, "?")
                try:
                    fetched = db.execute(
                        f'SELECT * FROM "{self.name}"{where} ORDER BY {order} LIMIT {FETCH_ROWS}',
                        params,
                    ).fetchall()
                except sqlite3.Error as exc:
                    raise TableError(f"cannot read table {self.name!r}: {exc}") from exc
                if not fetched:
                    return
                for item in fetched:
                    row = dict(item)
                    after = self._position(row)
                    yield after, row
        finally:
            db.close()

    def _postgresql(self):
        import psycopg
        from psycopg.rows import dict_row

        try:
            return psycopg.connect(self.location, row_factory=dict_row, autocommit=False)
        except psycopg.Error as exc:
            raise TableError(f"cannot connect to the source database: {exc}") from exc

    def _postgresql_rows(self, after: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
        import psycopg

        order = ", ".join(f'"{c}"' for c in self.key)
        where, params = self._after_sql(after, "%s")
        with self._postgresql() as db:
            try:
                # A server-side cursor: the rows stream, whatever the table's size.
                with db.cursor(name="usagelogs_import") as cursor:
                    cursor.itersize = FETCH_ROWS
                    cursor.execute(
                        f'SELECT * FROM "{self.name}"{where} ORDER BY {order}', params or None
                    )
                    for row in cursor:
                        row = {name: _plain(value) for name, value in row.items()}
                        yield self._position(row), row
            except psycopg.Error as exc:
                raise TableError(f"cannot read table {self.name!r}: {exc}") from exc

    # --- dumps ----------------------------------------------------------------------

    def _open_text(self):
        try:
            return open(self.location, encoding="utf-8", errors="replace", newline="")
        except OSError as exc:
            raise TableError(f"cannot read {self.location}: {exc.strerror}") from exc

    def _csv_rows(self, after: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
        csv.field_size_limit(sys.maxsize)  # `other` and `content` can be long
        with self._open_text() as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:
                return
            for number, row in enumerate(reader, start=1):
                if after is not None and number <= after:
                    continue
                yield number, row

    def _jsonl_rows(self, after: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
        with self._open_text() as handle:
            number = 0
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                number += 1
                if after is not None and number <= after:
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    row = {"__unreadable__": f"line {line_number} is not JSON: {exc.msg}"}
                if not isinstance(row, dict):
                    row = {"__unreadable__": f"line {line_number} is not a JSON object"}
                yield number, row
