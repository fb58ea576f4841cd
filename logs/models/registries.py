"""Small registries ingest keeps so filter choices never scan the calls table."""

from __future__ import annotations

from django.db import models

from accounts.models import Account, Group


class AccountModel(models.Model):
    """Which models an account has called, kept by ingest.

    Filter choices and autocomplete read this small table instead of running
    SELECT DISTINCT over millions of calls.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=128)
    first_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "model"], name="account_model_uniq")
        ]
        indexes = [models.Index(fields=["model"], name="account_model_model_idx")]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.model}"


class AccountGroup(models.Model):
    """Which pricing groups an account's calls were made in, kept by ingest.

    A key can move to another group; its old calls keep the group they were
    made in, and the owner must still be able to filter on it.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+")
    first_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "group"], name="account_group_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.group_id}"


class AccountTag(models.Model):
    """Which tags an account's calls carried, kept by ingest (filter choices)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    tag = models.CharField(max_length=64)
    first_seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "tag"], name="account_tag_uniq")]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.tag}"


class AccountEndUser(models.Model):
    """Which end users an account's calls named, kept by ingest (filter choices).
    An account may have many: the filter offers the first few by name and
    accepts any of them (``logs.read.scope.end_user_seen``)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    end_user = models.CharField(max_length=128)
    first_seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "end_user"], name="account_end_user_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.end_user}"
