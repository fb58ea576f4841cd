"""A call's detail page: each stored payload part pretty-printed, long ones
folded; how its cost came about."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext

from logs.models import CallPayload
from logs.pricing import KINDS

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


TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True)
class CostExplanation:
    """How a call's cost came about, for its detail page: the gateway's figure,
    or tokens x price per kind x group ratio (from the stored basis)."""

    reported: bool
    lines: list[str]
    total: str  # the sum before the ratio, then the ratio and the exact result

    @classmethod
    def of(cls, call) -> CostExplanation:
        basis = call.cost_basis
        if not basis:
            return cls(reported=True, lines=[], total="")
        with localcontext(Context(prec=80)):
            lines, base = [], Decimal(0)
            for kind, _, label in KINDS:
                tokens = basis["tokens"][kind]
                price = Decimal(basis["per_million"][kind])
                amount = Decimal(tokens) * price / Decimal(1_000_000)
                base += amount
                lines.append(
                    f"{tokens:,} {label} tokens {TIMES} ${price:f} per million = ${_plain(amount)}"
                )
        whose = f"the {basis['price_group']} group's" if basis["price_group"] else "every group's"
        total = (
            f"${_plain(base)} {TIMES} group ratio {basis['price_ratio']} ({basis['group']}) "
            f"= ${basis['exact']}, stored as ${call.cost:f} (8 places, half up); "
            f"prices of {basis['model']} ({whose}) in force from {basis['valid_from']}"
        )
        return cls(reported=False, lines=lines, total=total)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"
