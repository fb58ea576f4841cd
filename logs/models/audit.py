"""Who read customers' calls (``AccessRecord``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AccessRecord(models.Model):
    """Reading customers' prompts is itself recorded.

    One row per opening of a call's detail (with its payload) and per export,
    on any surface. Written by ``logs.audit.record_access``; never edited.
    ``call_id`` is a plain number, not a foreign key: only CallPayload refers to
    calls, so old calls can be pruned (or partitions dropped) while the record
    of who read them stays.
    """

    class Action(models.TextChoices):
        VIEW_CALL = "view_call", "Viewed a call"
        EXPORT = "export", "Exported calls"

    class Surface(models.TextChoices):
        ADMIN = "admin", "Staff admin"
        PORTAL = "portal", "Portal"
        API = "api", "REST API"

    at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    username = models.CharField(max_length=150, help_text="Kept if the user is deleted.")
    action = models.CharField(max_length=16, choices=Action.choices)
    surface = models.CharField(max_length=16, choices=Surface.choices)
    call_id = models.BigIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    row_count = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["user", "-at"], name="access_user_at_idx")]

    def __str__(self) -> str:
        return f"{self.username} {self.get_action_display().lower()} at {self.at:%Y-%m-%d %H:%M}"
