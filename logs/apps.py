from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def create_cache_table(using: str, **kwargs) -> None:
    """Make the database cache's table (``CACHES``) whenever ``migrate`` runs.

    Every worker process shares that cache (API throttle counters, slow-call
    thresholds), and with the database backend it lives in a table no migration
    makes. ``createcachetable`` leaves an existing table alone and skips caches
    that are not database caches, so running it after every ``migrate`` is
    safe, and moving from Redis back to the database cache needs nothing more.
    """
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)


def _register_sqlite_functions(sender, connection, **kwargs) -> None:
    """SQL functions Usage Logs' queries use on SQLite (PostgreSQL has them built in)."""
    if connection.vendor != "sqlite":
        return
    from logs.periods import SQLITE_LOCAL_HOUR_START, sqlite_local_hour_start

    connection.connection.create_function(
        SQLITE_LOCAL_HOUR_START, 2, sqlite_local_hour_start, deterministic=True
    )


class LogsConfig(AppConfig):
    name = "logs"
    verbose_name = "Usage logs"

    def ready(self) -> None:
        post_migrate.connect(create_cache_table, sender=self)
        connection_created.connect(_register_sqlite_functions, dispatch_uid="logs-sqlite-functions")
