"""The price list: what a model's tokens cost, per million, from a moment on.

When a record comes without a cost, ingest computes it from the price in force
at the call's time (``logs.pricing``) and keeps a snapshot of what it used on
the call (``CallRecord.cost_basis``): editing the list later changes no stored
cost."""

from __future__ import annotations

from django.db import models

from accounts.models import Group
from logs.models.fields import FixedDecimalField

# Prices per million tokens, exact to a millionth of a dollar.
PRICE_DECIMAL_PLACES = 6


class ModelPrice(models.Model):
    """Prices of one model (for one group, or for every group) from ``valid_from``
    until the next price of the same model and group. A group's own price wins
    over the price for every group; the group's ``price_ratio`` multiplies either."""

    model = models.CharField(max_length=128)
    group = models.ForeignKey(
        Group,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only for this group's calls; empty: every group without a price of its own.",
    )
    valid_from = models.DateTimeField(help_text="In force for calls made at or after this time.")
    input_per_million = FixedDecimalField(
        decimal_places=PRICE_DECIMAL_PLACES, help_text="USD per million uncached input tokens."
    )
    cached_input_per_million = FixedDecimalField(
        decimal_places=PRICE_DECIMAL_PLACES,
        help_text="USD per million input tokens read from the prompt cache.",
    )
    cache_write_per_million = FixedDecimalField(
        decimal_places=PRICE_DECIMAL_PLACES,
        help_text="USD per million input tokens written to the prompt cache.",
    )
    output_per_million = FixedDecimalField(
        decimal_places=PRICE_DECIMAL_PLACES,
        help_text="USD per million output tokens (reasoning tokens included).",
    )

    class Meta:
        ordering = ["model", "group__name", "-valid_from"]
        verbose_name = "model price"
        constraints = [
            models.UniqueConstraint(
                fields=["model", "group", "valid_from"], name="model_price_uniq"
            ),
            # The price for every group: one per model and moment (NULLs are distinct).
            models.UniqueConstraint(
                fields=["model", "valid_from"],
                condition=models.Q(group__isnull=True),
                name="model_price_every_group_uniq",
            ),
            models.CheckConstraint(
                condition=models.Q(input_per_million__gte=0)
                & models.Q(cached_input_per_million__gte=0)
                & models.Q(cache_write_per_million__gte=0)
                & models.Q(output_per_million__gte=0),
                name="model_price_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["model", "valid_from"], name="model_price_lookup_idx")]

    def __str__(self) -> str:
        whose = self.group.name if self.group_id else "every group"
        return f"{self.model} ({whose}) from {self.valid_from:%Y-%m-%d %H:%M}"
