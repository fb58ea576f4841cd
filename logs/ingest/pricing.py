"""Costs for records sent without one: from the price list in force at each
call's time (``logs.pricing``), or a problem naming ``cost``."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from logs.ingest.errors import RecordError
from logs.ingest.idempotency import Resolved
from logs.models import ModelPrice
from logs.pricing.costs import cache_savings, cost_from_prices, price_in_force, token_kinds


def price_calls(resolved: list[Resolved], max_cost: Decimal) -> list[RecordError]:
    """Fill in the cost and its basis of every call that came without a cost,
    and what the prompt cache saved for every call that read from it (0 when
    no price is in force); the problems of the calls without a cost that
    cannot be priced ("cost": no price in force)."""
    wanted = [
        (call, group)
        for call, _, group in resolved
        if call.cost is None or call.cached_input_tokens
    ]
    if not wanted:
        return []
    by_model: dict[str, list[ModelPrice]] = defaultdict(list)
    for price in ModelPrice.objects.filter(
        model__in={call.model for call, _ in wanted}
    ).select_related("group"):
        by_model[price.model].append(price)
    errors = []
    for call, group in wanted:
        price = price_in_force(by_model[call.model], call.model, group.pk, call.created_at)
        if price is not None and call.cached_input_tokens:
            call.cache_savings = cache_savings(call.cached_input_tokens, price, group)
        if call.cost is not None:
            continue
        if price is None:
            errors.append(
                RecordError(
                    call.index,
                    "cost",
                    f"no price for model {call.model!r} at {call.created_at.isoformat()} "
                    f"(group {group.name!r}): send the cost, or add a price for the model "
                    "to the price list",
                )
            )
            continue
        tokens = token_kinds(
            call.input_tokens, call.output_tokens, call.cached_input_tokens, call.cache_write_tokens
        )
        cost, basis = cost_from_prices(tokens, price, group)
        if cost >= max_cost:
            errors.append(
                RecordError(
                    call.index,
                    "cost",
                    f"computed from the price list, {cost:f}, which is not below {max_cost:,f}",
                )
            )
            continue
        call.cost = cost
        call.cost_basis = basis
    return errors
