"""python manage.py import_calls FILE — load call records from JSON Lines.

Each line is one record in the ingest format (docs/ingest-format.md). Lines
are sent through the ingest service in batches; a batch with a bad line writes
nothing and its bad lines are reported by line number, the other batches are
written. Replays are idempotent, so an interrupted or partly failed import is
resumed by running the same command on the same (corrected) file again.

On PostgreSQL, batches are validated and written by several worker processes
at once (``--workers``; one per CPU by default). This process reads the file
and reports every batch's outcome in file order, exactly as one process would.
Each batch is still its own all-or-nothing transaction; only the order in
which batches commit is not the file's, so an interrupted import may have
written a later batch and not an earlier one — which the re-run above
resumes all the same.

For the same reason each batch commits on PostgreSQL without waiting for its
commit to reach the disk (``synchronous_commit = off``: a crash may lose the
last batches reported, never a part of one): the wait was a good part of a
batch's time. Before "Done" the command commits once more the usual way, which
waits for everything committed before it, so a finished import is on disk.
"""

import json
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterator

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction

from logs.ingest import fastjson
from logs.ingest.errors import IngestError
from logs.ingest.service import ingest_calls

# Batches handed to the workers ahead of the one being reported: keeps them
# busy without reading the whole file into memory.
BATCHES_AHEAD_PER_WORKER = 2


class Command(BaseCommand):
    help = "Import call records from a JSON Lines file ('-' for standard input)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to a .jsonl file, or - for standard input.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Records per transaction (default and maximum: USAGELOGS_INGEST_MAX_BATCH).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Processes writing batches at once (PostgreSQL only; default: one per CPU, "
            "at most 4; 1 writes in this process).",
        )

    def handle(self, *args, **options):
        limit = settings.USAGELOGS_INGEST_MAX_BATCH
        batch_size = limit if options["batch_size"] is None else options["batch_size"]
        if not 1 <= batch_size <= limit:
            raise CommandError(f"--batch-size must be between 1 and {limit}, got {batch_size}")
        workers = self._workers(options["workers"])
        path = options["file"]
        try:
            stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc

        created = present = bad_lines = bad_batches = 0
        started = time.monotonic()
        try:
            for lines, outcome in self._outcomes(self._batches(stream, batch_size), workers):
                batch_created, batch_present, problems = outcome
                created += batch_created
                present += batch_present
                if problems:
                    bad_batches += 1
                    bad_lines += len({line for line, _ in problems})
                    for line, message in problems:
                        self.stderr.write(f"line {line}: {message}")
                    first, last = lines[0], lines[-1]
                    self.stderr.write(f"lines {first}-{last} not imported (batch had errors)")
                elapsed = time.monotonic() - started
                self.stdout.write(
                    f"… line {lines[-1]}: {created} created, {present} already present, "
                    f"{bad_lines} bad ({elapsed:.1f} s)"
                )
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text: {exc.reason}") from exc
        finally:
            if stream is not sys.stdin:
                stream.close()

        if created:
            _wait_for_durable_commits()
        summary = f"{created} created, {present} already present, {bad_lines} bad lines"
        if bad_lines:
            raise CommandError(
                f"{summary}; {bad_batches} batch(es) were not imported. Fix the lines above and "
                "run the same command again: records already imported are skipped."
            )
        self.stdout.write(self.style.SUCCESS(f"Done: {summary}."))

    @staticmethod
    def _workers(wanted: int | None) -> int:
        """How many processes write batches. Parallel writing needs PostgreSQL (one
        writer at a time elsewhere) and committed data (workers have their own
        connections, so they cannot see an open transaction's rows)."""
        parallel_possible = connection.vendor == "postgresql" and not connection.in_atomic_block
        if wanted is None:
            return min(os.cpu_count() or 1, 4) if parallel_possible else 1
        if wanted < 1:
            raise CommandError(f"--workers must be at least 1, got {wanted}")
        if wanted > 1 and not parallel_possible:
            raise CommandError(
                "--workers above 1 needs PostgreSQL and no open transaction; use --workers 1"
            )
        return wanted

    @staticmethod
    def _outcomes(
        batches: Iterator[list[tuple[int, str]]], workers: int
    ) -> Iterator[tuple[list[int], tuple[int, int, list[tuple[int, str]]]]]:
        """(line numbers, outcome) of each batch, in file order."""
        if workers == 1:
            for batch in batches:
                yield [line for line, _ in batch], import_batch(batch)
            return
        # Forked workers open their own connections: none may be inherited.
        connections.close_all()
        pool = multiprocessing.get_context("fork").Pool(workers)
        try:
            pending: deque = deque()
            iterator = iter(batches)
            unreadable = None
            while True:
                try:
                    batch = next(iterator)
                except StopIteration:
                    break
                except Exception as exc:  # e.g. not UTF-8: report what came before it first
                    unreadable = exc
                    break
                lines = [line for line, _ in batch]
                pending.append((lines, pool.apply_async(import_batch, (batch,))))
                if len(pending) >= workers * BATCHES_AHEAD_PER_WORKER:
                    lines, result = pending.popleft()
                    yield lines, result.get()
            while pending:
                lines, result = pending.popleft()
                yield lines, result.get()
            if unreadable is not None:
                raise unreadable
            pool.close()
            pool.join()
        finally:
            pool.terminate()

    @staticmethod
    def _batches(stream, size: int) -> Iterator[list[tuple[int, str]]]:
        """Batches of (line number, text); blank lines are skipped."""
        batch: list[tuple[int, str]] = []
        for number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            batch.append((number, text))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def _wait_for_durable_commits() -> None:
    """Commit a transaction the usual way (waiting for its commit to be on disk),
    which waits for every commit written before it: the batches' own did not."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT txid_current()")  # an id of its own: a commit to wait for


def _parse_line(text: str) -> object:
    """``json.loads(text)`` (the same value or the same error), by orjson where
    that is the same (see fastjson.loads)."""
    encoded = text.encode()
    if fastjson.LONG_DIGIT_RUN not in encoded.translate(fastjson.DIGIT_MAP):
        try:
            return fastjson.orjson.loads(encoded)
        except fastjson.orjson.JSONDecodeError:
            pass  # json decides, with its own message
    # The text itself, not its bytes: json reads bytes with a byte order mark
    # as UTF-8-sig, where a text starting with one is an error.
    return json.loads(text)


def import_batch(batch: list[tuple[int, str]]) -> tuple[int, int, list[tuple[int, str]]]:
    """Parse and ingest one batch of (line number, text): (created, already
    present, problems as (line number, message)). Runs in a worker process or
    in the command's own."""
    with fastjson.paused_gc():  # a batch's records would set off full collections
        return _import_batch(batch)


def _import_batch(batch: list[tuple[int, str]]) -> tuple[int, int, list[tuple[int, str]]]:
    parsed: list[tuple[int, object, str]] = []
    for number, text in batch:
        try:
            parsed.append((number, _parse_line(text), ""))
        except json.JSONDecodeError as exc:
            parsed.append((number, None, f"not valid JSON: {exc.msg} (column {exc.colno})"))
    problems = [(line, message) for line, _, message in parsed if message]
    if problems:
        return 0, 0, problems
    try:
        # A re-run restores what a crash loses (see the module docstring), and
        # the command waits for the disk once, at the end.
        result = ingest_calls([record for _, record, _ in parsed], wait_for_disk=False)
    except IngestError as exc:
        lines = [line for line, _, _ in parsed]
        return (
            0,
            0,
            [
                (
                    lines[error.index] if error.index is not None else lines[0],
                    f"{error.field}: {error.message}" if error.field else error.message,
                )
                for error in exc.errors
            ],
        )
    return result.created, result.duplicates, []
