"""Room on every rollup page for the updates ingest makes.

Ingest adds to the rows of the current hour, day and month again and again.
With each page only 80% full, PostgreSQL can write the new version of a row
on the same page without touching any index (a HOT update): the unique index
over seven dimensions and the others are then left alone. Pages written from
now on get the room; ``VACUUM FULL`` on a table gives it to the old ones too.
"""

from django.db import migrations

TABLES = (
    "logs_callrollup",
    "logs_dailycallrollup",
    "logs_monthlycallrollup",
    "logs_dailymodelrollup",
    "logs_dailyaccountmodelrollup",
    "logs_dailykeyrollup",
)


def set_fillfactor(fillfactor):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in TABLES:
            schema_editor.execute(
                f"ALTER TABLE {schema_editor.quote_name(table)} SET (fillfactor = {fillfactor})"
            )

    return apply


class Migration(migrations.Migration):
    dependencies = [("logs", "0006_daily_summaries")]

    operations = [migrations.RunPython(set_fillfactor(80), set_fillfactor(100))]
