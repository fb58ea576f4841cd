"""The cost of a call from the price list (``ModelPrice``) and its group's ratio.

    cost = (uncached input * input price + cached input * cached-input price
            + cache writes * cache-write price + output * output price) / 1,000,000
           * the group's price ratio

Uncached input is the input less its cached and cache-write parts; reasoning
tokens are part of the output and billed as output. Decimal arithmetic
throughout, exact until the one rounding, of the final amount to the 8 places a
cost is stored with (half up). The call keeps what was used (``cost_basis``):
the price row, its prices, the ratio, the tokens of each kind and the exact
amount before rounding.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import TYPE_CHECKING, Any

from logs.models import COST_DECIMAL_PLACES, ModelPrice

if TYPE_CHECKING:
    from accounts.models import Group

MILLION = Decimal(1_000_000)


COST_QUANTUM = Decimal(1).scaleb(-COST_DECIMAL_PLACES)


# Enough digits for 2**31 tokens of each kind at any stored price times any
# ratio, exactly: nothing is rounded before the end.
_EXACT = Context(prec=80)


# (kind in a cost basis, the ModelPrice field, a label for people)
KINDS = (
    ("input", "input_per_million", "input"),
    ("cached_input", "cached_input_per_million", "cached input"),
    ("cache_write", "cache_write_per_million", "cache write"),
    ("output", "output_per_million", "output"),
)


def price_in_force(
    prices: Iterable[ModelPrice], model: str, group_id: int, moment: datetime
) -> ModelPrice | None:
    """The price of ``model`` for a call of group ``group_id`` at ``moment``: the
    group's own latest price from at or before then, else the latest price for
    every group; None when neither exists."""
    own = every = None
    for price in prices:
        if price.model != model or price.valid_from > moment:
            continue
        if price.group_id == group_id:
            if own is None or price.valid_from > own.valid_from:
                own = price
        elif price.group_id is None and (every is None or price.valid_from > every.valid_from):
            every = price
    return own or every


def token_kinds(
    input_tokens: int, output_tokens: int, cached_input_tokens: int, cache_write_tokens: int
) -> dict[str, int]:
    """The tokens of each billed kind (they add up to input + output)."""
    return {
        "input": input_tokens - cached_input_tokens - cache_write_tokens,
        "cached_input": cached_input_tokens,
        "cache_write": cache_write_tokens,
        "output": output_tokens,
    }


def cost_from_prices(
    tokens: dict[str, int], price: ModelPrice, group: Group
) -> tuple[Decimal, dict[str, Any]]:
    """The cost of ``tokens`` (by kind) at ``price`` for ``group``, and its basis."""
    per_million = {kind: getattr(price, field) for kind, field, _ in KINDS}
    with localcontext(_EXACT):
        base = (
            sum((Decimal(tokens[kind]) * per_million[kind] for kind, _, _ in KINDS), Decimal(0))
            / MILLION
        )
        exact = base * group.price_ratio
        cost = exact.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)
    basis = {
        "price_id": price.pk,
        "model": price.model,
        "price_group": price.group.name if price.group_id else None,
        "valid_from": price.valid_from.isoformat(),
        "per_million": {kind: str(value) for kind, value in per_million.items()},
        "tokens": dict(tokens),
        "group": group.name,
        "price_ratio": str(group.price_ratio),
        "exact": format(exact.normalize(_EXACT), "f"),
    }
    return cost, basis


def cache_savings(cached_input_tokens: int, price: ModelPrice, group: Group) -> Decimal:
    """What reading ``cached_input_tokens`` from the cache saved against paying
    them as uncached input: tokens x (input price - cached-input price) / 1e6 x
    the group's ratio, rounded like a cost. Never below 0: a cached price above
    the input price is a saving of nothing, not a loss to sum."""
    difference = max(price.input_per_million - price.cached_input_per_million, Decimal(0))
    with localcontext(_EXACT):
        exact = Decimal(cached_input_tokens) * difference / MILLION * group.price_ratio
        return exact.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)
