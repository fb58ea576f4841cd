"""``ingest_calls``: the only way calls get into the database.

The REST API, ``import_calls`` and ``seed_demo`` all go through it, so
validation, redaction, size caps and idempotency hold whatever the source.
A batch is all-or-nothing: every record is validated first and every problem
is reported (by index and field); only a batch with no problem is written, in
one transaction, with its pending rollup deltas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import ApiKey, Group
from logs.ingest.errors import IngestError, RecordError
from logs.ingest.fastjson import paused_gc
from logs.ingest.idempotency import Resolved, claim_request_ids, judge_replays
from logs.ingest.pricing import price_calls
from logs.ingest.records import MAX_COST, ValidCall, validate_record
from logs.ingest.store import create_calls, remember_models, write_on_postgresql
from logs.models import (
    PendingRollupDelta,
)
from logs.retention.partitions import (
    ensure_partitions,
    month_of,
)
from logs.rollups.deltas import pending_rows
from logs.rollups.fold import fold_if_free


@dataclass
class IngestResult:
    created: int = 0
    duplicates: int = 0
    created_ids: list[int] = field(default_factory=list)


def ingest_calls(
    records: Sequence[Any], *, now: datetime | None = None, wait_for_disk: bool = True
) -> IngestResult:
    """Validate, redact and store a batch of call records, all or nothing.

    Raises IngestError listing every bad record; returns how many calls were
    created and how many were already present (same request_id, same content).

    ``wait_for_disk=False`` commits on PostgreSQL without waiting for the commit
    to be flushed (``synchronous_commit = off``): a crash right after may lose
    the batch, never a part of it. Only for callers that can replay what was
    lost and wait for the disk themselves at the end (``import_calls``).
    """
    with paused_gc():  # see paused_gc: a batch would set off full collections
        return _ingest_calls(records, now=now, wait_for_disk=wait_for_disk)


def _ingest_calls(
    records: Sequence[Any], *, now: datetime | None, wait_for_disk: bool
) -> IngestResult:
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Sequence):
        raise IngestError([RecordError(None, "", "expected a list of call records")])
    if not records:
        raise IngestError([RecordError(None, "", "the batch is empty")])
    limit = settings.USAGELOGS_INGEST_MAX_BATCH
    if len(records) > limit:
        raise IngestError(
            [RecordError(None, "", f"at most {limit} records per batch, got {len(records)}")]
        )
    now = now or timezone.now()

    valid, errors = validate_records(records, now)
    resolved, key_errors = resolve_keys(valid)
    errors.extend(key_errors)
    # Calls sent without a cost are priced from the price list (and every call
    # that read the prompt cache gets what that saved).
    errors.extend(price_calls(resolved, MAX_COST))

    if errors:
        # Report conflicting replays together with every other problem of the batch.
        # (A batch with no other problem has its replays judged once, in _store.)
        errors.extend(judge_replays(resolved)[2])
        raise IngestError(sorted(errors, key=lambda e: (e.index is not None, e.index or 0)))

    ensure_partitions({month_of(call.created_at) for call, *_ in resolved})
    try:
        return _store(resolved, wait_for_disk)
    except IntegrityError:
        # Another writer stored one of these request_ids between our check and
        # our insert. Run once more: now the check sees it and judges the replay.
        return _store(resolved, wait_for_disk)


def validate_records(records: Sequence[Any], now: datetime) -> tuple[list[ValidCall], list]:
    """Every record validated: the valid calls and every problem of the others."""
    valid: list[ValidCall] = []
    errors: list[RecordError] = []
    for index, record in enumerate(records):
        call, record_errors = validate_record(index, record, now)
        if record_errors:
            errors.extend(record_errors)
        if call is not None:
            valid.append(call)
    return valid, errors


def resolve_keys(valid: list[ValidCall]) -> tuple[list[Resolved], list[RecordError]]:
    """Each valid call with its key and group (ids filled in), or why it has none:
    an unknown key prefix, a key revoked before the call, an unknown group."""
    keys = {
        key.prefix: key
        for key in ApiKey.objects.filter(prefix__in={c.key_prefix for c in valid}).select_related(
            "group"
        )
    }
    group_names = {c.group_name for c in valid if c.group_name is not None}
    groups = {g.name: g for g in Group.objects.filter(name__in=group_names)} if group_names else {}

    errors: list[RecordError] = []
    resolved: list[Resolved] = []
    for call in valid:
        key = keys.get(call.key_prefix)
        if key is None:
            errors.append(
                RecordError(call.index, "api_key", f"no key with prefix {call.key_prefix!r}")
            )
            continue
        if key.revoked_at is not None and call.created_at > key.revoked_at:
            errors.append(
                RecordError(
                    call.index,
                    "api_key",
                    f"key {call.key_prefix!r} was revoked at {key.revoked_at.isoformat()}, "
                    "before this call",
                )
            )
            continue
        group = key.group if call.group_name is None else groups.get(call.group_name)
        if group is None:
            errors.append(RecordError(call.index, "group", f"no group named {call.group_name!r}"))
            continue
        call.account_id = key.account_id
        call.api_key_id = key.pk
        call.group_id = group.pk
        resolved.append((call, key, group))
    return resolved, errors


@transaction.atomic
def _store(resolved: list[Resolved], wait_for_disk: bool = True) -> IngestResult:
    if not wait_for_disk and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
    claim_request_ids([call.request_id for call, *_ in resolved])
    fresh, duplicates, errors = judge_replays(resolved)
    if errors:
        raise IngestError(errors)
    result = IngestResult(duplicates=duplicates)
    if not fresh:
        return result
    if connection.vendor == "postgresql":
        ids = write_on_postgresql(fresh)
    else:
        ids = create_calls(fresh)
        calls = [call for call, *_ in fresh]
        remember_models(calls)
        PendingRollupDelta.objects.bulk_create(
            PendingRollupDelta(**row) for row in pending_rows(calls, added_at=timezone.now())
        )
    if settings.USAGELOGS_FOLD_AFTER_INGEST:
        # After the commit, outside the batch's transaction: a failed fold is
        # logged and leaves the deltas pending (reads stay exact), never fails the batch.
        transaction.on_commit(fold_if_free, robust=True)
    result.created = len(ids)
    result.created_ids = ids
    return result
