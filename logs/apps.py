from django.apps import AppConfig
from django.db.backends.signals import connection_created


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
        connection_created.connect(_register_sqlite_functions, dispatch_uid="logs-sqlite-functions")
