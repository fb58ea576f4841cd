"""How numbers, durations and times are shown on the pages: one place for
every display formatter (the CSV and the API keep full precision)."""

from __future__ import annotations

from datetime import UTC

from logs.admin import charts

LONG_DURATION_MS = 10_000


def format_duration(ms: int | None) -> str:
    """Milliseconds always; seconds beside them once they stop being readable."""
    if ms is None:
        return "—"
    if ms >= LONG_DURATION_MS:
        return f"{ms:,} ms ({ms / 1000:.1f} s)"
    return f"{ms:,} ms"


def format_speed(tokens_per_second: float | None) -> str:
    return "—" if tokens_per_second is None else f"{tokens_per_second:,.1f} tok/s"


def utc_iso(moment) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def integer(value) -> str:
    return f"{int(value):,}"


def decimal(value) -> str:
    """Exact, as stored: the same digits the call list's totals show."""
    return str(value)


def rate(value) -> str:
    return "—" if value is None else charts.percent(value)


def per_call(total: int, calls: int) -> str:
    return "—" if not calls else f"{total / calls:,.1f}"


def milliseconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    return f"{value:,.0f} ms"


def tokens_per_second(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} tok/s"


def share(part: int, whole: int) -> str:
    """``part`` as a percentage of ``whole`` (cached tokens of the input, say)."""
    return "—" if not whole else charts.percent(part / whole)


def token_parts_summary(call) -> str:
    """The parts of a call's tokens in words, for a tooltip: cache reads and
    writes of the input, reasoning of the output ("" when it has none)."""
    parts = []
    if call.cached_input_tokens:
        parts.append(
            f"{call.cached_input_tokens:,} input tokens read from the cache "
            f"({share(call.cached_input_tokens, call.input_tokens)} of the input)"
        )
    if call.cache_write_tokens:
        parts.append(f"{call.cache_write_tokens:,} written to the cache")
    if call.reasoning_tokens:
        parts.append(f"{call.reasoning_tokens:,} reasoning tokens (part of the output)")
    return "; ".join(parts)
