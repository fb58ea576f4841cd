"""Imports of call history from another gateway's records (``ImportRun``)."""

from __future__ import annotations

from django.db import models


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

    class Meta:
        verbose_name = "import run"
        constraints = [
            models.UniqueConstraint(fields=["kind", "location"], name="importrun_source_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.kind} import of {self.location}"
