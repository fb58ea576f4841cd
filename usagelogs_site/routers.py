"""Send reads of call data to PostgreSQL read replicas (DATABASE_REPLICA_URLS).

List pages, exports, stats and the API read millions of rows; replicas carry
that load while the primary takes ingest. Writes always go to the primary, and
so does every read made inside a transaction on it (the ingest service's
"is this request id new?" check must see its own writes, never a lagging copy).
Auth, sessions and accounts stay on the primary: they are small, and a login
must see a password change at once.
"""

import random

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from logs.read.snapshot import pinned_read_alias

REPLICATED_APPS = frozenset({"logs"})


class ReadReplicaRouter:
    def db_for_read(self, model, **hints):
        replicas = getattr(settings, "DATABASE_REPLICAS", [])
        if not replicas or model._meta.app_label not in REPLICATED_APPS:
            return None
        pinned = pinned_read_alias()
        if pinned is not None:
            # Inside consistent_read: every read of one block on one database.
            return pinned
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        return random.choice(replicas)

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # Replicas get the schema by replication, never by migrate.
        return db == DEFAULT_DB_ALIAS
