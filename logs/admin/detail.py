"""A call's detail page: each stored payload part pretty-printed, long ones folded."""

from __future__ import annotations

import json

from logs.models import CallPayload

# Payload parts longer than this are folded on the detail page (a preview, then
# "Show all N lines"): many lines, or one long prompt on few lines.
FOLD_LINES = 40


FOLD_CHARS = 4_000


PREVIEW_LINES = 12


PREVIEW_LINE_CHARS = 240


PART_TITLES = {
    "request_params": "Request parameters",
    "request_headers": "Request headers",
    "request_body": "Request body",
    "response": "Response",
    "error_detail": "Error detail",
}


def payload_parts(payload: CallPayload | None) -> list[dict]:
    """Each stored part, pretty-printed when it is whole JSON, as stored when cut.

    A long part (``FOLD_LINES`` lines or ``FOLD_CHARS`` characters) is folded:
    the page shows its first lines as a preview and the whole on demand.
    """
    parts = []
    for name, title in PART_TITLES.items():
        text = getattr(payload, name, "") if payload else ""
        truncated = bool(payload and getattr(payload, f"{name}_truncated"))
        pretty = text
        is_json = False
        if text and not truncated:
            try:
                pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
                is_json = True
            except ValueError:
                pretty = text
        lines = pretty.split("\n") if pretty else []
        folded = len(lines) > FOLD_LINES or len(pretty) > FOLD_CHARS
        preview = "\n".join(
            line if len(line) <= PREVIEW_LINE_CHARS else line[:PREVIEW_LINE_CHARS] + "…"
            for line in lines[:PREVIEW_LINES]
        )
        parts.append(
            {
                "name": name,
                "title": title,
                "text": pretty,
                "truncated": truncated,
                "original_bytes": getattr(payload, f"{name}_original_bytes", None)
                if payload
                else None,
                "stored_bytes": len(text.encode()),
                "lines": len(lines),
                "is_json": is_json,
                "folded": folded,
                "preview": preview if folded else "",
            }
        )
    return parts
