"""CSV export of calls.

The columns and the formula escaping live here and nowhere else, so every
export (staff admin, portal, API) writes the same file. ``CSV_COLUMNS`` is the
single definition: the django-import-export resource is built from it for the
admin and the API, and ``iter_csv_rows`` streams the cells straight from
``values_list`` so an export of any size keeps memory flat.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import tablib
from django.db.models import QuerySet
from import_export import resources

from logs.models import CallRecord

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


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


@dataclass(frozen=True)
class CsvColumn:
    name: str
    header: str
    path: str  # a values_list() path on CallRecord
    render: Callable[[Any], Any] = _text


CSV_COLUMNS: tuple[CsvColumn, ...] = (
    CsvColumn("id", "id", "id"),
    CsvColumn("request_id", "request id", "request_id"),
    CsvColumn("time", "time (UTC)", "created_at", _utc),
    CsvColumn("account", "account", "account__name"),
    CsvColumn("key_name", "key name", "api_key__name"),
    CsvColumn("key_prefix", "key prefix", "api_key__prefix"),
    CsvColumn("group", "group", "group__name"),
    CsvColumn("call_type", "call type", "call_type"),
    CsvColumn("model", "model", "model"),
    CsvColumn("endpoint", "endpoint", "endpoint"),
    CsvColumn("stream", "stream", "is_stream", _yes_no),
    CsvColumn("status", "status", "status_code"),
    CsvColumn("error_reason", "error reason", "error_reason"),
    CsvColumn("duration_ms", "duration (ms)", "duration_ms"),
    CsvColumn("ttft_ms", "time to first token (ms)", "ttft_ms"),
    CsvColumn("input_tokens", "input tokens", "input_tokens"),
    CsvColumn("output_tokens", "output tokens", "output_tokens"),
    CsvColumn("total_tokens", "total tokens", "total_tokens"),
    CsvColumn("usage", "usage", "usage", _plain_decimal),
    CsvColumn("cost", "cost", "cost", _plain_decimal),
)

CSV_HEADERS = [column.header for column in CSV_COLUMNS]


def csv_cells(values: tuple) -> list:
    """One row's cells, rendered and made formula-safe, from a values_list() tuple."""
    return [
        escape_formula(column.render(value))
        for column, value in zip(CSV_COLUMNS, values, strict=True)
    ]


def iter_csv_rows(calls: QuerySet[CallRecord], *, chunk_size: int = 5000) -> Iterator[list]:
    """Every row of an export, read in chunks so memory stays flat at any size."""
    rows = calls.order_by("-created_at", "-id").values_list(*(c.path for c in CSV_COLUMNS))
    for values in rows.iterator(chunk_size=chunk_size):
        yield csv_cells(values)


class CallRecordResource(resources.ModelResource):
    """The admin's export, through django-import-export, with the cells of
    ``CSV_COLUMNS``. Rows come from ``iter_csv_rows`` (one ``values_list``
    query) rather than from a model instance per row."""

    class Meta:
        model = CallRecord
        fields = ("id",)

    def export(self, queryset=None, **kwargs) -> tablib.Dataset:
        calls = queryset if queryset is not None else CallRecord.objects.none()
        dataset = tablib.Dataset(headers=CSV_HEADERS)
        for row in iter_csv_rows(calls):
            dataset.append(row)
        return dataset


# Rows buffered per chunk of a streamed export: big enough to keep the
# per-chunk overhead low, small enough to keep memory flat.
EXPORT_CHUNK_ROWS = 2000


def stream_csv(calls, *, on_done=None):
    """Yield a CSV file in chunks; ``on_done`` learns how many rows were sent."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADERS)
    count = 0
    try:
        for row in iter_csv_rows(calls):
            writer.writerow(row)
            count += 1
            if count % EXPORT_CHUNK_ROWS == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()
    finally:
        if on_done is not None:
            on_done(count)
