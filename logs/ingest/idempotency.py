"""Replays: a request id already stored is a harmless duplicate when its
content is the same, and an error when it is not."""

from __future__ import annotations

from django.db import connection

from accounts.models import ApiKey, Group
from logs.db import execute_together, pg_array_literal
from logs.ingest.errors import RecordError
from logs.ingest.records import ValidCall
from logs.models import (
    CallRecord,
)

# A valid call with its key and group found.
Resolved = tuple[ValidCall, ApiKey, Group]


# The request ids being stored right now (migration 0018; PostgreSQL only).
REQUEST_ID_CLAIMS_TABLE = "logs_requestidclaim"


def claim_request_ids(request_ids: list[str]) -> None:
    """Make "is this request id new?" and the insert one step on PostgreSQL.

    Partitioned, the calls table can only enforce (request_id, created_at)
    uniqueness, which a conflicting record with another timestamp would slip
    past when two batches race. So a batch first claims its ids: it inserts
    them (in sorted order, so batches cannot deadlock) into a table keyed by
    request id, and deletes them again in the same transaction. A key that a
    transaction still in progress inserted holds off every other insert of it
    until that transaction ends, deleted or not; then it is gone. So batches
    that share an id take turns (the second's lookup then sees the first's
    calls, in every month), and batches that share none never wait for each
    other, as they did on advisory locks of hash buckets of the ids (1,024:
    two batches of a thousand ids nearly always shared one). Row locks also
    take no room in the server's lock table, which a thousand advisory locks
    a batch filled as clients were added.
    """
    if connection.vendor != "postgresql" or not request_ids:
        return
    table = connection.ops.quote_name(REQUEST_ID_CLAIMS_TABLE)
    wanted = pg_array_literal(sorted(set(request_ids)))
    with connection.cursor() as cursor:
        execute_together(
            cursor,
            [
                (
                    f"INSERT INTO {table} (request_id) "
                    "SELECT request_id FROM unnest(%s::varchar[]) AS t(request_id) "
                    "ORDER BY request_id",
                    [wanted],
                ),
                (f"DELETE FROM {table} WHERE request_id = ANY(%s::varchar[])", [wanted]),
            ],
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
