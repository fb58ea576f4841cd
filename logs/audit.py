"""Reading customers' prompts is itself recorded: one access record per call
detail opened and per export, on any surface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from logs.models import (
    AccessRecord,
    CallRecord,
)


def record_access(
    *,
    user,
    action: str,
    surface: str,
    call: CallRecord | None = None,
    filters: Mapping[str, Any] | None = None,
    row_count: int | None = None,
) -> AccessRecord:
    """Note that someone read call contents (a detail page or an export)."""
    return AccessRecord.objects.create(
        at=timezone.now(),
        user=user if getattr(user, "is_authenticated", False) else None,
        username=getattr(user, "get_username", lambda: "")(),
        action=action,
        surface=surface,
        call_id=call.pk if call is not None else None,
        request_id=call.request_id if call is not None else "",
        filters={
            _jsonb_text(key): _jsonb_text(value) if isinstance(value, str) else value
            for key, value in (filters or {}).items()
            if value not in ("", None)
        },
        row_count=row_count,
    )


def _jsonb_text(text: str) -> str:
    """PostgreSQL's jsonb cannot hold a NUL character (``\\u0000``): keep a
    visible stand-in instead of failing the read the record is about."""
    return text.replace("\x00", "\ufffd")


def finish_export_record(record: AccessRecord, row_count: int) -> None:
    """Streamed exports learn their size at the end."""
    AccessRecord.objects.filter(pk=record.pk).update(row_count=row_count)
