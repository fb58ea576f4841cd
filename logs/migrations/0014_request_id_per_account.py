"""Request ids unique per account; every key of the call and payload tables
includes the account, so both can be distributed by account_id as they are.

- ``CallPayload.account``: the call's account, copied from it.
- Calls: ``request_id`` is no longer unique on its own. The model state now
  says what PostgreSQL has had since 0002 (a unique key with created_at,
  which a partitioned table needs), with the account added: unique
  (request_id, account_id, created_at). SQLite gets the same constraint.
- PostgreSQL only (the ORM knows only ``id`` and ``call`` as primary keys):
  primary keys (id, created_at) and (call_id, created_at) become
  (id, created_at, account_id) and (call_id, created_at, account_id).

Rebuilding the keys takes an ACCESS EXCLUSIVE lock and re-indexes every
partition (tens of seconds at 10 M calls).
"""

import django.db.models.deletion
from django.db import migrations, models

CALLS, PAYLOADS = "logs_callrecord", "logs_callpayload"

OLD_UNIQUE, NEW_UNIQUE = "call_request_id_created_uniq", "call_request_id_account_uniq"

# (table, primary key columns before, after)
PRIMARY_KEYS = (
    (CALLS, ("id", "created_at"), ("id", "created_at", "account_id")),
    (PAYLOADS, ("call_id", "created_at"), ("call_id", "created_at", "account_id")),
)


def copy_payload_accounts(apps, schema_editor):
    execute = schema_editor.execute
    if schema_editor.connection.vendor == "postgresql":
        execute(
            f"UPDATE {PAYLOADS} p SET account_id = c.account_id FROM {CALLS} c "
            "WHERE c.id = p.call_id AND c.created_at = p.created_at"
        )
    else:
        execute(
            f"UPDATE {PAYLOADS} SET account_id = (SELECT c.account_id FROM {CALLS} c "
            f"WHERE c.id = {PAYLOADS}.call_id)"
        )
    # A payload whose call is gone can be reached by nothing (payloads are
    # read through their call); it cannot get an account either.
    execute(f"DELETE FROM {PAYLOADS} WHERE account_id IS NULL")


def _replace_primary_key(schema_editor, table: str, columns: tuple[str, ...]) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'p' AND conrelid = %s::regclass",
            [table],
        )
        (name,) = cursor.fetchone()
    quoted = ", ".join(schema_editor.quote_name(c) for c in columns)
    schema_editor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    schema_editor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_pkey" PRIMARY KEY ({quoted})')


def postgresql_keys_per_account(schema_editor) -> None:
    for table, _, after in PRIMARY_KEYS:
        _replace_primary_key(schema_editor, table, after)
    schema_editor.execute(f'ALTER TABLE "{CALLS}" DROP CONSTRAINT "{OLD_UNIQUE}"')
    schema_editor.execute(
        f'ALTER TABLE "{CALLS}" ADD CONSTRAINT "{NEW_UNIQUE}" '
        'UNIQUE ("request_id", "account_id", "created_at")'
    )


def postgresql_keys_as_before(schema_editor) -> None:
    schema_editor.execute(f'ALTER TABLE "{CALLS}" DROP CONSTRAINT "{NEW_UNIQUE}"')
    schema_editor.execute(
        f'ALTER TABLE "{CALLS}" ADD CONSTRAINT "{OLD_UNIQUE}" UNIQUE ("request_id", "created_at")'
    )
    for table, before, _ in PRIMARY_KEYS:
        _replace_primary_key(schema_editor, table, before)


class StateHereSQLOnPostgreSQL(migrations.SeparateDatabaseAndState):
    """The state operations, applied to the database as they are, except on
    PostgreSQL: its partitioned tables got their keys in raw SQL (0002), so
    they are changed in raw SQL there too."""

    def __init__(self, state_operations, postgresql_forwards, postgresql_backwards):
        super().__init__(database_operations=state_operations, state_operations=state_operations)
        self.postgresql_forwards = postgresql_forwards
        self.postgresql_backwards = postgresql_backwards

    def deconstruct(self):
        return (
            self.__class__.__qualname__,
            [],
            {
                "state_operations": self.state_operations,
                "postgresql_forwards": self.postgresql_forwards,
                "postgresql_backwards": self.postgresql_backwards,
            },
        )

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            self.postgresql_forwards(schema_editor)
        else:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            self.postgresql_backwards(schema_editor)
        else:
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("logs", "0013_hourly_call_rollup"),
    ]

    operations = [
        migrations.AddField(
            model_name="callpayload",
            name="account",
            field=models.ForeignKey(
                null=True,
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="accounts.account",
            ),
        ),
        migrations.RunPython(copy_payload_accounts, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="callpayload",
            name="account",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="accounts.account",
            ),
        ),
        StateHereSQLOnPostgreSQL(
            state_operations=[
                migrations.AlterField(
                    model_name="callrecord",
                    name="request_id",
                    field=models.CharField(max_length=128),
                ),
                migrations.AddConstraint(
                    model_name="callrecord",
                    constraint=models.UniqueConstraint(
                        fields=("request_id", "account", "created_at"),
                        name=NEW_UNIQUE,
                    ),
                ),
            ],
            postgresql_forwards=postgresql_keys_per_account,
            postgresql_backwards=postgresql_keys_as_before,
        ),
    ]
