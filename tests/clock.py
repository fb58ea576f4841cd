"""The tests' clock: every test runs at a fixed instant, never at the wall clock's.

CI runs at any minute of any day. A test that places its calls relative to
"now" (an hour ago, the last seven days, 90 days of retention) and passes at
14:27 may fail at 23:59, on the first of a month or on the day clocks change.
So ``tests/conftest.py`` pins "now" for the whole run and for every test with
time-machine: ``timezone.now()``, ``datetime.now()``, ``date.today()`` and
``time.time()`` answer from the pinned instant in every thread (the browser
tests' live server too). The clock ticks on from there (``tick=True``), so
durations, cache expiry and throttle windows still pass; ``time.monotonic()``
and ``time.perf_counter()`` are not touched (hypothesis's deadlines and
pytest's durations read them).

By default a test runs at ``PINNED``. A test whose answer could depend on
where "now" falls — just before or after an hour, at midnight, at the end of a
month, on Feb 29, across a daylight saving change — runs at several instants
instead, through the autouse ``clock`` fixture::

    @at_instants()                                      # every instant below
    @at_instants("midnight UTC", "Berlin, 1 min after spring forward")
    def test_something(clock, ...):
        ... clock.now ...                               # the instant the test runs at

or, to give each case of a parametrized test an instant of its own,
``pytest.mark.parametrize("case, clock", [...], indirect=["clock"])`` with
``instants(...)``. Each such test says (in its docstring or a comment above
it) which instants it runs at and why those. An instant with a ``zone`` also
runs the test with that ``TIME_ZONE`` (the site's zone: times shown, typed
and bucketed there).
``clock.traveller.shift(timedelta(...))`` moves a test's clock on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from time_machine import Traveller


@dataclass(frozen=True)
class Instant:
    """A moment a test runs at, and the site's time zone then (None: as configured)."""

    name: str
    at: datetime
    zone: str | None = None

    def __str__(self) -> str:
        return self.name


# A Wednesday in mid-December, 26 minutes into an afternoon hour (UTC): far
# from any hour, day, month or year boundary and from every daylight saving
# change, whatever the tests add or take away (a few minutes, hours or days,
# 7 days of slow-call history, 90 days of retention). After every fixed date
# the tests give a call, as ingest refuses calls from the future.
PINNED = Instant("pinned", datetime(2026, 12, 16, 14, 26, 47, tzinfo=UTC))


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


TIME_SENSITIVE_INSTANTS: tuple[Instant, ...] = (
    Instant("1 min before an hour", _utc(2026, 12, 16, 13, 59)),
    Instant("1 min after an hour", _utc(2026, 12, 16, 14, 1)),
    Instant("midnight UTC", _utc(2026, 12, 17, 0, 0)),
    Instant("3 s before midnight UTC", _utc(2026, 12, 16, 23, 59, 57)),
    Instant("last minute of November", _utc(2026, 11, 30, 23, 59)),
    Instant("Feb 29 noon", _utc(2028, 2, 29, 12, 0)),
    Instant("last minute of Feb 29", _utc(2028, 2, 29, 23, 59)),
    # Europe/Berlin: 2026-03-29 01:00 UTC clocks go 02:00 -> 03:00 (CET -> CEST);
    # 2026-10-25 01:00 UTC they go 03:00 -> 02:00 (CEST -> CET).
    Instant("Berlin, 1 min before spring forward", _utc(2026, 3, 29, 0, 59), "Europe/Berlin"),
    Instant("Berlin, 1 min after spring forward", _utc(2026, 3, 29, 1, 1), "Europe/Berlin"),
    Instant("Berlin, 1 min before fall back", _utc(2026, 10, 25, 0, 59), "Europe/Berlin"),
    Instant("Berlin, 1 min after fall back", _utc(2026, 10, 25, 1, 1), "Europe/Berlin"),
    # America/St_Johns, half an hour off whole-hour zones: 2026-03-08 05:30 UTC
    # clocks go 02:00 -> 03:00 (-03:30 -> -02:30); 2026-11-01 04:30 UTC they go
    # 02:00 -> 01:00 (-02:30 -> -03:30).
    Instant("St. John's, 1 min before spring forward", _utc(2026, 3, 8, 5, 29), "America/St_Johns"),
    Instant("St. John's, 1 min after spring forward", _utc(2026, 3, 8, 5, 31), "America/St_Johns"),
    Instant("St. John's, 1 min before fall back", _utc(2026, 11, 1, 4, 29), "America/St_Johns"),
    Instant("St. John's, 1 min after fall back", _utc(2026, 11, 1, 4, 31), "America/St_Johns"),
)

INSTANTS_BY_NAME = {instant.name: instant for instant in (PINNED, *TIME_SENSITIVE_INSTANTS)}


def instants(*names: str | Instant) -> list[Instant]:
    """The named instants (``PINNED`` is "pinned"); an Instant stands for itself."""
    unknown = {name for name in names if isinstance(name, str)} - set(INSTANTS_BY_NAME)
    if unknown:
        raise ValueError(f"no such instants: {sorted(unknown)}")
    return [name if isinstance(name, Instant) else INSTANTS_BY_NAME[name] for name in names]


def at_instants(*names: str | Instant) -> pytest.MarkDecorator:
    """Run the test once at each named instant (every one of
    TIME_SENSITIVE_INSTANTS if none is named), through the ``clock`` fixture."""
    chosen = instants(*names) if names else list(TIME_SENSITIVE_INSTANTS)
    return pytest.mark.parametrize("clock", chosen, indirect=True, ids=str)


@dataclass(frozen=True)
class Clock:
    """What the ``clock`` fixture gives a test: the instant it started at."""

    instant: Instant
    traveller: Traveller  # shift() or move_to() to move on

    @property
    def now(self) -> datetime:
        return self.instant.at
