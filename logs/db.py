"""Talking to PostgreSQL in bulk: array literals, unnest inserts, and several
statements in one round trip. Shared by ingest and the rollups."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection


def execute_together(cursor, statements: list[tuple[str, list]]) -> None:
    """Run statements in order, in one round trip where the driver allows it
    (client-side parameter binding, Django's default for psycopg 3)."""
    if connection.settings_dict.get("OPTIONS", {}).get("server_side_binding"):
        for sql, params in statements:
            cursor.execute(sql, params)
        return
    cursor.execute(
        ";\n".join(sql for sql, _ in statements),
        [param for _, params in statements for param in params],
    )


def pg_array_literal(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal of ``values`` (text form, every element quoted),
    to pass as one string parameter: far cheaper to build than psycopg's
    element-by-element list adaptation."""
    return (
        '{"' + '","'.join(str(v).replace("\\", "\\\\").replace('"', '\\"') for v in values) + '"}'
    )


def pg_int_array_literal(values: Iterable[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def unnest_insert_sql(table: str, columns: list[str], types: list[str]) -> str:
    quote = connection.ops.quote_name
    arrays = ", ".join(f"%s::{db_type}[]" for db_type in types)
    names = ", ".join(quote(column) for column in columns)
    return f"INSERT INTO {quote(table)} ({names}) SELECT * FROM unnest({arrays})"
