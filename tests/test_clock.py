"""The tests' own clock (tests/clock.py, the ``clock`` fixture): every test
starts at a fixed instant, in every thread, and the time-sensitive instants
are where their names say."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from tests.clock import PINNED, TIME_SENSITIVE_INSTANTS, at_instants

CLOSE = timedelta(seconds=5)


def test_a_test_starts_at_the_pinned_instant_whatever_the_wall_clock_says(clock):
    assert clock.instant == PINNED
    assert clock.now <= timezone.now() < clock.now + CLOSE
    assert clock.now <= datetime.now(UTC) < clock.now + CLOSE
    assert date.today() == PINNED.at.date()
    assert clock.now.timestamp() <= time.time() < (clock.now + CLOSE).timestamp()


def test_other_threads_read_the_same_clock(clock):
    # The browser tests' live server answers from threads of its own.
    seen = []
    thread = threading.Thread(target=lambda: seen.append(timezone.now()))
    thread.start()
    thread.join()
    assert clock.now <= seen[0] < clock.now + CLOSE


def test_the_clock_ticks_on_from_the_instant(clock):
    before, started = timezone.now(), time.monotonic()
    time.sleep(0.05)
    assert timezone.now() - before >= timedelta(seconds=0.04)
    assert time.monotonic() - started >= 0.04


@at_instants("Berlin, 1 min after fall back", "St. John's, 1 min before spring forward")
def test_an_instant_in_a_zone_runs_the_test_in_that_zone(clock):
    assert clock.now <= timezone.now() < clock.now + CLOSE
    assert timezone.get_current_timezone_name() == clock.instant.zone
    expected = {"Europe/Berlin": timedelta(hours=1), "America/St_Johns": timedelta(hours=-3.5)}
    assert timezone.localtime().utcoffset() == expected[clock.instant.zone]


def test_each_time_sensitive_instant_is_where_its_name_says():
    minute = timedelta(minutes=1)
    for instant in TIME_SENSITIVE_INSTANTS:
        name, at = instant.name, instant.at
        assert at.tzinfo is UTC, name
        if instant.zone is not None:
            zone = ZoneInfo(instant.zone)
            before, after = (at, at + 2 * minute) if "before" in name else (at - 2 * minute, at)
            assert before.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset(), name
            change = "spring forward" if "spring" in name else "fall back"
            later = after.astimezone(zone).utcoffset() > before.astimezone(zone).utcoffset()
            assert later == (change == "spring forward"), name
        elif "before an hour" in name:
            assert (at + minute).minute == 0, name
        elif "after an hour" in name:
            assert (at - minute).minute == 0, name
        elif name == "midnight UTC":
            assert (at.hour, at.minute, at.second) == (0, 0, 0), name
        elif "before midnight" in name:
            assert at.date() != (at + minute).date(), name
        elif "of November" in name:
            assert (at + minute).month == 12 and (at + minute).day == 1, name
        elif "Feb 29" in name:
            assert (at.month, at.day) == (2, 29), name
            if "last minute" in name:
                assert (at + minute).date() == date(at.year, 3, 1), name
        else:
            raise AssertionError(f"no check for {name}")
