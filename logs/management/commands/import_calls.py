"""python manage.py import_calls FILE — load call records from JSON Lines.

Each line is one record in the ingest format (docs/ingest-format.md). Lines
are sent through the ingest service in batches; a batch with a bad line writes
nothing and its bad lines are reported by line number, the other batches are
written. Replays are idempotent, so an interrupted or partly failed import is
resumed by running the same command on the same (corrected) file again.
"""

import json
import sys
import time
from collections.abc import Iterator

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from logs.services import IngestError, ingest_calls


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

    def handle(self, *args, **options):
        limit = settings.USAGELOGS_INGEST_MAX_BATCH
        batch_size = limit if options["batch_size"] is None else options["batch_size"]
        if not 1 <= batch_size <= limit:
            raise CommandError(f"--batch-size must be between 1 and {limit}, got {batch_size}")
        path = options["file"]
        try:
            stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from exc

        created = present = bad_lines = bad_batches = 0
        started = time.monotonic()
        try:
            for batch in self._batches(stream, batch_size):
                problems = [(line, message) for line, _, message in batch if message]
                records = [record for _, record, message in batch if not message]
                if not problems:
                    try:
                        result = ingest_calls(records)
                    except IngestError as exc:
                        problems = self._by_line(batch, exc)
                    else:
                        created += result.created
                        present += result.duplicates
                if problems:
                    bad_batches += 1
                    bad_lines += len({line for line, _ in problems})
                    for line, message in problems:
                        self.stderr.write(f"line {line}: {message}")
                    first, last = batch[0][0], batch[-1][0]
                    self.stderr.write(f"lines {first}-{last} not imported (batch had errors)")
                elapsed = time.monotonic() - started
                self.stdout.write(
                    f"… line {batch[-1][0]}: {created} created, {present} already present, "
                    f"{bad_lines} bad ({elapsed:.1f} s)"
                )
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text: {exc.reason}") from exc
        finally:
            if stream is not sys.stdin:
                stream.close()

        summary = f"{created} created, {present} already present, {bad_lines} bad lines"
        if bad_lines:
            raise CommandError(
                f"{summary}; {bad_batches} batch(es) were not imported. Fix the lines above and "
                "run the same command again: records already imported are skipped."
            )
        self.stdout.write(self.style.SUCCESS(f"Done: {summary}."))

    @staticmethod
    def _batches(stream, size: int) -> Iterator[list[tuple[int, object, str]]]:
        """(line number, record, problem) triples; blank lines are skipped."""
        batch: list[tuple[int, object, str]] = []
        for number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                batch.append((number, json.loads(text), ""))
            except json.JSONDecodeError as exc:
                batch.append((number, None, f"not valid JSON: {exc.msg} (column {exc.colno})"))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    @staticmethod
    def _by_line(batch, exc: IngestError) -> list[tuple[int, str]]:
        lines = [line for line, _, _ in batch]
        return [
            (
                lines[error.index] if error.index is not None else lines[0],
                f"{error.field}: {error.message}" if error.field else error.message,
            )
            for error in exc.errors
        ]
