"""Running an import: source rows in batches through the bulk ingest path,
with a resume checkpoint, progress, and an exact rollup rebuild at the end.

Each batch is mapped (``Format.map``), checked and written by
``logs.ingest.bulk`` in one transaction: a batch is written whole or not at
all, so Ctrl-C or a crash leaves whole batches. After each batch, in source
order, the run's ``ImportRun`` row records the position of its last row;
running the same import again reads on from there. A batch committed just
before a crash, whose position was not yet recorded, is read again and found
already present (calls carry their source row's id as request id): nothing
is imported twice.

On PostgreSQL several worker processes map, check and write batches at once
(``workers``); this process reads the source, hands batches out, and takes
their outcomes in source order, so checkpoints, counts and the first bad row
are what one process would give.

On PostgreSQL, months without a partition are loaded without indexes and
attached at the end (``logs.imports.loading``); each batch then also notes
itself in the run as it commits, so a rerun skips the batches written after
the last checkpoint.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from django.db import connection, connections, transaction
from django.utils import timezone

from logs.imports.base import Format, Refusal, Skip
from logs.imports.loading import (
    MonthLoader,
    RequestIds,
    attach_months,
    forget_marker,
    loading_possible,
    marker_statement,
    markers,
    position_key,
)
from logs.imports.progress import Progress
from logs.imports.tables import Table
from logs.ingest.bulk import BulkResult, Loading, check_batch, write_batch
from logs.ingest.errors import IngestError
from logs.ingest.text import has_lone_surrogate
from logs.models import ImportRun
from logs.periods import HOUR
from logs.retention.partitions import month_of
from logs.rollups.rebuild import rebuild_rollups

DEFAULT_BATCH_SIZE = 5_000
BATCHES_AHEAD_PER_WORKER = 2


@dataclass(frozen=True)
class RefusedRow:
    source_id: str
    field: str
    reason: str
    row: dict[str, Any]

    def as_json(self) -> str:
        refused = {"source_id": self.source_id, "field": self.field, "reason": self.reason}
        line = json.dumps({**refused, "row": self.row}, ensure_ascii=False, default=str)
        # A lone surrogate (JSON's "\ud800" in a dump) cannot be written as UTF-8: escaped.
        return json.dumps(json.loads(line)) if has_lone_surrogate(line) else line


@dataclass
class BatchOutcome:
    """What became of one batch of source rows."""

    rows: int
    last_position: Any
    created: int = 0
    present: int = 0
    skipped: Counter = field(default_factory=Counter)
    refused: list[RefusedRow] = field(default_factory=list)
    earliest: datetime | None = None
    latest: datetime | None = None
    # Without skip_bad: the first bad row; nothing of the batch was written.
    stopped_at: RefusedRow | None = None
    # Refused rows known only by number (a batch written before a crash).
    refused_uncounted: int = 0


@dataclass
class Summary:
    imported: int = 0
    present: int = 0
    skipped: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)  # by field
    stopped_at: RefusedRow | None = None
    rebuilt: tuple[datetime, datetime] | None = None
    rows: int = 0
    # The months loaded without indexes, attached at the end.
    attached: list[str] = field(default_factory=list)
    # Wall-clock seconds of each step: "batches", "indexes", "rollups".
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())


class ImportStopped(Exception):
    """A bad row stopped the import (without ``skip_bad``); ``summary`` says what got in."""

    def __init__(self, summary: Summary):
        super().__init__(summary.stopped_at)
        self.summary = summary


@dataclass(frozen=True)
class LoadingJob:
    """What a batch needs to write into months loaded without indexes."""

    run_id: int
    loader: MonthLoader


def import_batch(
    fmt: Format,
    batch: list[tuple[Any, dict]],
    *,
    skip_bad: bool,
    now: datetime,
    loading: LoadingJob | None = None,
    recheck: frozenset[int] = frozenset(),
) -> BatchOutcome:
    """Map, check and write one batch of (position, row). ``recheck``: offsets
    of rows whose request id the run read before (see ``logs.imports.loading``)."""
    outcome = BatchOutcome(rows=len(batch), last_position=batch[-1][0])
    records: list[dict] = []
    rows: list[dict] = []
    offsets: list[int] = []
    for offset, (_, row) in enumerate(batch):
        mapped = fmt.map(row)
        if isinstance(mapped, Skip):
            outcome.skipped[mapped.kind] += 1
        elif isinstance(mapped, Refusal):
            refused = RefusedRow(fmt.source_id(row), mapped.field, mapped.message, row)
            if not skip_bad:
                outcome.stopped_at = refused
                return outcome
            outcome.refused.append(refused)
        else:
            records.append(mapped)
            rows.append(row)
            offsets.append(offset)
    if not records:
        return outcome
    checked = check_batch(records, now=now)
    name = getattr(fmt, "source_field", lambda field: field)
    if checked.errors and not skip_bad:
        error = checked.first_error
        row = rows[error.index]
        outcome.stopped_at = RefusedRow(fmt.source_id(row), name(error.field), error.message, row)
        return outcome
    how = None
    if loading is not None:
        months = {month_of(call.created_at) for call, *_ in checked.resolved}

        def marker(result: BulkResult) -> tuple[str, list]:
            return marker_statement(
                loading.run_id,
                {
                    "at": position_key(outcome.last_position),
                    "created": result.created,
                    "present": result.duplicates,
                    "skipped": dict(outcome.skipped),
                    "refused": len(outcome.refused) + len(result.refused),
                    "earliest": result.earliest,
                    "latest": result.latest,
                },
            )

        how = Loading(
            months=loading.loader.loaded(months),
            recheck=frozenset(i for i, offset in enumerate(offsets) if offset in recheck),
            marker=marker,
        )
    try:
        result = write_batch(
            checked,
            skip_bad=skip_bad,
            wait_for_disk=False,
            replays_are_present=getattr(fmt, "replays_are_present", False),
            loading=how,
        )
    except IngestError as exc:  # a request id already stored with other content
        error = exc.errors[0]
        row = rows[error.index]
        outcome.stopped_at = RefusedRow(fmt.source_id(row), name(error.field), error.message, row)
        return outcome
    for error in result.refused:
        row = rows[error.index] if error.index is not None else {}
        outcome.refused.append(
            RefusedRow(fmt.source_id(row), name(error.field), error.message, row)
        )
    outcome.created, outcome.present = result.created, result.duplicates
    outcome.earliest, outcome.latest = result.earliest, result.latest
    return outcome


# --- worker processes -----------------------------------------------------------------

_worker_job: tuple[Format, bool, datetime, LoadingJob | None] | None = None


def _import_in_worker(batch: list[tuple[Any, dict]], recheck: frozenset[int]) -> BatchOutcome:
    fmt, skip_bad, now, loading = _worker_job
    return import_batch(fmt, batch, skip_bad=skip_bad, now=now, loading=loading, recheck=recheck)


def _batches(rows: Iterator[tuple[Any, dict]], size: int) -> Iterator[list[tuple[Any, dict]]]:
    batch: list[tuple[Any, dict]] = []
    for item in rows:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# A batch: its rows, and the offsets of those to judge in full (or None: a
# batch written before a crash, skipped; its outcome is the one noted then).
Planned = tuple[list[tuple[Any, dict]], frozenset[int] | BatchOutcome]


def _outcomes(
    fmt: Format,
    batches: Iterator[Planned],
    *,
    workers: int,
    skip_bad: bool,
    now: datetime,
    loading: LoadingJob | None = None,
) -> Iterator[BatchOutcome]:
    """Each batch's outcome, in source order."""
    if workers == 1:
        for batch, plan in batches:
            if isinstance(plan, BatchOutcome):
                yield plan
                continue
            yield import_batch(
                fmt, batch, skip_bad=skip_bad, now=now, loading=loading, recheck=plan
            )
        return
    global _worker_job
    _worker_job = (fmt, skip_bad, now, loading)
    connections.close_all()  # forked workers open their own connections
    pool = multiprocessing.get_context("fork").Pool(workers)
    try:
        pending: deque = deque()
        for batch, plan in batches:
            if isinstance(plan, BatchOutcome):
                pending.append(_Done(plan))
                continue
            if plan:
                # Rows judged in full must see every earlier batch's calls:
                # those in flight are written first.
                while pending:
                    yield pending.popleft().get()
            pending.append(pool.apply_async(_import_in_worker, (batch, plan)))
            if len(pending) >= workers * BATCHES_AHEAD_PER_WORKER:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        pool.close()
        pool.join()
    finally:
        pool.terminate()
        _worker_job = None


class _Done:
    """An outcome already known, queued among the workers' in source order."""

    def __init__(self, outcome: BatchOutcome):
        self.outcome = outcome

    def get(self) -> BatchOutcome:
        return self.outcome


def _plan(
    batches: Iterator[list[tuple[Any, dict]]],
    fmt: Format,
    request_ids: RequestIds | None,
    written: dict[str, dict],
) -> Iterator[Planned]:
    """Each batch with the rows to judge in full, or the outcome noted when it
    was written before a crash (``written``, by last position)."""
    request_id = getattr(fmt, "request_id", None)
    for batch in batches:
        noted = written.get(position_key(batch[-1][0]))
        if noted is not None:
            yield batch, _noted_outcome(batch, noted)
            continue
        if request_ids is None:
            yield batch, frozenset()
            continue
        recheck = frozenset(
            offset
            for offset, (_, row) in enumerate(batch)
            if request_ids.repeated(request_id(row) if request_id else None)
        )
        yield batch, recheck


def _noted_outcome(batch: list[tuple[Any, dict]], noted: dict) -> BatchOutcome:
    def moment(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    return BatchOutcome(
        rows=len(batch),
        last_position=batch[-1][0],
        created=noted["created"],
        present=noted["present"],
        skipped=Counter(noted["skipped"]),
        refused_uncounted=noted["refused"],
        earliest=moment(noted["earliest"]),
        latest=moment(noted["latest"]),
    )


def workers_possible() -> bool:
    """Parallel writers need PostgreSQL and committed data (each worker has its
    own connection, which cannot see an open transaction's rows)."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


# --- the run ----------------------------------------------------------------------------


def run_for(kind: str, table: Table, *, restart: bool) -> ImportRun:
    """The ImportRun of this source, created on first use; ``restart`` reads from the start."""
    now = timezone.now()
    run, created = ImportRun.objects.get_or_create(
        kind=kind,
        location=table.describe()[:500],
        defaults={"started_at": now, "updated_at": now},
    )
    if restart and not created:
        run.checkpoint = None
        run.started_at = now
        run.finished_at = None
        run.ahead = []  # every row is read again, and judged
        run.save(update_fields=["checkpoint", "started_at", "finished_at", "ahead"])
    if run.stopped_by:
        run.stopped_by = ""
        run.save(update_fields=["stopped_by"])
    return run


def run_import(
    fmt: Format,
    location: str,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = 1,
    skip_bad: bool = False,
    refused_file: TextIO | None = None,
    restart: bool = False,
    progress_stream: TextIO | None = None,
    tty: bool | None = None,
    on_batch: Callable[[BatchOutcome], None] | None = None,
) -> Summary:
    """Import every row of ``location`` after the run's checkpoint; see the module."""
    table = fmt.table(location)
    run = run_for(fmt.name, table, restart=restart)
    now = timezone.now()
    summary = Summary()
    progress = None
    if progress_stream is not None:
        progress = Progress(progress_stream, table.count(run.checkpoint), tty=tty)
    loading = request_ids = None
    written: dict[str, dict] = {}
    if loading_possible():
        written = markers(run)
        if written and run.batch_size:
            batch_size = run.batch_size  # the batches of the run before, to know them again
        if run.batch_size != batch_size:
            run.batch_size = batch_size
            run.save(update_fields=["batch_size"])
        loading = LoadingJob(run.pk, MonthLoader(run.pk))
        request_ids = RequestIds(run)
    batches = _plan(_batches(table.rows(run.checkpoint), batch_size), fmt, request_ids, written)
    started = time.monotonic()
    try:
        outcomes = _outcomes(
            fmt, batches, workers=workers, skip_bad=skip_bad, now=now, loading=loading
        )
        for outcome in outcomes:
            _record(run, outcome, summary, refused_file, loading is not None)
            if progress is not None:
                progress.advance(outcome.rows)
            if on_batch is not None:
                on_batch(outcome)
            if outcome.stopped_at is not None:
                summary.stopped_at = outcome.stopped_at
                break
    finally:
        if progress is not None:
            progress.finish()
        _wait_for_durable_commits()
    summary.seconds["batches"] = time.monotonic() - started
    if loading is not None:
        started = time.monotonic()
        summary.attached = attach_months(run)
        summary.seconds["indexes"] = time.monotonic() - started
    started = time.monotonic()
    summary.rebuilt = finish_rollups(run, workers)
    summary.seconds["rollups"] = time.monotonic() - started
    if summary.stopped_at is not None:
        stopped = summary.stopped_at
        run.stopped_by = f"{stopped.source_id}: {stopped.field or 'row'}: {stopped.reason}"[:2000]
        run.save(update_fields=["stopped_by"])
        raise ImportStopped(summary)
    run.finished_at = timezone.now()
    run.ahead = []
    run.save(update_fields=["finished_at", "ahead"])
    return summary


def _record(
    run: ImportRun,
    outcome: BatchOutcome,
    summary: Summary,
    refused_file: TextIO | None,
    noted: bool = False,
) -> None:
    """Count a batch's outcome, in the summary and (with its checkpoint) in the run."""
    summary.rows += outcome.rows
    summary.imported += outcome.created
    summary.present += outcome.present
    summary.skipped.update(outcome.skipped)
    for refused in outcome.refused:
        summary.refused[refused.field or "row"] += 1
        if refused_file is not None:
            refused_file.write(refused.as_json() + "\n")
    if outcome.refused_uncounted:
        summary.refused["row"] += outcome.refused_uncounted
    if refused_file is not None and outcome.refused:
        refused_file.flush()
    if outcome.stopped_at is not None:
        return  # nothing of the batch was written: the checkpoint stays before it
    run.checkpoint = outcome.last_position
    run.imported += outcome.created
    run.already_present += outcome.present
    run.refused += len(outcome.refused) + outcome.refused_uncounted
    skipped = Counter(run.skipped)
    skipped.update(outcome.skipped)
    run.skipped = dict(skipped)
    if outcome.earliest is not None:
        run.rollups_from = min(filter(None, (run.rollups_from, outcome.earliest)))
        run.rollups_to = max(filter(None, (run.rollups_to, outcome.latest)))
    run.updated_at = timezone.now()
    run.save(
        update_fields=[
            "checkpoint",
            "imported",
            "already_present",
            "refused",
            "skipped",
            "rollups_from",
            "rollups_to",
            "updated_at",
        ]
    )
    if noted:
        forget_marker(run, outcome.last_position)


def _rebuild_month(piece: tuple[datetime, datetime]) -> None:
    rebuild_rollups(start=piece[0], end=piece[1], beside=True)


def _by_month(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at the first of each UTC month: pieces that share no
    rollup row (the coarsest levels are days and months)."""
    pieces = []
    while start < end:
        month = month_of(start)
        following = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
        cut = min(end, following)
        pieces.append((start, cut))
        start = cut
    return pieces


def finish_rollups(run: ImportRun, workers: int = 1) -> tuple[datetime, datetime] | None:
    """Rebuild the rollups of every hour the run's calls fall in (also those of
    a run that stopped before it could), then forget the range. With workers
    (PostgreSQL), month by month, as many at once: each month is one
    transaction, and a crash leaves the whole range to the next run."""
    if run.rollups_from is None:
        return None
    start = HOUR.floor(run.rollups_from)
    end = HOUR.floor(run.rollups_to) + timedelta(hours=1)
    pieces = _by_month(start.astimezone(UTC), end.astimezone(UTC))
    if workers > 1 and len(pieces) > 1 and workers_possible():
        connections.close_all()  # forked workers open their own connections
        with multiprocessing.get_context("fork").Pool(min(workers, len(pieces))) as pool:
            pool.map(_rebuild_month, pieces, chunksize=1)
    else:
        rebuild_rollups(start=start, end=end)
    run.rollups_from = run.rollups_to = None
    run.save(update_fields=["rollups_from", "rollups_to"])
    return start, end


def _wait_for_durable_commits() -> None:
    """Batches commit without waiting for the disk; one ordinary commit waits
    for all of them."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT txid_current()")
