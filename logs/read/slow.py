"""Slow for that model: slower than the model's p95 duration over the last
SLOW_WINDOW_DAYS whole UTC days and today, within what the user may see, once
the model has at least SLOW_MIN_CALLS calls there (a p95 of a handful of calls
says nothing). Whole days so the daily rollups answer it: one small query."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.utils import timezone

from accounts.models import Account
from accounts.scoping import visible_account_ids
from logs.models import (
    PendingRollupDelta,
)
from logs.periods import (
    DAY,
)
from logs.read.filters import CallFilters, dimensions_needed, filter_rollups
from logs.read.planner import answering_level
from logs.read.snapshot import consistent_read
from logs.read.stats import merge_stats_rows, rollup_stats

if TYPE_CHECKING:
    from accounts.scoping import User


SLOW_WINDOW_DAYS = 7


SLOW_QUANTILE = 0.95


SLOW_MIN_CALLS = 20


# A week's p95 moves slowly: each scope's answer is kept this long (Django's
# cache), so paging through a list asks the rollups once.
SLOW_CACHE_SECONDS = 300


def slow_call_thresholds(
    user: User,
    *,
    account: Account | None = None,
    models: Iterable[str] | None = None,
    now: datetime | None = None,
) -> dict[str, float]:
    """{model: p95 duration in ms} for ``models`` (all if None) that have enough calls."""
    today = DAY.floor(now or timezone.now())
    wanted = sorted(models) if models is not None else None
    scope = visible_account_ids(user, account=account)
    cache_key = (
        "slow-call-thresholds:"
        + hashlib.sha256(repr((scope, wanted, today.isoformat())).encode()).hexdigest()
    )
    cached = cache.get(cache_key)
    if cached is not None:
        return cached
    level = answering_level(DAY, dimensions_needed(user, account, CallFilters(), ("model",)))
    since = today - timedelta(days=SLOW_WINDOW_DAYS)
    rollups = filter_rollups(level, user, account, CallFilters()).filter(day__gte=since)
    pending = filter_rollups(PendingRollupDelta, user, account, CallFilters()).filter(
        quarter__gte=since
    )
    if wanted is not None:
        rollups = rollups.filter(model__in=wanted)
        pending = pending.filter(model__in=wanted)
    thresholds = {}
    with consistent_read():
        rows = rollup_stats(rollups, None, "model") + rollup_stats(pending, None, "model")
    for row in merge_stats_rows(rows):
        p95 = row.duration_percentile(SLOW_QUANTILE)
        if row.key and row.calls >= SLOW_MIN_CALLS and p95 is not None:
            thresholds[row.key] = p95
    cache.set(cache_key, thresholds, SLOW_CACHE_SECONDS)
    return thresholds
