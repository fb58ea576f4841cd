"""What every source format gives the import: one source row → one ingest
record (docs/ingest-format.md), a ``Skip`` (a row that is not a call: top-ups,
management entries) or a ``Refusal`` (a row that cannot be a call, by field).

Formats only map; the records then go through the ingest service's rules
(``logs.ingest.bulk``), which validate, redact and judge replays as for any
other source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from logs.imports.tables import Table
from logs.ingest import fastjson
from logs.ingest.text import has_lone_surrogate


@dataclass(frozen=True)
class Skip:
    """A row that is not a call; ``kind`` says what it is (counted by kind)."""

    kind: str


@dataclass(frozen=True)
class Refusal:
    """A row that cannot be mapped to a call: the source ``field`` and why."""

    field: str
    message: str


Mapped = dict[str, Any] | Skip | Refusal


class Format(Protocol):
    """A source format (new-api's logs, LiteLLM's spend logs, …)."""

    name: str

    def table(self, location: str) -> Table: ...

    def source_id(self, row: dict[str, Any]) -> str:
        """The row's own id, as messages and the refused-rows file name it."""
        ...

    def map(self, row: dict[str, Any]) -> Mapped: ...


class BadField(ValueError):
    """Raised by the readers below; becomes a Refusal of ``field``."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def whole(row: dict[str, Any], name: str, *, default: int | None = None) -> int:
    """An integer column: an int, or its digits (CSV, JSON dumps). An empty or
    missing value is ``default``; without one, an error."""
    value = row.get(name)
    if value is None or value == "":
        if default is None:
            raise BadField(name, "is required")
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise BadField(name, f"must be a whole number, got {str(value)[:40]!r}")


# new-api and one-api keep ids in 64-bit integer columns (Go's int).
ID_BOUND = 2**63


def identifier(row: dict[str, Any], name: str, *, default: int | None = None) -> int:
    """An id column: a whole number that fits the source's 64-bit column. A
    hand-edited dump can hold 1e300, whose 301 digits fit no id of ours."""
    value = whole(row, name, default=default)
    if not -ID_BOUND <= value < ID_BOUND:
        raise BadField(name, f"must fit in 64 bits, got a number of {len(str(abs(value)))} digits")
    return value


def number(row: dict[str, Any], name: str, *, default: float | None = None) -> float:
    value = row.get(name)
    if value is None or value == "":
        if default is None:
            raise BadField(name, "is required")
        return default
    if isinstance(value, bool):
        raise BadField(name, f"must be a number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise BadField(name, f"must be a number, got {str(value)[:40]!r}") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise BadField(name, "must be a finite number")
    return result


_TRUE = {"1", "t", "true", "yes", "y"}
_FALSE = {"0", "f", "false", "no", "n", ""}


def flag(row: dict[str, Any], name: str) -> bool:
    value = row.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise BadField(name, f"must be true or false, got {str(value)[:40]!r}")


def text(row: dict[str, Any], name: str) -> str:
    """A text column; NUL characters and lone surrogates (which the database
    cannot store) become U+FFFD, as invalid UTF-8 bytes do when the table is read."""
    value = row.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    if has_lone_surrogate(value):
        value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value.replace("\x00", "\ufffd")


def json_object(row: dict[str, Any], name: str) -> dict[str, Any]:
    """A column holding a JSON object (new-api's ``other``), or one already read
    (PostgreSQL's jsonb): {} when empty; a text that is not a JSON object is
    kept whole, under ``unreadable``."""
    value = row.get(name)
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = fastjson.loads(value.encode("utf-8", "surrogatepass"))
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            return parsed
        return {"unreadable": text(row, name)}
    return {"unreadable": str(value)}


def unix_time(row: dict[str, Any], name: str) -> str:
    """Unix seconds as the ISO 8601 text ingest records carry."""
    seconds = whole(row, name)
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise BadField(name, f"is not a time: {seconds}") from None
    return moment.isoformat()


def first_line(message: str, limit: int = 255) -> str:
    """An error reason for the list: the first non-blank line, at most ``limit``."""
    line = next((part.strip() for part in message.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"
