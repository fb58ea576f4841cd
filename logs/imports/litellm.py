"""LiteLLM's spend logs (``LiteLLM_SpendLogs``) as calls.

A LiteLLM proxy writes one row per call to ``LiteLLM_SpendLogs`` (its
``schema.prisma``: request_id, call_type, api_key — the SHA-256 of the key —,
spend, prompt/completion/total tokens, startTime, endTime,
completionStartTime, model, model_id, model_group, custom_llm_provider,
api_base, user, metadata, cache_hit, cache_key, request_tags, team_id,
end_user, requester_ip_address, messages, response, status, …).

Each row is turned into the ``StandardLoggingPayload`` the proxy would have
posted for that call and mapped by the live integration's own
``logs.integrations.litellm.to_record``: the same request id, team account,
key (by its hash), model, upstream and cost, so imported history and live
calls of one key land on one key, and a call both posted live and found in
the spend logs is one call. The live record is kept then (it has the
messages and response the spend logs often leave out): such a call counts as
already present, whatever differs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from accounts.external import UnknownExternal
from accounts.models import Source
from logs.imports.base import Mapped, Refusal, text
from logs.imports.identities import ExternalKey, Identities
from logs.imports.tables import Table
from logs.integrations.litellm import NO_TEAM_ID, NO_TEAM_NAME, to_record

TABLE = "LiteLLM_SpendLogs"
# Columns read into the payload's own fields; the rest go with its metadata.
_READ = frozenset(
    {
        "request_id",
        "call_type",
        "api_key",
        "spend",
        "total_tokens",
        "prompt_tokens",
        "completion_tokens",
        "startTime",
        "endTime",
        "completionStartTime",
        "model",
        "model_id",
        "model_group",
        "custom_llm_provider",
        "api_base",
        "metadata",
        "request_tags",
        "team_id",
        "end_user",
        "requester_ip_address",
        "messages",
        "response",
        "status",
    }
)


def _seconds(value: Any) -> Any:
    """A spend-log time (PostgreSQL's timestamp without zone, in UTC; text in a
    dump) as the epoch seconds the payload carries; anything else as it is,
    for the mapping to refuse by name."""
    if isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
        except ValueError:
            return value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return None if value == "" else value


def _json(value: Any) -> Any:
    """A Json column: read already (PostgreSQL) or as text (dumps, SQLite)."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else None
        except ValueError:
            return value
    return value


def _count(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return 0 if value in (None, "") else value


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value) if value.strip() else None
        except ValueError:
            return value
    return value


class LiteLLMFormat:
    name = "litellm"

    def __init__(self, identities: Identities | None = None):
        self.identities = identities or Identities(Source.LITELLM)

    def table(self, location: str) -> Table:
        return Table(location, TABLE, key=("startTime", "request_id"))

    def source_id(self, row: dict[str, Any]) -> str:
        return str(row.get("request_id", "?"))

    def request_id(self, row: dict[str, Any]) -> str | None:
        """The request id the row's call gets (ingest strips it), or None."""
        value = row.get("request_id")
        return value.strip() if isinstance(value, str) else None

    def source_field(self, field: str) -> str:
        return _PAYLOAD_COLUMNS.get(field.split(".")[0], field) if field else field

    # A call the live integration stored first is that call: present, not a conflict.
    replays_are_present = True

    def payload(self, row: dict[str, Any]) -> dict[str, Any]:
        """The StandardLoggingPayload the proxy would have posted for this row."""
        metadata = _json(row.get("metadata"))
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        metadata["user_api_key_hash"] = row.get("api_key") or None
        metadata["user_api_key_team_id"] = row.get("team_id") or None
        start, end = _seconds(row.get("startTime")), _seconds(row.get("endTime"))
        first = _seconds(row.get("completionStartTime"))
        messages, response = _json(row.get("messages")), _json(row.get("response"))
        payload = {
            "id": row.get("request_id"),
            "call_type": row.get("call_type") or "",
            # Not in the spend logs: a first token before the end means it streamed
            # (LiteLLM sets completionStartTime to endTime for a call that did not).
            "stream": isinstance(first, float) and isinstance(end, float) and first < end,
            "status": row.get("status") or "success",
            "startTime": start,
            "endTime": end,
            "completionStartTime": first,
            "model": row.get("model") or "",
            "model_group": row.get("model_group") or "",
            "model_id": row.get("model_id") or "",
            "custom_llm_provider": row.get("custom_llm_provider") or "",
            "api_base": row.get("api_base") or "",
            "prompt_tokens": _count(row.get("prompt_tokens")),
            "completion_tokens": _count(row.get("completion_tokens")),
            "total_tokens": _count(row.get("total_tokens")),
            "response_cost": _number(row.get("spend")),
            "messages": messages or None,
            "response": response or None,
            "requester_ip_address": row.get("requester_ip_address") or None,
            "metadata": metadata,
        }
        if isinstance(metadata.get("error_information"), dict):
            payload["error_information"] = metadata.pop("error_information")
        for name, value in row.items():
            if name not in _READ and value not in (None, "", {}, []):
                payload.setdefault("spend_log", {})[name] = _json(value)
        return payload

    def map(self, row: dict[str, Any]) -> Mapped:
        if "__unreadable__" in row:
            return Refusal("", row["__unreadable__"])
        mapped, problems = to_record(0, self.payload(row))
        if problems:
            problem = problems[0]
            return Refusal(_PAYLOAD_COLUMNS.get(problem.field, problem.field), problem.message)
        identity = mapped.identity
        try:
            if identity.team_id == NO_TEAM_ID:
                account = self.identities.account(NO_TEAM_ID, NO_TEAM_NAME)
            else:
                account = self.identities.account(identity.team_id, identity.team_alias)
            key = ExternalKey(identity.key_hash, identity.key_alias, identity.key_hash.lower())
            mapped.record["api_key"] = self.identities.key_prefix(account, key)
        except UnknownExternal as exc:
            return Refusal("api_key", str(exc))
        record = mapped.record
        end_user = text(row, "end_user").strip()
        if end_user:
            record["end_user"] = end_user
        tags = _json(row.get("request_tags"))
        if tags:
            record["tags"] = tags
        return record


# The payload fields the live mapping names in its problems → the spend-log column.
_PAYLOAD_COLUMNS = {
    "id": "request_id",
    "request_id": "request_id",
    "metadata.user_api_key_hash": "api_key",
    "metadata.user_api_key_team_id": "team_id",
    "response_cost": "spend",
    "cost": "spend",
    "created_at": "startTime",
    "duration_ms": "endTime",
    "ttft_ms": "completionStartTime",
    "input_tokens": "prompt_tokens",
    "output_tokens": "completion_tokens",
    "model": "model_group",
    "client_ip": "requester_ip_address",
    "upstream": "api_base",
    "tags": "request_tags",
    "end_user": "end_user",
    "request": "messages",
}
