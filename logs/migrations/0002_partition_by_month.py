"""Partition the calls and payload tables by month of created_at (PostgreSQL only).

Django created both as plain tables in 0001. Here, on PostgreSQL, each is
rebuilt as a table partitioned by range of created_at with the same columns;
existing rows are copied over. Primary keys become (id, created_at) and
(call_id, created_at) because a partitioned table's keys must include the
partition column; request ids are unique per (request_id, created_at), and
the ingest service checks them across months. Other databases are unchanged.
"""

from datetime import UTC, date, datetime

from django.db import migrations

# Partitions as logs.retention.partitions made them when this was written, frozen
# here so later changes to that module cannot change what this migration does.
PARTITIONED_TABLES = ("logs_callrecord", "logs_callpayload")
MONTHS_AHEAD = 3


def month_of(moment: datetime) -> date:
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    return month.replace(year=month.year + month.month // 12, month=month.month % 12 + 1)


def create_partitions(months: set[date], schema_editor) -> None:
    """The monthly partitions of both tables for ``months``, this month and
    the MONTHS_AHEAD months after the latest (the tables are new: none exist)."""
    wanted = {*months, month_of(datetime.now(UTC))}
    latest = max(wanted)
    for _ in range(MONTHS_AHEAD):
        latest = next_month(latest)
        wanted.add(latest)
    for month in sorted(wanted):
        for table in PARTITIONED_TABLES:
            schema_editor.execute(
                f'CREATE TABLE "{table}_p{month:%Y_%m}" PARTITION OF "{table}" '
                f"FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') "
                f"TO ('{next_month(month).isoformat()} 00:00:00+00')"
            )


# Checked at once, not deferred to commit like Django's own: pending deferred
# checks on a partition would block dropping it in the same transaction.
CALL_FOREIGN_KEYS = (
    ("account_id", "accounts_account"),
    ("api_key_id", "accounts_apikey"),
    ("group_id", "accounts_group"),
)


def partition_tables(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    execute = schema_editor.execute
    CallRecord = apps.get_model("logs", "CallRecord")
    CallPayload = apps.get_model("logs", "CallPayload")

    for model, key in ((CallRecord, "id"), (CallPayload, "call_id")):
        table = model._meta.db_table
        execute(f'ALTER TABLE "{table}" RENAME TO "{table}_unpartitioned"')
        execute(
            f'CREATE TABLE "{table}" (LIKE "{table}_unpartitioned" INCLUDING DEFAULTS '
            "INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING STORAGE) "
            'PARTITION BY RANGE ("created_at")'
        )
        execute(f'ALTER TABLE "{table}" ADD PRIMARY KEY ("{key}", "created_at")')

    with connection.cursor() as cursor:
        cursor.execute('SELECT min(created_at), max(created_at) FROM "logs_callrecord_unpartitioned"')
        oldest, newest = cursor.fetchone()
    months = set()
    if oldest is not None:
        month = month_of(oldest)
        while month <= month_of(newest):
            months.add(month)
            month = next_month(month)
    create_partitions(months, schema_editor)

    for model in (CallRecord, CallPayload):
        table = model._meta.db_table
        execute(f'INSERT INTO "{table}" SELECT * FROM "{table}_unpartitioned"')
        execute(f'DROP TABLE "{table}_unpartitioned" CASCADE')

    execute(
        "SELECT setval(pg_get_serial_sequence('logs_callrecord', 'id'), "
        "coalesce((SELECT max(id) FROM logs_callrecord), 0) + 1, false)"
    )
    execute(
        'ALTER TABLE "logs_callrecord" ADD CONSTRAINT "call_request_id_created_uniq" '
        'UNIQUE ("request_id", "created_at")'
    )
    for column, target in CALL_FOREIGN_KEYS:
        execute(
            f'ALTER TABLE "logs_callrecord" ADD CONSTRAINT "call_{column}_fk" '
            f'FOREIGN KEY ("{column}") REFERENCES "{target}" ("id")'
        )
    for index in CallRecord._meta.indexes:
        execute(index.create_sql(CallRecord, schema_editor))


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ("accounts", "0001_initial"),
        ("logs", "0001_initial"),
    ]

    operations = [migrations.RunPython(partition_tables, elidable=False)]
