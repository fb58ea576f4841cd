"""This project's own JSON Lines (docs/ingest-format.md), one record a line.

The records are already in the ingest format, so mapping is the identity;
``import_calls`` reads the same files through the ingest service itself (a
call's rollup deltas with each batch), this format through the bulk path.
"""

from __future__ import annotations

from typing import Any

from logs.imports.base import Mapped, Refusal
from logs.imports.tables import Table


class OwnJsonlFormat:
    name = "jsonl"

    def table(self, location: str) -> Table:
        return Table(location, "calls", key=())

    def source_id(self, row: dict[str, Any]) -> str:
        request_id = row.get("request_id")
        return str(request_id)[:128] if isinstance(request_id, str) else "?"

    def request_id(self, row: dict[str, Any]) -> str | None:
        """The record's request id as ingest stores it (stripped), or None."""
        value = row.get("request_id")
        return value.strip() if isinstance(value, str) else None

    def map(self, row: dict[str, Any]) -> Mapped:
        if "__unreadable__" in row:
            return Refusal("", row["__unreadable__"])
        return row
