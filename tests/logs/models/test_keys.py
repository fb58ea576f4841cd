"""Every key of the call and payload tables includes the account, as the
database really has them (introspected, not read off the models), so both
tables can be distributed by account_id (Citus, docs/scaling.md) unchanged."""

from __future__ import annotations

import pytest
from django.db import connection

from logs.models import CallPayload, CallRecord
from logs.retention.partitions import partitions

pytestmark = pytest.mark.django_db

TABLES = (CallRecord._meta.db_table, CallPayload._meta.db_table)
ROW_IDS = {
    CallRecord._meta.db_table: CallRecord._meta.pk.column,
    CallPayload._meta.db_table: CallPayload._meta.pk.column,
}


def keys_of(table: str) -> dict[str, dict]:
    """The primary key and unique constraints (and unique indexes) of ``table``."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name: constraint
        for name, constraint in constraints.items()
        if constraint["primary_key"] or constraint["unique"]
    }


def without_account(table: str) -> list[tuple[str, str, list[str]]]:
    found = []
    for name, key in keys_of(table).items():
        if key["primary_key"] and connection.vendor != "postgresql":
            # SQLite is never sharded; there the primary key is the ORM's own
            # row id (an alias of the rowid). On PostgreSQL the primary keys are
            # composite and must include the account like every other key.
            assert key["columns"] == [ROW_IDS[table]]
            continue
        if "account_id" not in key["columns"]:
            found.append((table, name, key["columns"]))
    return found


def test_every_unique_key_of_calls_and_payloads_includes_the_account():
    assert [problem for table in TABLES for problem in without_account(table)] == []


def test_request_ids_are_unique_per_account_and_time_in_the_database():
    unique = [key["columns"] for key in keys_of(TABLES[0]).values() if not key["primary_key"]]

    assert ["request_id", "account_id", "created_at"] in unique


@pytest.mark.postgres
def test_every_key_of_every_monthly_partition_includes_the_account():
    months = [p for p in partitions() if p.table in TABLES]
    assert {p.table for p in months} == set(TABLES)

    problems = [problem for p in months for problem in without_account(p.name)]

    assert problems == []


@pytest.mark.postgres
def test_the_primary_keys_include_the_account_on_postgresql():
    primary = {
        table: [key["columns"] for key in keys_of(table).values() if key["primary_key"]]
        for table in TABLES
    }

    assert primary == {
        "logs_callrecord": [["id", "created_at", "account_id"]],
        "logs_callpayload": [["call_id", "created_at", "account_id"]],
    }
