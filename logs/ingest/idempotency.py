"""Replays: a request id already stored is a harmless duplicate when its
content is the same, and an error when it is not."""

from __future__ import annotations

import zlib

from django.db import connection

from accounts.models import ApiKey, Group
from logs.db import pg_array_literal
from logs.ingest.errors import RecordError
from logs.ingest.records import ValidCall
from logs.models import (
    CallRecord,
)

# A valid call with its key and group found.
Resolved = tuple[ValidCall, ApiKey, Group]


# Request ids hash into this many advisory locks (see lock_request_ids).
REQUEST_ID_LOCK_BUCKETS = 1024


_REQUEST_ID_LOCK_SPACE = 7_205_118


def lock_request_ids(request_ids: list[str]) -> None:
    """Make "is this request id new?" and the insert one step on PostgreSQL.

    Partitioned, the calls table can only enforce (request_id, created_at)
    uniqueness, which a conflicting record with another timestamp would slip
    past when two batches race. Transaction-scoped advisory locks on hash
    buckets of the ids, taken in sorted order (so batches cannot deadlock),
    serialise batches that share an id; the lookup then sees every month.
    """
    if connection.vendor != "postgresql" or not request_ids:
        return
    buckets = sorted({zlib.crc32(rid.encode()) % REQUEST_ID_LOCK_BUCKETS for rid in request_ids})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(%s, bucket) "
            "FROM unnest(%s::int[]) WITH ORDINALITY AS t(bucket, position) "
            "ORDER BY position) AS locks",
            [_REQUEST_ID_LOCK_SPACE, buckets],
        )


def _stored_versions(request_ids: list[str]) -> dict[str, tuple[str, int]]:
    """request_id → (content_hash, group_id) of the calls already stored."""
    if not request_ids:
        return {}
    if connection.vendor != "postgresql":
        return {
            request_id: (digest, group_id)
            for request_id, digest, group_id in CallRecord.objects.filter(
                request_id__in=request_ids
            ).values_list("request_id", "content_hash", "group_id")
        }
    # One array parameter rather than one placeholder per id, and every partition
    # probed by index once per id. A plain join leaves that to the planner, which
    # on a small table (or one whose statistics lag behind an import) chose to
    # hash the whole table instead: hundreds of ms a batch. A LATERAL subquery
    # kept from being flattened (OFFSET 0) is always the probe per id.
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT wanted.request_id, c.content_hash, c.group_id "
            "FROM unnest(%s::varchar[]) AS wanted(request_id) "
            "CROSS JOIN LATERAL (SELECT content_hash, group_id "
            f"FROM {quote(CallRecord._meta.db_table)} "
            "WHERE request_id = wanted.request_id OFFSET 0) AS c",
            [pg_array_literal(request_ids)],
        )
        return {request_id: (digest, group_id) for request_id, digest, group_id in cursor}


def judge_replays(
    resolved: list[Resolved],
) -> tuple[list[Resolved], int, list[RecordError]]:
    """Split a batch into new calls and replays: a replay with the same content
    is a harmless duplicate, one with different content is an error."""
    existing = _stored_versions([c.request_id for c, *_ in resolved])
    fresh = []
    duplicates = 0
    errors: list[RecordError] = []
    seen_in_batch: dict[str, tuple[ValidCall, int]] = {}
    for item in resolved:
        call, _, group = item
        known = existing.get(call.request_id)
        if known is None and call.request_id in seen_in_batch:
            first, first_group_id = seen_in_batch[call.request_id]
            known = (first.stored_hash(), first_group_id)
        if known is None:
            seen_in_batch[call.request_id] = (call, group.pk)
            fresh.append(item)
        elif known[0] == call.stored_hash() and (call.group_name is None or known[1] == group.pk):
            duplicates += 1
        else:
            errors.append(
                RecordError(
                    call.index,
                    "request_id",
                    f"{call.request_id!r} was already recorded with different content",
                )
            )
    return fresh, duplicates, errors
