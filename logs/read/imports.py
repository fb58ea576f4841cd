"""Import runs as staff read them (the ``ImportRun`` admin page)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from logs.models import ImportRun
from logs.models.imports import QUIET_AFTER


def in_state(runs: QuerySet[ImportRun], state: str, now: datetime) -> QuerySet[ImportRun]:
    """The runs whose ``ImportRun.state(now)`` is ``state`` (the same rule, in SQL)."""
    unfinished = Q(finished_at__isnull=True)
    not_stopped = Q(stopped_by="")
    if state == ImportRun.FINISHED:
        return runs.filter(finished_at__isnull=False)
    if state == ImportRun.STOPPED:
        return runs.filter(unfinished & ~not_stopped)
    if state == ImportRun.RUNNING:
        return runs.filter(unfinished & not_stopped, updated_at__gt=now - QUIET_AFTER)
    if state == ImportRun.INTERRUPTED:
        return runs.filter(unfinished & not_stopped, updated_at__lte=now - QUIET_AFTER)
    raise ValueError(f"no such state: {state!r}")
