"""Replays: a request id already stored for the same account is a harmless
duplicate when its content is the same, and an error when it is not. The
same request id under another account is another call."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.db.models import Q

from accounts.models import ApiKey, Group
from logs.db import execute_together, pg_array_literal, pg_int_array_literal
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

    Partitioned, the calls table can only enforce (request_id, account_id,
    created_at) uniqueness, which a conflicting record with another timestamp
    would slip past when two batches race. So a batch first claims its ids: it
    inserts them (in sorted order, so batches cannot deadlock) into a table
    keyed by request id (whatever the account: coarser, never wrong), and
    deletes them again in the same transaction. A key that a transaction still
    in progress inserted holds off every other insert of it until that
    transaction ends, deleted or not; then it is gone. So batches that share an
    id take turns (the second's lookup then sees the first's calls, in every
    month), and batches that share none never wait for each other, as they did
    on advisory locks of hash buckets of the ids (1,024: two batches of a
    thousand ids nearly always shared one). Row locks also take no room in the
    server's lock table, which a thousand advisory locks a batch filled as
    clients were added.
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


# A call's identity: request ids are unique per account.
CallKey = tuple[int, str]  # (account_id, request_id)


def stored_versions(keys: list[CallKey]) -> dict[CallKey, tuple[str, int]]:
    """(account_id, request_id) → (content_hash, group_id) of the calls already stored."""
    return _stored_versions(keys)


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
    stored: Callable[[list[CallKey]], dict[CallKey, tuple[str, int]]] | None = None,
) -> tuple[list[Resolved], int, list[RecordError]]:
    """Split a batch into new calls and replays: a replay with the same content
    is a harmless duplicate, one with different content is an error.

    ``stored`` looks the calls up instead of the calls table (a history import
    loading a month that was empty: only its own calls can be there)."""
    look_up = stored or _stored_versions
    existing = look_up([(c.account_id, c.request_id) for c, *_ in resolved])
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
