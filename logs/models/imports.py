"""Imports of call history from another gateway's records (``ImportRun``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models

# A run not finished whose row has not moved for this long is no longer
# running: it was interrupted (Ctrl-C, a crash) and resumes when run again.
# Batches record progress every few seconds, even on a loaded machine.
QUIET_AFTER = timedelta(minutes=10)


class ImportRun(models.Model):
    """Where an import of one source stands: its resume checkpoint and counts.

    One row per source (``kind`` and ``location``: a file's path, or a database
    URL without its password, with the table). ``checkpoint`` is the position of
    the last source row whose batch is committed (a row id, or a row number in a
    dump); running the same import again reads on from there. Calls carry their
    source row's id as request id, so a batch committed after the checkpoint was
    last written is only read again, never imported twice.

    Imports write calls without rollup deltas and rebuild the rollups of the
    range they touched at the end; ``rollups_from``/``rollups_to`` keep that
    range until it is rebuilt, so a run that stopped has it rebuilt by the next.

    On PostgreSQL, a month whose partition was missing or empty when the run
    first wrote to it is loaded into a table of its own without indexes
    (``staged``, by month), indexed and attached once the source is read
    (``logs.imports.staging``). Batches are then written by several workers
    out of order; each records its place in ``ahead`` in its own transaction,
    so a rerun after a crash skips the batches committed beyond the checkpoint
    (read again with the same ``batch_size``) instead of judging their calls.
    """

    kind = models.CharField(max_length=16)
    location = models.CharField(max_length=500)
    checkpoint = models.JSONField(null=True, blank=True)
    imported = models.PositiveBigIntegerField(default=0)
    already_present = models.PositiveBigIntegerField(default=0)
    refused = models.PositiveBigIntegerField(default=0)
    skipped = models.JSONField(default=dict, blank=True)
    rollups_from = models.DateTimeField(null=True, blank=True)
    rollups_to = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # Why the last run stopped before the end (a bad row, without --skip-bad).
    stopped_by = models.TextField(blank=True, default="")
    staged = models.JSONField(default=list, blank=True)
    ahead = models.JSONField(default=list, blank=True)
    batch_size = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "import run"
        constraints = [
            models.UniqueConstraint(fields=["kind", "location"], name="importrun_source_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.kind} import of {self.location}"

    FINISHED, STOPPED, RUNNING, INTERRUPTED = "finished", "stopped", "running", "interrupted"
    STATES = (FINISHED, STOPPED, RUNNING, INTERRUPTED)

    def state(self, now: datetime) -> str:
        """finished; stopped by a bad row; running (moved within QUIET_AFTER);
        or interrupted. ``logs.read.imports.in_state`` filters by the same rule."""
        if self.finished_at is not None:
            return self.FINISHED
        if self.stopped_by:
            return self.STOPPED
        if now - self.updated_at < QUIET_AFTER:
            return self.RUNNING
        return self.INTERRUPTED

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def rows_read(self) -> int:
        """Source rows the run has been through: imported, present, skipped, refused."""
        return self.imported + self.already_present + self.refused + self.skipped_total

    @property
    def rate(self) -> float | None:
        """Source rows a second, from the start to the last batch (or the end)."""
        seconds = ((self.finished_at or self.updated_at) - self.started_at).total_seconds()
        return self.rows_read / seconds if seconds > 0 else None
