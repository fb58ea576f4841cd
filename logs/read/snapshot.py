"""One moment for every read of a page: reads that add pending deltas to the
rollup levels must not straddle a fold."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import DEFAULT_DB_ALIAS, connections, router, transaction

from logs.models import (
    CallRecord,
)

# The database alias every read of call data goes to inside consistent_read
# (the read-replica router asks pinned_read_alias()).
_pinned_alias: ContextVar[str | None] = ContextVar("pinned_read_alias", default=None)


def pinned_read_alias() -> str | None:
    return _pinned_alias.get()


@contextmanager
def consistent_read() -> Iterator[None]:
    """Within this block, every read of calls and rollups sees one moment.

    Totals and stats add what ingest appended and the folder has not folded
    (pending deltas) to the rollup levels; a fold in between two of those reads
    would move calls from one to the other, counting them twice or not at all.
    On PostgreSQL the block is one REPEATABLE READ transaction (one snapshot)
    on one database (a replica, if there are any); on SQLite a transaction,
    which readers see one state of the file in. Blocks nest; inside a
    transaction that is already open (a test's, say) it changes nothing.
    Only reads: a write here (the cache, say) could conflict with another's.
    """
    if _pinned_alias.get() is not None:
        yield
        return
    alias = router.db_for_read(CallRecord) or DEFAULT_DB_ALIAS
    token = _pinned_alias.set(alias)
    try:
        database = connections[alias]
        if database.in_atomic_block:
            yield
            return
        with transaction.atomic(using=alias):
            if database.vendor == "postgresql":
                with database.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield
    finally:
        _pinned_alias.reset(token)
