"""Replays: a request id already stored for the same account is a harmless
duplicate when its content is the same, and an error when it is not. The
same request id under another account is another call."""

from __future__ import annotations

import zlib

from django.db import connection
from django.db.models import Q

from accounts.models import ApiKey, Group
from logs.db import pg_array_literal, pg_int_array_literal
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

    Partitioned, the calls table can only enforce (request_id, account_id,
    created_at) uniqueness, which a conflicting record with another timestamp
    would slip past when two batches race. Transaction-scoped advisory locks on
    hash buckets of the ids (whatever the account: coarser, never wrong),
    taken in sorted order (so batches cannot deadlock), serialise batches that
    share an id; the lookup then sees every month.
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


# A call's identity: request ids are unique per account.
CallKey = tuple[int, str]  # (account_id, request_id)


def _stored_versions(keys: list[CallKey]) -> dict[CallKey, tuple[str, int]]:
    """(account_id, request_id) → (content_hash, group_id) of the calls already stored."""
    if not keys:
        return {}
    if connection.vendor != "postgresql":
        wanted = Q()
        for account_id in {account_id for account_id, _ in keys}:
            request_ids = [rid for owner, rid in keys if owner == account_id]
            wanted |= Q(account_id=account_id, request_id__in=request_ids)
        return {
            (account_id, request_id): (digest, group_id)
            for account_id, request_id, digest, group_id in CallRecord.objects.filter(
                wanted
            ).values_list("account_id", "request_id", "content_hash", "group_id")
        }
    # Array parameters rather than one placeholder per id, and every partition
    # probed by index (request_id, account_id, created_at) once per key. A plain
    # join leaves that to the planner, which on a small table (or one whose
    # statistics lag behind an import) chose to hash the whole table instead:
    # hundreds of ms a batch. A LATERAL subquery kept from being flattened
    # (OFFSET 0) is always the probe per key.
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT wanted.account_id, wanted.request_id, c.content_hash, c.group_id "
            "FROM unnest(%s::bigint[], %s::varchar[]) AS wanted(account_id, request_id) "
            "CROSS JOIN LATERAL (SELECT content_hash, group_id "
            f"FROM {quote(CallRecord._meta.db_table)} "
            "WHERE request_id = wanted.request_id AND account_id = wanted.account_id "
            "OFFSET 0) AS c",
            [
                pg_int_array_literal([account_id for account_id, _ in keys]),
                pg_array_literal([request_id for _, request_id in keys]),
            ],
        )
        return {
            (account_id, request_id): (digest, group_id)
            for account_id, request_id, digest, group_id in cursor
        }


def judge_replays(
    resolved: list[Resolved],
) -> tuple[list[Resolved], int, list[RecordError]]:
    """Split a batch into new calls and replays: a replay with the same content
    is a harmless duplicate, one with different content is an error."""
    existing = _stored_versions([(c.account_id, c.request_id) for c, *_ in resolved])
    fresh = []
    duplicates = 0
    errors: list[RecordError] = []
    seen_in_batch: dict[CallKey, tuple[ValidCall, int]] = {}
    for item in resolved:
        call, _, group = item
        key = (call.account_id, call.request_id)
        known = existing.get(key)
        if known is None and key in seen_in_batch:
            first, first_group_id = seen_in_batch[key]
            known = (first.stored_hash(), first_group_id)
        if known is None:
            seen_in_batch[key] = (call, group.pk)
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
