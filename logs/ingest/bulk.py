"""The bulk path: call history imported in large batches (``logs.imports``).

The same rules as ``ingest_calls``: every record validated and redacted by
``records``, keys and groups resolved, replays judged by request id and
content. What differs is what a history import needs:

- a batch is checked first (``check_batch``) and written after
  (``write_batch``), so the caller decides what to do with refused records:
  stop with nothing of the batch written, or write the rest (``skip_bad``);
- no pending rollup deltas per call: the importer rebuilds the rollups of the
  range it imported once, at the end (``logs.rollups.rebuild``), which is
  exact and far cheaper over a million calls than a delta per call;
- no size cap per batch (the caller picks its batch size) and no fold after.

On PostgreSQL calls and payloads go in with COPY, as ingest does. A month
the import loads into a table of its own without indexes (``Loading``, see
``logs.imports.loading``) takes its calls with neither the request-id claim
nor the replay lookup: only the import's own calls can be in it, and the
import judges in full the few whose request id it has read before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import connection, transaction

from logs.db import pg_array_literal
from logs.ingest.errors import IngestError, RecordError
from logs.ingest.fastjson import paused_gc
from logs.ingest.idempotency import (
    CallKey,
    Resolved,
    claim_request_ids,
    judge_replays,
    stored_versions,
)
from logs.ingest.pricing import price_calls
from logs.ingest.records import MAX_COST
from logs.ingest.service import resolve_keys, validate_records
from logs.ingest.store import create_calls, remember_models, write_on_postgresql
from logs.models import CallPayload, CallRecord
from logs.retention.partitions import ensure_partitions, loading_name, month_of


@dataclass
class CheckedBatch:
    """A batch validated and resolved: the calls that may be written, and the
    problems of the others (by index into the batch)."""

    resolved: list[Resolved]
    errors: list[RecordError]
    size: int

    @property
    def first_error(self) -> RecordError | None:
        return min(self.errors, key=lambda e: e.index or 0) if self.errors else None


@dataclass
class BulkResult:
    created: int = 0
    duplicates: int = 0
    refused: list[RecordError] = field(default_factory=list)
    # The earliest and latest call time of the batch's good records, written or
    # already present: the range whose rollups the import rebuilds.
    earliest: datetime | None = None
    latest: datetime | None = None


@dataclass(frozen=True)
class Loading:
    """How a history import writes a batch into months it loads without indexes.

    ``months``: the batch's months loaded so (their loading tables exist).
    ``recheck``: indexes (into the batch's records) of calls whose request id
    the import has read before, or could not tell: judged against every stored
    call and the loading tables, as any replay. The others are new by
    construction (unique within the run, in months that were empty).
    ``marker``: a statement recording the written batch, run in its transaction.
    """

    months: frozenset[date]
    recheck: frozenset[int] = frozenset()
    marker: Callable[[BulkResult], tuple[str, list]] | None = None


def _loaded_versions(months: frozenset[date], keys: list[CallKey]) -> dict:
    """The calls of ``keys`` already in the loading tables of ``months`` (no
    index there: one scan of each, for the few calls rechecked)."""
    found: dict = {}
    if not keys:
        return found
    request_ids = pg_array_literal(sorted({request_id for _, request_id in keys}))
    wanted = set(keys)
    with connection.cursor() as cursor:
        for month in sorted(months):
            table = connection.ops.quote_name(loading_name(CallRecord._meta.db_table, month))
            cursor.execute(
                f"SELECT account_id, request_id, content_hash, group_id FROM {table} "
                "WHERE request_id = ANY(%s::varchar[])",
                [request_ids],
            )
            for account_id, request_id, digest, group_id in cursor:
                if (account_id, request_id) in wanted:
                    found[(account_id, request_id)] = (digest, group_id)
    return found


def _stored_with_loading(
    resolved: list[Resolved], is_loaded: dict[int, bool], loading: Loading
) -> Callable[[list[CallKey]], dict]:
    """The replay lookup of a batch partly in loading months: the usual one for
    calls of other months and the rechecked calls, nothing for the rest."""
    asked = {
        (call.account_id, call.request_id)
        for call, *_ in resolved
        if not is_loaded[call.index] or call.index in loading.recheck
    }
    rechecked = {
        (call.account_id, call.request_id)
        for call, *_ in resolved
        if is_loaded[call.index] and call.index in loading.recheck
    }

    def look_up(keys: list[CallKey]) -> dict:
        wanted = [key for key in keys if key in asked]
        found = stored_versions(wanted)
        found.update(_loaded_versions(loading.months, [k for k in wanted if k in rechecked]))
        return found

    return look_up


def check_batch(records: Sequence[Any], *, now: datetime) -> CheckedBatch:
    """Validate and resolve a batch, writing nothing."""
    with paused_gc():
        valid, errors = validate_records(records, now)
        resolved, key_errors = resolve_keys(valid)
        price_errors = price_calls(resolved, MAX_COST)
    if price_errors:
        # A call that brought no cost and has no price: refused like a bad
        # record, so --skip-bad writes the others and never a call without a cost.
        unpriced = {error.index for error in price_errors}
        resolved = [item for item in resolved if item[0].index not in unpriced]
    return CheckedBatch(resolved, [*errors, *key_errors, *price_errors], len(records))


def write_batch(
    batch: CheckedBatch,
    *,
    skip_bad: bool,
    wait_for_disk: bool = True,
    replays_are_present: bool = False,
    loading: Loading | None = None,
) -> BulkResult:
    """Write a checked batch in one transaction, all or nothing.

    Without ``skip_bad`` a batch with any problem (found by ``check_batch``,
    or a request id stored with other content, found here) raises IngestError
    and writes nothing. With it, the good records are written and the
    problems returned in ``refused``. ``wait_for_disk=False`` as in
    ``ingest_calls``: the caller waits for the disk once, at the end.

    ``replays_are_present``: a request id already stored counts as present even
    when its content differs, for a source whose calls another path may have
    stored first with more detail (LiteLLM's live integration and its spend logs).

    ``loading`` (PostgreSQL): months of the batch loaded without indexes, see ``Loading``.
    """
    if batch.errors and not skip_bad:
        raise IngestError(sorted(batch.errors, key=lambda e: e.index or 0))
    result = BulkResult(refused=list(batch.errors))
    if not batch.resolved:
        return result
    loaded_months = loading.months if loading is not None else frozenset()
    months = {call.index: month_of(call.created_at) for call, *_ in batch.resolved}
    is_loaded = {index: month in loaded_months for index, month in months.items()}
    usual_months = {month for index, month in months.items() if not is_loaded[index]}
    if usual_months:
        ensure_partitions(usual_months)
    with paused_gc(), transaction.atomic():
        if not wait_for_disk and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        claim_request_ids(
            [call.request_id for call, *_ in batch.resolved if not is_loaded[call.index]]
        )
        stored = None
        if loaded_months:
            stored = _stored_with_loading(batch.resolved, is_loaded, loading)
        fresh, duplicates, conflicts = judge_replays(batch.resolved, stored)
        if conflicts and replays_are_present:
            duplicates, conflicts = duplicates + len(conflicts), []
        if conflicts:
            if not skip_bad:
                raise IngestError(conflicts)
            conflicting = {error.index for error in conflicts}
            result.refused.extend(conflicts)
            kept = [item for item in batch.resolved if item[0].index not in conflicting]
        else:
            kept = batch.resolved
        times = [call.created_at for call, *_ in kept]
        if times:
            result.earliest, result.latest = min(times), max(times)
        result.duplicates = duplicates
        marker = loading.marker if loading is not None else None
        if connection.vendor == "postgresql":
            groups: dict[date | None, list[Resolved]] = {}
            for item in fresh:
                index = item[0].index
                groups.setdefault(months[index] if is_loaded[index] else None, []).append(item)
            for month, items in sorted(groups.items(), key=lambda g: (g[0] is not None, g[0])):
                tables = None
                if month is not None:
                    tables = (
                        loading_name(CallRecord._meta.db_table, month),
                        loading_name(CallPayload._meta.db_table, month),
                    )
                result.created += len(write_on_postgresql(items, deltas=False, tables=tables))
            if marker is not None:
                with connection.cursor() as cursor:
                    cursor.execute(*marker(result))
        elif fresh:
            result.created = len(create_calls(fresh))
            remember_models([call for call, *_ in fresh])
    result.refused.sort(key=lambda e: e.index or 0)
    return result
