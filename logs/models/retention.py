"""Which calls were pruned, and up to when (``PruneRun``)."""

from __future__ import annotations

from django.db import models


class PruneRun(models.Model):
    """One run of ``prune_calls``: no call received before ``cutoff`` is kept.

    Rollups outlive the raw calls, so the rollups alone cannot say which calls
    still exist. The call list counts (and pages through) calls from rollups;
    it reads the latest cutoff here so it never promises pages of pruned calls.
    Written by ``logs.retention.prune.prune_calls`` once every call before the cutoff
    is gone (a run that fails halfway leaves no row; running it again does).
    """

    cutoff = models.DateTimeField(db_index=True)
    ran_at = models.DateTimeField()
    partitions_dropped = models.JSONField(default=list, blank=True)
    calls_deleted = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "prune run"
        ordering = ["-ran_at", "-id"]

    def __str__(self) -> str:
        return f"calls before {self.cutoff:%Y-%m-%d %H:%M} removed at {self.ran_at:%Y-%m-%d %H:%M}"
