"""Exact money: decimals stored as scaled integers (``FixedDecimalField``)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core import exceptions
from django.db import models

USAGE_DECIMAL_PLACES = 6


COST_DECIMAL_PLACES = 8


def to_units(value: Decimal, places: int) -> int:
    """A decimal with at most ``places`` places as the integer a FixedDecimalField stores."""
    return int(value.scaleb(places))


def from_units(units: int, places: int) -> Decimal:
    """The Decimal a FixedDecimalField reads from its stored integer (exponent ``-places``)."""
    return Decimal(units).scaleb(-places)


class FixedDecimalField(models.BigIntegerField):
    """A ``Decimal`` with a fixed number of places, stored as a scaled integer.

    SQLite keeps DECIMAL columns as floating point, so its SUM drifts; integer
    SUM is exact on every database (and faster than NUMERIC on PostgreSQL).
    Python code only ever sees ``Decimal``: values, filters and aggregates
    (``Sum`` keeps this field as its output field) are converted both ways.
    """

    def __init__(self, *args, decimal_places: int, **kwargs):
        self.decimal_places = decimal_places
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["decimal_places"] = self.decimal_places
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return from_units(value, self.decimal_places)

    def to_python(self, value):
        if value is None or isinstance(value, Decimal):
            return value
        try:
            return Decimal(str(value))
        except ArithmeticError as exc:
            raise exceptions.ValidationError(f"{value!r} is not a decimal number") from exc

    def get_prep_value(self, value):
        if value is None:
            return None
        scaled = self.to_python(value).scaleb(self.decimal_places)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than {self.decimal_places} decimal places")
        return int(scaled)

    def formfield(self, **kwargs):
        return forms.DecimalField(decimal_places=self.decimal_places, **kwargs)

    def value_to_string(self, obj):
        value = self.value_from_object(obj)
        return "" if value is None else str(value)
