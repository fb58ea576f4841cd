"""Periods of time, in one place.

Two kinds of period meet in Usage Logs:

* **Grids**: the UTC periods rollups are kept on (quarter hours, hours, days,
  months). A grid period is a fixed stretch of UTC time, whatever zone a page
  is shown in.
* **Buckets**: the hours or days of a chart or a stats row, in the current
  time zone. A bucket starts wherever the zone's clock shows a whole hour (or
  midnight): in India that is half past a UTC hour, in Nepal a quarter to, and
  a daylight-saving change gives a day of 23 or 25 hours.

A grid period can answer for a bucket only when it lies wholly inside it; the
read planner (``logs.read.planner``) asks ``Grid.straddles`` to find the ones
that do not. Every zone in use today (and since 1972) is offset from UTC by a
whole number of quarter hours, so quarter hours always fit.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from django.db.models import DateTimeField, F, Func
from django.db.models.functions import TruncDay
from django.utils import timezone

INTERVALS = ("hour", "day")
MonthStart = TypeVar("MonthStart", date, datetime)
# The SQLite function LocalHourStart calls (registered by logs.apps on each connection).
SQLITE_LOCAL_HOUR_START = "usagelogs_local_hour_start"


def next_month(start: MonthStart) -> MonthStart:
    """The first day (or instant) of the month after the one ``start``, a
    month's first day (or instant), begins."""
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


@dataclass(frozen=True)
class Grid:
    """Consecutive UTC periods of one length (or calendar months)."""

    name: str
    step: timedelta | None  # None: calendar months

    def floor(self, moment: datetime) -> datetime:
        """The start of the period ``moment`` falls in (UTC)."""
        utc = moment.astimezone(UTC)
        if self.name == "quarter_hour":
            return utc.replace(minute=utc.minute - utc.minute % 15, second=0, microsecond=0)
        hour = utc.replace(minute=0, second=0, microsecond=0)
        if self.name == "hour":
            return hour
        if self.name == "day":
            return hour.replace(hour=0)
        return hour.replace(day=1, hour=0)

    def next(self, start: datetime) -> datetime:
        """The start of the period after the one starting at ``start``."""
        return next_month(start) if self.step is None else start + self.step

    def ceil(self, moment: datetime) -> datetime:
        """``moment`` if a period starts there, else the start of the next period."""
        start = self.floor(moment)
        return start if start == moment else self.next(start)

    def periods(self, first: datetime, last: datetime) -> Iterator[datetime]:
        """The starts of the periods in [first, last) (both period starts)."""
        start = first
        while start < last:
            yield start
            start = self.next(start)

    def straddles(self, start: datetime, boundaries: Sequence[datetime]) -> bool:
        """Whether a bucket boundary falls strictly inside the period at ``start``
        (``boundaries`` sorted, in UTC)."""
        after = bisect.bisect_right(boundaries, start)
        return after < len(boundaries) and boundaries[after] < self.next(start)


QUARTER_HOUR = Grid("quarter_hour", timedelta(minutes=15))
HOUR = Grid("hour", timedelta(hours=1))
DAY = Grid("day", timedelta(days=1))
MONTH = Grid("month", None)
# Coarsest first: the order a time range is cut in.
GRIDS: tuple[Grid, ...] = (MONTH, DAY, HOUR, QUARTER_HOUR)


# --- buckets (in the current time zone) -------------------------------------------------


def bucket_start(moment: datetime, interval: str) -> datetime:
    """The hour or day (in the current time zone) that ``moment`` falls in."""
    local = timezone.localtime(moment)
    if interval == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    return timezone.make_aware(datetime.combine(local.date(), time.min))


def bucket_starts(first: datetime, last: datetime, interval: str) -> list[datetime]:
    """Every bucket from the one holding ``first`` to the one holding ``last``.

    Hours step in UTC from a local whole hour, so a daylight-saving change gives
    23 or 25 hours in a day, not a missing or doubled one (a change by half an
    hour, as in Lord Howe, is not a whole hour: such zones are not supported
    for hour buckets); days step by date.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}")
    if last < first:
        return []
    starts = []
    if interval == "hour":
        # The zone looked up once: a month of hours is 720 steps.
        zone = timezone.get_current_timezone()
        cursor = bucket_start(first, "hour").astimezone(UTC)
        end = bucket_start(last, "hour").astimezone(UTC)
        while cursor <= end:
            starts.append(cursor.astimezone(zone))
            cursor += timedelta(hours=1)
    else:
        day = timezone.localtime(first).date()
        end_day = timezone.localtime(last).date()
        while day <= end_day:
            starts.append(timezone.make_aware(datetime.combine(day, time.min)))
            day += timedelta(days=1)
    return starts


def bucket_count(first: datetime, last: datetime, interval: str) -> int:
    """How many buckets ``bucket_starts(first, last, interval)`` gives, without listing them."""
    if last < first:
        return 0
    if interval == "hour":
        span = bucket_start(last, "hour") - bucket_start(first, "hour")
        return int(span.total_seconds() // 3600) + 1
    return (timezone.localtime(last).date() - timezone.localtime(first).date()).days + 1


def bucket_boundaries(start: datetime, end: datetime, interval: str) -> list[datetime]:
    """The instants (UTC, ascending) in (start, end) where one bucket ends and the next begins."""
    if end <= start:
        return []
    starts = bucket_starts(start, end - timedelta(microseconds=1), interval)
    return [moment for moment in (s.astimezone(UTC) for s in starts) if start < moment < end]


# --- buckets in SQL ------------------------------------------------------------------


class LocalHourStart(Func):
    """The instant the zone's clock last showed a whole hour, at or before a
    moment: the start of the moment's local-hour bucket.

    Django's ``TruncHour(…, tzinfo=zone)`` truncates the local wall-clock time
    and reads it back in the zone, so the hour a daylight-saving change
    repeats (01:00-02:00 twice in New York each November) comes back as one
    bucket. Stepping back by the minutes and seconds the local clock shows
    keeps the two apart, and is exact in every zone whose clock changes on a
    whole local hour (all but Lord Howe Island).
    """

    output_field = DateTimeField()

    def __init__(self, expression, zone_name: str):
        super().__init__(expression)
        self.zone_name = zone_name

    def as_sql(self, compiler, connection, **extra_context):
        raise NotImplementedError(f"LocalHourStart is not written for {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        local = f"({sql} AT TIME ZONE %s)"
        return (
            f"({sql} - ({local} - date_trunc('hour', {local})))",
            (*params, *params, self.zone_name, *params, self.zone_name),
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"{SQLITE_LOCAL_HOUR_START}({sql}, %s)", (*params, self.zone_name)


def sqlite_local_hour_start(stored: str | None, zone_name: str) -> str | None:
    """LocalHourStart on SQLite, where Django stores a moment as UTC text."""
    if stored is None:
        return None
    moment = datetime.fromisoformat(stored).replace(tzinfo=UTC)
    local = moment.astimezone(ZoneInfo(zone_name))
    start = moment - timedelta(
        minutes=local.minute, seconds=local.second, microseconds=local.microsecond
    )
    return start.strftime("%Y-%m-%d %H:%M:%S")


def bucket_expression(field_name: str, interval: str):
    """SQL for the start of the current zone's hour or day that ``field_name`` is in."""
    if interval == "hour":
        return LocalHourStart(F(field_name), timezone.get_current_timezone_name())
    if interval == "day":
        # Midnight is never repeated or skipped in the zones this serves.
        return TruncDay(field_name, tzinfo=timezone.get_current_timezone())
    raise ValueError(f"interval must be one of {INTERVALS}")


# --- recent time presets ---------------------------------------------------------------

# ``?last=1h``: the calls of the last hour, counted back from each request's
# "now" (so a shared link shows the same span, not the same instants).
RECENT_PRESETS: dict[str, tuple[timedelta, str]] = {
    "15m": (timedelta(minutes=15), "Last 15 minutes"),
    "1h": (timedelta(hours=1), "Last hour"),
    "24h": (timedelta(hours=24), "Last 24 hours"),
    "7d": (timedelta(days=7), "Last 7 days"),
    "30d": (timedelta(days=30), "Last 30 days"),
}


def recent_start(preset: str, now: datetime) -> datetime:
    """When the span ``preset`` (a key of RECENT_PRESETS) began, at ``now``;
    ValueError naming the presets there are."""
    if preset not in RECENT_PRESETS:
        raise ValueError(f"must be one of {', '.join(RECENT_PRESETS)}")
    return now - RECENT_PRESETS[preset][0]
