"""The request ids a batch is storing right now (PostgreSQL only; see
logs.ingest.idempotency.claim_request_ids). Unlogged: it is empty between
batches, so a crash loses nothing. No model: nothing reads it."""

from django.db import migrations

TABLE = "logs_requestidclaim"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE UNLOGGED TABLE {TABLE} (request_id varchar(128) PRIMARY KEY)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP TABLE IF EXISTS {TABLE}")


class Migration(migrations.Migration):
    # The lead linearizes the numbering on merge: this follows whatever is last.
    dependencies = [("logs", "0017_import_runs")]

    operations = [migrations.RunPython(create, drop)]
