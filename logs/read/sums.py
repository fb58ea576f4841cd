"""Summing measures in a read: over raw calls (each measure's ORM aggregate)
or over rollup rows (each measure's column), named alike, so totals and stats
add up pieces of either kind without caring which they came from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from django.db import connection
from django.db.models import Q, Sum
from django.db.models.functions import Cast

from logs.models import RollupMeasures, StatusClass
from logs.models.measures import BY_NAME, ERRORS, raw_aggregates

PREFIX = "agg_"  # an aggregate may not share a field's name


def raw_sums(names: Iterable[str]) -> dict:
    """Aggregates of raw calls for ``names``, keyed ``agg_<name>``."""
    return raw_aggregates(tuple(names), prefix=PREFIX)


def rollup_sums(level: type[RollupMeasures], names: Iterable[str]) -> dict:
    """Aggregates of ``level``'s rows for ``names``, keyed ``agg_<name>``."""
    return {
        f"{PREFIX}{name}": errors_sum(level) if name == ERRORS.name else bigint_sum(name, level)
        for name in names
    }


def errors_sum(level: type[RollupMeasures]) -> Sum:
    """Calls with an error status: summaries count them, full levels have the class."""
    if ERRORS.name in level.MEASURES:
        return Sum(ERRORS.name)
    return Sum("calls", filter=~Q(status_class=StatusClass.SUCCESS))


def bigint_sum(name: str, level: type[RollupMeasures]) -> Sum | Cast:
    """SUM of a rollup column, as a 64-bit integer on PostgreSQL.

    PostgreSQL sums bigints as numeric, which the driver reads as Decimal and
    Django then converts: 28 columns of 720 rows for a month per hour. Every
    measure is an integer count or stored units, and a month of them is far
    from 2**63."""
    total = Sum(name)
    if connection.vendor != "postgresql":
        return total
    return Cast(total, output_field=level._meta.get_field(name))


def read_sums(row: Mapping, names: Iterable[str]) -> dict[str, int | Decimal]:
    """``{name: sum}`` from an aggregate row; a sum over no rows is zero."""
    return {name: row[f"{PREFIX}{name}"] or _zero(name) for name in names}


def _zero(name: str) -> int | Decimal:
    measure = BY_NAME.get(name)
    return measure.zero if measure is not None else 0
