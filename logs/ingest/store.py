"""Writing a validated batch: calls, payloads, the models and groups each
account used (filter choices) and the batch's pending rollup deltas.

On PostgreSQL calls and payloads go in with COPY (ids drawn from the sequence
first, in one statement), the registries as one statement per table with a
few array parameters whatever the batch size, the pending deltas summed by
the server from the calls just written. Elsewhere, bulk_create.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from logs.db import execute_together, pg_array_literal, pg_int_array_literal, unnest_insert_sql
from logs.ingest.idempotency import Resolved
from logs.ingest.payloads import cap_text
from logs.ingest.records import ValidCall
from logs.models import (
    COST_DECIMAL_PLACES,
    USAGE_DECIMAL_PLACES,
    AccountEndUser,
    AccountGroup,
    AccountModel,
    AccountTag,
    CallPayload,
    CallRecord,
    to_units,
)
from logs.rollups.deltas import pending_from_calls_sql

_CALL_COLUMNS = (
    "id",
    "request_id",
    "created_at",
    "account_id",
    "api_key_id",
    "group_id",
    "call_type",
    "model",
    "endpoint",
    "is_stream",
    "status_code",
    "error_reason",
    "duration_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "usage",
    "cost",
    "client_ip",
    "upstream",
    "content_hash",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "end_user",
    "tags",
    "cost_basis",
    "cache_savings",
)


_PAYLOAD_COLUMNS = (
    "call_id",
    "created_at",
    "account_id",
    *(
        column
        for part in CallPayload.PARTS
        for column in (part, f"{part}_truncated", f"{part}_original_bytes")
    ),
)


_call_sequence: str | None = None


def _call_ids(count: int) -> list[int]:
    """``count`` new ids from the calls table's identity sequence, ascending."""
    global _call_sequence
    with connection.cursor() as cursor:
        if _call_sequence is None:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [CallRecord._meta.db_table])
            _call_sequence = cursor.fetchone()[0]
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [_call_sequence, count]
        )
        return sorted(row[0] for row in cursor.fetchall())


def write_on_postgresql(
    fresh: list[Resolved],
    *,
    deltas: bool = True,
    tables: tuple[str, str] | None = None,
    then: list[tuple[str, list]] = (),
) -> list[int]:
    """Write new calls and everything they change; returns their ids.

    ``deltas=False`` leaves out the pending rollup deltas, for a bulk import
    that rebuilds the rollups of its range once at the end (``logs.ingest.bulk``).
    ``tables``: the calls and payloads tables to copy into, a month's loading
    tables rather than the partitioned ones (``logs.retention.partitions``).
    ``then``: statements to run with the registries', in the same round trip.

    Calls and payloads go in with COPY. The server indexes the calls while
    they stream in, and meanwhile this process prepares the payload rows and
    the other statements (registries, keys, rollups), which then run in one
    round trip. Tables are written in the same order as always (calls,
    payloads, registries, keys, rollups) so concurrent batches cannot deadlock.
    """
    ids = _call_ids(len(fresh))
    calls = [call for call, *_ in fresh]
    quote = connection.ops.quote_name
    calls_table, payloads_table = tables or (
        CallRecord._meta.db_table,
        CallPayload._meta.db_table,
    )
    with connection.cursor() as cursor, connection.wrap_database_errors:
        calls_sql = (
            f"COPY {quote(calls_table)} ({', '.join(quote(c) for c in _CALL_COLUMNS)}) FROM STDIN"
        )
        with cursor.copy(calls_sql) as copy:
            for pk, (call, _, _) in zip(ids, fresh, strict=True):
                copy.write_row(
                    (
                        pk,
                        call.request_id,
                        call.created_at,
                        call.account_id,
                        call.api_key_id,
                        call.group_id,
                        call.call_type,
                        call.model,
                        call.endpoint,
                        call.is_stream,
                        call.status_code,
                        call.error_reason,
                        call.duration_ms,
                        call.ttft_ms,
                        call.input_tokens,
                        call.output_tokens,
                        call.input_tokens + call.output_tokens,
                        to_units(call.usage, USAGE_DECIMAL_PLACES),
                        to_units(call.cost, COST_DECIMAL_PLACES),
                        call.client_ip,
                        call.upstream,
                        call.stored_hash(),
                        call.cached_input_tokens,
                        call.cache_write_tokens,
                        call.reasoning_tokens,
                        call.end_user,
                        # COPY's text format: the server reads it as jsonb.
                        json.dumps(call.tags),
                        None if call.cost_basis is None else json.dumps(call.cost_basis),
                        to_units(call.cache_savings, COST_DECIMAL_PLACES),
                    )
                )
            payload_rows = _payload_rows(calls, ids)
            statements = [*_registry_statements(calls), *then]
            # The batch's pending rollup deltas, summed by the server from the
            # rows just copied (nothing per call to do here).
            if deltas:
                statements.append(
                    (
                        pending_from_calls_sql(CallRecord._meta.db_table),
                        [
                            timezone.now(),
                            pg_int_array_literal(ids),
                            min(call.created_at for call in calls),
                            max(call.created_at for call in calls),
                        ],
                    )
                )
        if payload_rows:
            payloads_sql = (
                f"COPY {quote(payloads_table)} "
                f"({', '.join(quote(c) for c in _PAYLOAD_COLUMNS)}) FROM STDIN"
            )
            with cursor.copy(payloads_sql) as copy:
                for row in payload_rows:
                    copy.write_row(row)
        execute_together(cursor, statements)
    return ids


def _payload_rows(calls: list[ValidCall], ids: list[int]) -> list[list[Any]]:
    """The CallPayload rows (in _PAYLOAD_COLUMNS order) of the calls that have parts."""
    max_bytes = settings.USAGELOGS_PAYLOAD_MAX_BYTES
    parts = CallPayload.PARTS
    rows = []
    for pk, call in zip(ids, calls, strict=True):
        texts = call.texts
        if all(texts[name] is None for name in parts):
            continue
        row: list[Any] = [pk, call.created_at, call.account_id]
        for name in parts:
            text = texts[name]
            if text is None:
                row += ("", False, None)
            # As cap_text, without its dataclass; a text of at most a quarter of the
            # cap in characters is within it in bytes (UTF-8: 4 bytes at most each).
            elif len(text) * 4 <= max_bytes or len(text.encode()) <= max_bytes:
                row += (text, False, None)
            else:
                stored = cap_text(text, max_bytes)
                row += (stored.text, stored.truncated, stored.original_bytes)
        rows.append(row)
    return rows


def create_calls(fresh: list[Resolved]) -> list[int]:
    """bulk_create the calls and their payloads (databases other than PostgreSQL)."""
    records = CallRecord.objects.bulk_create(
        [
            CallRecord(
                request_id=call.request_id,
                created_at=call.created_at,
                account_id=call.account_id,
                api_key_id=call.api_key_id,
                group_id=call.group_id,
                call_type=call.call_type,
                model=call.model,
                endpoint=call.endpoint,
                is_stream=call.is_stream,
                status_code=call.status_code,
                error_reason=call.error_reason,
                duration_ms=call.duration_ms,
                ttft_ms=call.ttft_ms,
                input_tokens=call.input_tokens,
                output_tokens=call.output_tokens,
                total_tokens=call.input_tokens + call.output_tokens,
                usage=call.usage,
                cost=call.cost,
                client_ip=call.client_ip,
                upstream=call.upstream,
                content_hash=call.stored_hash(),
                cached_input_tokens=call.cached_input_tokens,
                cache_write_tokens=call.cache_write_tokens,
                reasoning_tokens=call.reasoning_tokens,
                end_user=call.end_user,
                tags=call.tags,
                cost_basis=call.cost_basis,
                cache_savings=call.cache_savings,
            )
            for call, _, _ in fresh
        ]
    )
    max_bytes = settings.USAGELOGS_PAYLOAD_MAX_BYTES
    payloads = []
    for (call, *_), record in zip(fresh, records, strict=True):
        if all(text is None for text in call.texts.values()):
            continue
        payload = CallPayload(
            call_id=record.pk, created_at=record.created_at, account_id=record.account_id
        )
        for name in CallPayload.PARTS:
            stored = cap_text(call.texts[name], max_bytes)
            setattr(payload, name, stored.text)
            setattr(payload, f"{name}_truncated", stored.truncated)
            setattr(payload, f"{name}_original_bytes", stored.original_bytes)
        payloads.append(payload)
    if payloads:
        CallPayload.objects.bulk_create(payloads)
    return [record.pk for record in records]


def _first_uses(calls: list[ValidCall]) -> tuple[dict, dict, dict, dict]:
    """(account, model), (account, group), (account, tag) and (account, end user)
    pairs of the calls, with their first time."""
    models_seen: dict[tuple[int, str], datetime] = {}
    groups_seen: dict[tuple[int, int], datetime] = {}
    tags_seen: dict[tuple[int, str], datetime] = {}
    end_users_seen: dict[tuple[int, str], datetime] = {}

    def note(seen: dict, slot: tuple, moment: datetime) -> None:
        if slot not in seen or moment < seen[slot]:
            seen[slot] = moment

    for call in calls:
        note(models_seen, (call.account_id, call.model), call.created_at)
        note(groups_seen, (call.account_id, call.group_id), call.created_at)
        for tag in call.tags:
            note(tags_seen, (call.account_id, tag), call.created_at)
        if call.end_user:
            note(end_users_seen, (call.account_id, call.end_user), call.created_at)
    return models_seen, groups_seen, tags_seen, end_users_seen


def remember_models(calls: list[ValidCall]) -> None:
    """Note the models, groups, tags and end users each account used, for filter
    choices (SQLite; on PostgreSQL ``_registry_statements`` run with the batch's others)."""
    models_seen, groups_seen, tags_seen, end_users_seen = _first_uses(calls)
    AccountModel.objects.bulk_create(
        [AccountModel(account_id=a, model=m, first_seen_at=t) for (a, m), t in models_seen.items()],
        ignore_conflicts=True,
    )
    AccountGroup.objects.bulk_create(
        [
            AccountGroup(account_id=a, group_id=g, first_seen_at=t)
            for (a, g), t in groups_seen.items()
        ],
        ignore_conflicts=True,
    )
    AccountTag.objects.bulk_create(
        [AccountTag(account_id=a, tag=tag, first_seen_at=t) for (a, tag), t in tags_seen.items()],
        ignore_conflicts=True,
    )
    AccountEndUser.objects.bulk_create(
        [
            AccountEndUser(account_id=a, end_user=user, first_seen_at=t)
            for (a, user), t in end_users_seen.items()
        ],
        ignore_conflicts=True,
    )


def _registry_statements(calls: list[ValidCall]) -> list[tuple[str, list]]:
    """remember_models on PostgreSQL as statements. Rows go in a fixed order:
    concurrent batches wait on each other's new rows in the same order and
    cannot deadlock."""
    statements = []
    models_seen, groups_seen, tags_seen, end_users_seen = _first_uses(calls)
    for model, seen, column, column_type in (
        (AccountModel, models_seen, "model", "varchar"),
        (AccountGroup, groups_seen, "group_id", "bigint"),
        (AccountTag, tags_seen, "tag", "varchar"),
        (AccountEndUser, end_users_seen, "end_user", "varchar"),
    ):
        if not seen:
            continue
        ordered = sorted(seen.items())
        sql = unnest_insert_sql(
            model._meta.db_table,
            ["account_id", column, "first_seen_at"],
            ["bigint", column_type, "timestamptz"],
        )
        statements.append(
            (
                f"{sql} ON CONFLICT DO NOTHING",
                [
                    pg_int_array_literal(a for (a, _), _ in ordered),
                    pg_array_literal(value for (_, value), _ in ordered),
                    pg_array_literal(moment for _, moment in ordered),
                ],
            )
        )
    return statements
