"""Calls by tag: ``CallRecord.objects.filter(tags__has_tag="x")``.

A call's tags are a JSON list of strings. Django's ``contains`` on a JSONField
works on PostgreSQL only, so the one question asked of tags ("does the list
hold this string?") is a lookup of its own, spelled in each database's JSON
SQL. It is registered on the ``tags`` field alone (Field.register_lookup on an
instance), so other JSON fields are untouched.
"""

from __future__ import annotations

import json

from django.db import NotSupportedError
from django.db.models import Lookup


class HasTag(Lookup):
    lookup_name = "has_tag"
    # The tag is a plain string, not JSON to be dumped by the field.
    prepare_rhs = False

    def _tag(self) -> str:
        if not isinstance(self.rhs, str):
            raise TypeError(f"has_tag takes a string, got {type(self.rhs).__name__}")
        return self.rhs

    def as_sql(self, compiler, connection):
        raise NotSupportedError(f"has_tag is not implemented on {connection.vendor}")

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        # jsonb containment: the list holds this string as an element; a GIN
        # index on the column could answer it.
        return f"{lhs} @> %s::jsonb", [*lhs_params, json.dumps([self._tag()])]

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return (
            f"EXISTS (SELECT 1 FROM json_each({lhs}) AS tag "
            "WHERE tag.type = 'text' AND tag.value = %s)",
            [*lhs_params, self._tag()],
        )
