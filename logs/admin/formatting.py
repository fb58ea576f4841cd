"""How numbers, durations and times are shown on the pages: one place for
every display formatter (the CSV and the API keep full precision)."""

from __future__ import annotations

from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

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


# --- numbers for reading -------------------------------------------------------------
#
# Usage has 6 decimals and cost 8 as stored ("23271645.765000"): the pages show
# them with thousands separators and only the decimals that matter; the exact
# value stays on hover (``title``), in the CSV and in the API.

SIGNIFICANT_DIGITS = 3
COMPACT_FROM = 10_000
# Smallest first: the first unit under which the number shows below 1,000.
_COMPACT_UNITS = ((10**3, "K"), (10**6, "M"), (10**9, "B"), (10**12, "T"))


def _rounded(number: Decimal, places: int) -> Decimal:
    return number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _decimal(value: Decimal | float | int) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def readable(value: Decimal | float | int | None) -> str:
    """Thousands separators; two decimals from 1 up, three significant digits
    below 1 (0.00012, 0.0031, 0.125), none for whole numbers."""
    if value is None:
        return "—"
    number = _decimal(value)
    if number == number.to_integral_value():
        return f"{number:,.0f}"
    magnitude = abs(number)
    if magnitude >= 1:
        return f"{_rounded(number, 2):,.2f}"
    places = SIGNIFICANT_DIGITS - 1 - magnitude.adjusted()
    text = f"{_rounded(number, places):,.{places}f}"
    return text.rstrip("0").rstrip(".")


def compact(value: Decimal | float | int | None) -> str:
    """Short enough for a table cell: from 10,000 up three significant digits
    and a unit (12.3K, 23.3M, 4.56B), below it ``readable``."""
    if value is None:
        return "—"
    number = _decimal(value)
    if abs(number) < COMPACT_FROM:
        return readable(number)
    for size, unit in _COMPACT_UNITS:
        scaled = number / size
        places = max(0, SIGNIFICANT_DIGITS - 1 - abs(scaled).adjusted())
        shown = _rounded(scaled, places)
        if abs(shown) < 1000 or unit == _COMPACT_UNITS[-1][1]:
            text = f"{shown:,.{places}f}"
            return (text.rstrip("0").rstrip(".") if "." in text else text) + unit
    return readable(number)


def exact(value: Decimal | int | None) -> str:
    """The stored value, digit for digit (for a hover title)."""
    return "" if value is None else str(value)


def iso_datetime(moment) -> str:
    """A time in the current zone as the call pages write it: 2026-12-02 16:19:05."""
    return "—" if moment is None else timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")
