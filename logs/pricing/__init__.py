"""Costs from the price list (``logs.models.ModelPrice``), computed exactly.

Pure computation: ingest (``logs.ingest.pricing``) applies it to records sent
without a cost, the pages explain stored costs with it."""

from logs.pricing.costs import KINDS, cache_savings, cost_from_prices, price_in_force, token_kinds

__all__ = ["KINDS", "cache_savings", "cost_from_prices", "price_in_force", "token_kinds"]
