"""What the migrations need of the project's code, frozen as it was when they
were written, so later changes to the live code cannot change what an old
migration does. Never edit this to follow the live code; a migration that needs
something new gets its own copy. (Django's migration loader skips modules whose
names start with "_": this one is not a migration.)

``FixedDecimalField`` is ``logs.models.fields.FixedDecimalField`` as it was
when it was frozen here (with migration 0014): a ``Decimal`` with a fixed number of places, stored as a scaled
integer, with the same conversions both ways (the data migrations that run on
SQLite read and write these columns through it). It deconstructs to the live
field's path so that ``makemigrations`` compares the migrations' state with
the models as one field, not two.
"""

from decimal import Decimal

from django.core import exceptions
from django.db import models

LIVE_FIXED_DECIMAL_FIELD = "logs.models.fields.FixedDecimalField"


class FixedDecimalField(models.BigIntegerField):
    def __init__(self, *args, decimal_places: int, **kwargs):
        self.decimal_places = decimal_places
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, _, args, kwargs = super().deconstruct()
        kwargs["decimal_places"] = self.decimal_places
        return name, LIVE_FIXED_DECIMAL_FIELD, args, kwargs

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return Decimal(value).scaleb(-self.decimal_places)

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
