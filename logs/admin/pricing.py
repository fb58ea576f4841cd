"""The price list in the staff admin (not on the portal: prices are the
operator's). Editing a price changes no stored cost: calls keep the basis
they were computed with."""

from __future__ import annotations

from django.contrib import admin

from logs.models import ModelPrice


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = (
        "model",
        "group_name",
        "valid_from",
        "input_per_million",
        "cached_input_per_million",
        "cache_write_per_million",
        "output_per_million",
    )
    list_filter = ("group",)
    search_fields = ("model",)
    ordering = ("model", "group__name", "-valid_from")
    list_select_related = ("group",)
    fieldsets = (
        (None, {"fields": ("model", "group", "valid_from")}),
        (
            "USD per million tokens",
            {
                "fields": (
                    "input_per_million",
                    "cached_input_per_million",
                    "cache_write_per_million",
                    "output_per_million",
                ),
                "description": "Reasoning tokens are billed as output. The call's group "
                "ratio multiplies these prices.",
            },
        ),
    )

    @admin.display(description="Group", ordering="group__name")
    def group_name(self, price: ModelPrice) -> str:
        return price.group.name if price.group_id else "every group"
