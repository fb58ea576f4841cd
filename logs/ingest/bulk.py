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

On PostgreSQL calls and payloads go in with COPY, as ingest does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from logs.ingest.errors import IngestError, RecordError
from logs.ingest.fastjson import paused_gc
from logs.ingest.idempotency import Resolved, claim_request_ids, judge_replays
from logs.ingest.pricing import price_calls
from logs.ingest.records import MAX_COST
from logs.ingest.service import resolve_keys, validate_records
from logs.ingest.store import create_calls, remember_models, write_on_postgresql
from logs.retention.partitions import ensure_partitions, month_of


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
    """
    if batch.errors and not skip_bad:
        raise IngestError(sorted(batch.errors, key=lambda e: e.index or 0))
    result = BulkResult(refused=list(batch.errors))
    if not batch.resolved:
        return result
    ensure_partitions({month_of(call.created_at) for call, *_ in batch.resolved})
    with paused_gc(), transaction.atomic():
        if not wait_for_disk and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        claim_request_ids([call.request_id for call, *_ in batch.resolved])
        fresh, duplicates, conflicts = judge_replays(batch.resolved)
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
        if fresh:
            if connection.vendor == "postgresql":
                ids = write_on_postgresql(fresh, deltas=False)
            else:
                ids = create_calls(fresh)
                remember_models([call for call, *_ in fresh])
            result.created = len(ids)
    result.refused.sort(key=lambda e: e.index or 0)
    return result
