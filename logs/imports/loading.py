"""Months a history import loads without indexes, and what the run keeps about them.

On PostgreSQL, a month whose partition does not exist when the import first
writes to it was empty when the import started: the import loads it into
tables of its own without indexes (``logs.retention.partitions``), which take
rows several times faster than an indexed partition, and makes them the
month's partitions once the source is read (``attach_months``). The run's
``staged`` list names those months, so a rerun after a crash loads on into
them and attaches them at its end.

Calls of such a month are not looked up one by one before they are written
(only the import's own calls can be there): the run reads each source row's
request id and judges in full, against every stored call, only the rows whose
request id it has read before (``RequestIds``). Batches are written by
several workers, out of order; each notes itself in the run's ``ahead`` list
in its own transaction, so a rerun skips a batch that committed after the
last checkpoint instead of writing it again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date

from django.db import connection, transaction
from django.db.models.expressions import RawSQL

from logs.models import CallRecord, ImportRun
from logs.retention.partitions import (
    attach_loaded_month,
    create_loading_month,
    is_partitioned,
    loading_name,
)


def loading_possible() -> bool:
    return connection.vendor == "postgresql" and is_partitioned()


class MonthLoader:
    """Which months of a run are loaded without indexes; asked per batch, in
    any worker, and decided once per month for the whole run."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.known: dict[date, bool] = {}

    def loaded(self, months: Iterable[date]) -> frozenset[date]:
        months = set(months)
        unknown = months - set(self.known)
        if unknown:
            self._decide(unknown)
        return frozenset(month for month in months if self.known[month])

    def _decide(self, months: set[date]) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            run = ImportRun.objects.select_for_update().only("staged").get(pk=self.run_id)
            staged = list(run.staged)
            for month in sorted(months):
                if month.isoformat() in staged:
                    self.known[month] = True
                elif create_loading_month(month, cursor):
                    staged.append(month.isoformat())
                    self.known[month] = True
                else:
                    self.known[month] = False
            if staged != run.staged:
                ImportRun.objects.filter(pk=self.run_id).update(staged=staged)


def marker_statement(run_id: int, marker: dict) -> tuple[str, list]:
    """The statement noting a written batch in the run's ``ahead`` list."""
    table = connection.ops.quote_name(ImportRun._meta.db_table)
    return (
        f"UPDATE {table} SET ahead = ahead || jsonb_build_array(%s::jsonb) WHERE id = %s",
        [json.dumps(marker, default=str), run_id],
    )


def position_key(position) -> str:
    return json.dumps(position, sort_keys=True)


def forget_marker(run: ImportRun, position) -> None:
    """Drop a batch's note from ``ahead`` once its checkpoint is recorded."""
    ImportRun.objects.filter(pk=run.pk).update(
        ahead=RawSQL(
            "(SELECT coalesce(jsonb_agg(e), '[]'::jsonb) FROM jsonb_array_elements(ahead) e "
            "WHERE e->>'at' <> %s)",
            [position_key(position)],
        )
    )


def markers(run: ImportRun) -> dict[str, dict]:
    """The batches written beyond the checkpoint, by their last position."""
    run.refresh_from_db(fields=["ahead"])
    return {marker["at"]: marker for marker in run.ahead}


class RequestIds:
    """The request ids the run has read, to tell which rows may repeat an
    earlier one (those are judged in full). A row whose id cannot be read
    (the format has no way, or the row is bad) always may."""

    def __init__(self, run: ImportRun):
        self.seen: set[str] = set()
        # Calls loaded by an earlier, interrupted run of the same source.
        if run.staged:
            quote = connection.ops.quote_name
            with connection.cursor() as cursor:
                for month in run.staged:
                    table = loading_name(CallRecord._meta.db_table, date.fromisoformat(month))
                    cursor.execute(f"SELECT request_id FROM {quote(table)}")
                    self.seen.update(row[0] for row in cursor)

    def repeated(self, request_id: str | None) -> bool:
        if request_id is None:
            return True
        if request_id in self.seen:
            return True
        self.seen.add(request_id)
        return False


def attach_months(run: ImportRun) -> list[str]:
    """Index and attach every month the run loaded; each month whole or not at
    all, so a crash here leaves the rest for the next run to attach."""
    done = []
    run.refresh_from_db(fields=["staged"])  # decided by the workers
    for month in sorted(run.staged):
        with transaction.atomic():
            what = attach_loaded_month(date.fromisoformat(month))
            run.staged = [m for m in run.staged if m != month]
            ImportRun.objects.filter(pk=run.pk).update(staged=run.staged)
        done.append(f"{month[:7]}: {what}")
    return done
