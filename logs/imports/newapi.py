"""new-api's and one-api's ``logs`` table as calls (docs/integrations/history-import.md).

One row per event; ``type`` says which: 2 is a call that was billed
(consume), 5 a call that failed (error, new-api only). Top-ups, management
and system entries are not calls: skipped and counted by type.

new-api ``model/log.go``: id, user_id, created_at (Unix seconds), type,
content, username, token_name, model_name, quota, prompt_tokens,
completion_tokens, use_time (seconds), is_stream, channel_id, token_id,
group, ip, other (a JSON text: ratios, cache tokens, ``frt`` the first
response time in ms, ``admin_info``, and for errors status_code, error_type,
error_code). one-api's table is the same without group, ip and other; its
duration is ``elapsed_time`` (ms) in recent versions, ``request_time`` (ms)
in some forks.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from accounts.models import Source
from logs.imports.base import (
    BadField,
    Mapped,
    Refusal,
    Skip,
    first_line,
    flag,
    identifier,
    json_object,
    number,
    text,
    unix_time,
    whole,
)
from logs.imports.identities import ExternalKey, Identities, UnknownExternal
from logs.imports.tables import Table
from logs.models import COST_DECIMAL_PLACES

# new-api's default QuotaPerUnit: 500,000 quota is one US dollar.
DEFAULT_QUOTA_PER_USD = Decimal(500_000)

CONSUME, ERROR = 2, 5
LOG_TYPES = {0: "unknown", 1: "top-up", 2: "consume", 3: "management", 4: "system", 5: "error"}
LOG_TYPES[6] = "refund"

# `other` keys that are not shown to a user in new-api itself (it deletes
# admin_info before showing a user their logs): never imported, as account
# owners read a call's details here.
PRIVATE_OTHER_KEYS = frozenset({"admin_info"})

# From the request path when `other` has one, else from the model's name.
_PATH_TYPES = (
    ("/embeddings", "embedding"),
    ("/images", "image"),
    ("/audio", "audio"),
    ("/moderations", "moderation"),
    ("/rerank", "rerank"),
    ("/completions", "completion"),
)
_MODEL_TYPES = (
    ("embedding", "embedding"),
    ("rerank", "rerank"),
    ("moderation", "moderation"),
    ("dall-e", "image"),
    ("gpt-image", "image"),
    ("whisper", "audio"),
    ("tts", "audio"),
)


def call_type(path: str, model: str) -> str:
    path = path.lower()
    if path:
        if path.endswith("/chat/completions") or "/messages" in path:
            return "chat"
        for part, kind in _PATH_TYPES:
            if part in path:
                return kind
    lowered = model.lower()
    for part, kind in _MODEL_TYPES:
        if part in lowered:
            return kind
    return "chat"


_FIELD_COLUMNS = {
    "request_id": "id",
    "created_at": "created_at",
    "api_key": "token_id",
    "group": "group",
    "model": "model_name",
    "endpoint": "other",
    "input_tokens": "prompt_tokens",
    "output_tokens": "completion_tokens",
    "usage": "quota",
    "cost": "quota",
    "duration_ms": "use_time",
    "ttft_ms": "other",
    "client_ip": "ip",
    "request": "other",
    "error": "content",
    "error_reason": "content",
}


class NewApiFormat:
    """new-api (``source=Source.NEWAPI``) or one-api (``Source.ONEAPI``) logs."""

    def __init__(
        self,
        source: Source = Source.NEWAPI,
        *,
        quota_per_usd: Decimal = DEFAULT_QUOTA_PER_USD,
        identities: Identities | None = None,
    ):
        self.source = source
        self.name = source.value
        self.quota_per_usd = quota_per_usd
        self.identities = identities or Identities(source)
        self._cost_step = Decimal(1).scaleb(-COST_DECIMAL_PLACES)

    def table(self, location: str) -> Table:
        return Table(location, "logs", key=("id",))

    def source_id(self, row: dict[str, Any]) -> str:
        return str(row.get("id", "?"))

    def request_id(self, row: dict[str, Any]) -> str | None:
        """The request id ``map`` gives the row, or None when it has none."""
        try:
            return f"{self.name}-{identifier(row, 'id')}"
        except BadField:
            return None

    def source_field(self, field: str) -> str:
        """The source column an ingest field came from, for messages."""
        head = field.split(".")[0].split("[")[0]
        column = _FIELD_COLUMNS.get(head)
        return f"{column} ({field})" if column and column != field else field

    def map(self, row: dict[str, Any]) -> Mapped:
        if "__unreadable__" in row:
            return Refusal("", row["__unreadable__"])
        try:
            return self._map(row)
        except BadField as exc:
            return Refusal(exc.field, exc.message)
        except UnknownExternal as exc:
            return Refusal("token_id", str(exc))

    def _map(self, row: dict[str, Any]) -> Mapped:
        log_type = whole(row, "type")
        if log_type not in (CONSUME, ERROR):
            return Skip(f"type {log_type} ({LOG_TYPES.get(log_type, 'unknown')})")
        row_id = identifier(row, "id")
        user_id = identifier(row, "user_id")
        token_id = identifier(row, "token_id", default=0)
        model = text(row, "model_name").strip()
        other = json_object(row, "other")
        content = text(row, "content")
        group = text(row, "group").strip()

        account = self.identities.account(str(user_id), text(row, "username").strip())
        if token_id:
            key = ExternalKey(str(token_id), alias=text(row, "token_name"))
        else:
            # A call without a token (new-api's playground): one key per user.
            key = ExternalKey(f"user-{user_id}", alias=text(row, "token_name") or "no token")
        prefix = self.identities.key_prefix(account, key, group_name=group)

        quota = whole(row, "quota", default=0)
        duration_ms = self._duration_ms(row)
        ttft_ms = None
        frt = other.get("frt")
        if isinstance(frt, int | float) and not isinstance(frt, bool) and frt >= 0:
            ttft_ms = int(frt)
            # use_time is whole seconds, cut short: a first token cannot come after the end.
            duration_ms = max(duration_ms, ttft_ms)
        path = other.get("request_path") if isinstance(other.get("request_path"), str) else ""
        details = {k: v for k, v in other.items() if k not in PRIVATE_OTHER_KEYS}
        if content and log_type == CONSUME:
            details["content"] = content
        channel = identifier(row, "channel_id", default=0)
        record: dict[str, Any] = {
            "request_id": f"{self.name}-{row_id}",
            "created_at": unix_time(row, "created_at"),
            "api_key": prefix,
            "group": self.identities.group(group),
            "call_type": call_type(path, model),
            "model": model,
            "endpoint": path,
            "stream": flag(row, "is_stream"),
            "status_code": 200,
            "duration_ms": duration_ms,
            "ttft_ms": ttft_ms,
            "input_tokens": whole(row, "prompt_tokens", default=0),
            "output_tokens": whole(row, "completion_tokens", default=0),
            "usage": quota,
            "cost": self.cost(quota),
            "client_ip": text(row, "ip").strip() or None,
            "upstream": f"channel-{channel}" if channel else "",
        }
        record.update(self._token_details(other, record))
        if details:
            record["request"] = {"params": details}
        if log_type == ERROR:
            status = other.get("status_code")
            record["status_code"] = (
                status if isinstance(status, int) and 400 <= status <= 599 else 500
            )
            record["error_reason"] = first_line(content) or "error"
            record["error"] = {
                "message": content,
                **{k: other[k] for k in ("error_type", "error_code") if k in other},
            }
        return record

    @staticmethod
    def _token_details(other: dict[str, Any], record: dict[str, Any]) -> dict[str, int]:
        """Cache and reasoning tokens from ``other``, where they are parts of the
        row's prompt and completion tokens as ingest counts them. Counts that do
        not fit (a version that bills cache tokens beside the prompt) stay in the
        request params only: input and output tokens stay exactly the source's."""

        def count(name: str) -> int:
            value = other.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        details = {}
        cached, written = count("cache_tokens"), count("cache_creation_tokens")
        if cached >= 0 and written >= 0 and cached + written <= record["input_tokens"]:
            details["cached_input_tokens"], details["cache_write_tokens"] = cached, written
        reasoning = count("reasoning_tokens")
        if 0 <= reasoning <= record["output_tokens"]:
            details["reasoning_tokens"] = reasoning
        return details

    def _duration_ms(self, row: dict[str, Any]) -> int:
        for name in ("elapsed_time", "request_time"):  # one-api: milliseconds
            if row.get(name) not in (None, ""):
                return whole(row, name)
        return int(number(row, "use_time", default=0) * 1000)

    def cost(self, quota: int) -> str:
        """Quota in US dollars at ``quota_per_usd``, to the cent's millionth."""
        if quota < 0:
            return str(quota)  # refused by validation, naming cost and usage
        usd = (Decimal(quota) / self.quota_per_usd).quantize(
            self._cost_step, rounding=ROUND_HALF_EVEN
        )
        return str(usd)
