"""Slow-call marks: each model's p95 duration over the last week of the calls
the user may see."""

from __future__ import annotations

from datetime import timedelta

import pytest

from logs.ingest.service import ingest_calls
from tests.clock import at_instants
from tests.factories import (
    ApiKeyFactory,
    MembershipFactory,
    StaffUserFactory,
    UserFactory,
    record_dict,
)

pytestmark = pytest.mark.django_db


def ids(calls) -> set[int]:
    return {call.pk for call in calls}


@at_instants(
    "pinned",
    "midnight UTC",
    "3 s before midnight UTC",
    "last minute of November",
    "Feb 29 noon",
    "Berlin, 1 min after fall back",
)
def test_slow_thresholds_are_each_models_p95_over_the_last_week_of_what_the_user_sees(db, clock):
    """The window is whole UTC days back from today: at and just before
    midnight, at a month's end, on Feb 29 and in Berlin after a DST change."""
    from django.core.cache import cache

    from logs.models.measures import HISTOGRAM_FIELDS, duration_bucket
    from logs.read.slow import SLOW_MIN_CALLS, slow_call_thresholds
    from logs.read.stats import histogram_percentile

    now = clock.now
    mine, theirs = ApiKeyFactory(), ApiKeyFactory()
    owner = UserFactory()
    MembershipFactory(user=owner, account=mine.account)
    durations = [100 + 37 * i for i in range(SLOW_MIN_CALLS + 10)]

    def calls(key, model, durations, age):
        return [
            record_dict(key, model=model, duration_ms=ms, ttft_ms=None, created_at=now - age)
            for ms in durations
        ]

    ingest_calls(
        calls(mine, "gpt-4o", durations, timedelta(days=2))
        + calls(mine, "gpt-4o", [90_000] * 50, timedelta(days=9))  # before the window
        + calls(theirs, "gpt-4o", [90_000] * 50, timedelta(days=1))  # another account
        + calls(mine, "rare-model", [5_000] * (SLOW_MIN_CALLS - 1), timedelta(days=1))
    )
    counts = [0] * len(HISTOGRAM_FIELDS)
    for ms in durations:
        counts[duration_bucket(ms)] += 1

    thresholds = slow_call_thresholds(owner, now=now)

    assert thresholds == {"gpt-4o": histogram_percentile(tuple(counts), 0.95)}
    assert slow_call_thresholds(owner, models={"rare-model"}, now=now) == {}
    staff_view = slow_call_thresholds(StaffUserFactory(), models={"gpt-4o"}, now=now)
    assert staff_view["gpt-4o"] > thresholds["gpt-4o"]  # the other account's slow calls count

    # Kept for SLOW_CACHE_SECONDS per scope: new calls show after that.
    ingest_calls(calls(mine, "gpt-4o", [90_000] * 50, timedelta(hours=1)))
    assert slow_call_thresholds(owner, now=now) == thresholds
    cache.clear()
    assert slow_call_thresholds(owner, now=now)["gpt-4o"] > thresholds["gpt-4o"]
