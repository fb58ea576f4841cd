"""How ingest says what is wrong: every problem by record index and field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordError:
    """One problem with one record: ``index`` is its place in the batch (or
    ``None`` for the batch as a whole), ``field`` a dotted path into it."""

    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class IngestError(Exception):
    """The batch was refused; nothing was written. ``errors`` lists every problem."""

    def __init__(self, errors: Sequence[RecordError]):
        self.errors = list(errors)
        first = self.errors[0]
        where = "batch" if first.index is None else f"record {first.index}"
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        field = f", {first.field}" if first.field else ""
        super().__init__(f"{where}{field}: {first.message}{more}")


class Problems:
    """Collects the problems of one record under their field names."""

    def __init__(self, index: int):
        self.index = index
        self.errors: list[RecordError] = []

    def add(self, field_name: str, message: str) -> None:
        self.errors.append(RecordError(self.index, field_name, message))
