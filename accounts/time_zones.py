"""The time zones a user may choose for the pages (``UserPreference.time_zone``)."""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo, available_timezones


@functools.cache
def known_zones() -> tuple[str, ...]:
    """Every IANA zone the system knows, sorted (read once: the lookup walks the disk)."""
    return tuple(sorted(available_timezones()))


def zone_named(name: str) -> ZoneInfo | None:
    """The zone ``name`` names, or None if the system does not know it (any more)."""
    if name not in _known_set():
        return None
    return ZoneInfo(name)


@functools.cache
def _known_set() -> frozenset[str]:
    return frozenset(known_zones())
