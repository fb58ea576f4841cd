"""python manage.py import_history --from newapi|oneapi|litellm|jsonl SOURCE

Imports another gateway's call history (docs/integrations/history-import.md):
new-api's or one-api's ``logs`` table, LiteLLM's ``LiteLLM_SpendLogs``, or
this project's own JSON Lines. SOURCE is a SQLite file, a postgresql:// URL
of the source database, or a dump of the table (.csv with a header, .jsonl).
The work is in ``logs.imports``; this command reads options and reports.
"""

from __future__ import annotations

import sys
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Source
from logs.imports.runner import (
    DEFAULT_BATCH_SIZE,
    ImportStopped,
    Summary,
    run_import,
    workers_possible,
)
from logs.imports.tables import TableError

FORMATS = ("newapi", "oneapi", "litellm", "jsonl")


class _Unended:
    """The command's stderr as a plain stream: a progress bar redraws its line
    (``\r``) and must not get a line ending after every write."""

    def __init__(self, wrapper):
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")

    def flush(self) -> None:
        self.wrapper.flush()

    def isatty(self) -> bool:
        return self.wrapper.isatty()


def make_format(name: str, *, quota_per_usd: Decimal):
    if name in ("newapi", "oneapi"):
        from logs.imports.newapi import NewApiFormat

        source = Source.NEWAPI if name == "newapi" else Source.ONEAPI
        return NewApiFormat(source, quota_per_usd=quota_per_usd)
    if name == "litellm":
        from logs.imports.litellm import LiteLLMFormat

        return LiteLLMFormat()
    from logs.imports.jsonl import OwnJsonlFormat

    return OwnJsonlFormat()


class Command(BaseCommand):
    help = "Import call history from new-api, one-api, LiteLLM or this project's JSON Lines."

    def add_arguments(self, parser):
        parser.add_argument(
            "--from", dest="kind", required=True, choices=FORMATS, help="The source's format."
        )
        parser.add_argument(
            "source",
            help="A SQLite file, a postgresql:// URL, or a .csv / .jsonl dump of the table.",
        )
        parser.add_argument(
            "--quota-per-usd",
            default="500000",
            help="new-api/one-api: quota units per US dollar, for the cost (default 500000, "
            "new-api's QuotaPerUnit).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Source rows per transaction (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Processes writing batches at once (PostgreSQL only; default: one per CPU, "
            "at most 4).",
        )
        parser.add_argument(
            "--skip-bad",
            metavar="FILE",
            help="Import the good rows and write every refused row, with its reason, to FILE "
            "(JSON Lines). Without it the import stops at the first bad row.",
        )
        parser.add_argument(
            "--restart",
            action="store_true",
            help="Read the source from its first row, not from where the last run stopped "
            "(rows already imported are found present, not imported twice).",
        )

    def handle(self, *args, **options):
        try:
            quota_per_usd = Decimal(options["quota_per_usd"])
        except InvalidOperation:
            quota_per_usd = Decimal(0)
        if not quota_per_usd.is_finite() or quota_per_usd <= 0:
            raise CommandError(
                f"--quota-per-usd must be a positive number, got {options['quota_per_usd']!r}"
            )
        if options["batch_size"] < 1:
            raise CommandError(f"--batch-size must be at least 1, got {options['batch_size']}")
        workers = self._workers(options["workers"])
        fmt = make_format(options["kind"], quota_per_usd=quota_per_usd)
        refused_file = None
        if options["skip_bad"]:
            try:
                refused_file = open(options["skip_bad"], "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise CommandError(f"cannot write {options['skip_bad']}: {exc.strerror}") from exc
        try:
            summary = run_import(
                fmt,
                options["source"],
                batch_size=options["batch_size"],
                workers=workers,
                skip_bad=refused_file is not None,
                refused_file=refused_file,
                restart=options["restart"],
                progress_stream=_Unended(self.stderr),
            )
        except TableError as exc:
            raise CommandError(str(exc)) from exc
        except ImportStopped as stopped:
            bad = stopped.summary.stopped_at
            field = f"{bad.field}: " if bad.field else ""
            self.stdout.write(self._summary(stopped.summary))
            raise CommandError(
                f"row {bad.source_id}: {field}{bad.reason}\n"
                "Nothing of this row's batch was written. Fix the row and run the same command "
                "again (it continues from there), or pass --skip-bad FILE to import the other "
                "rows and list the refused ones in FILE."
            ) from None
        except KeyboardInterrupt:
            self.stderr.write(
                "Interrupted: every batch reported above is imported whole. Run the same "
                "command again to continue (and to rebuild the rollups of the imported range)."
            )
            sys.exit(130)
        finally:
            if refused_file is not None:
                refused_file.close()
        self.stdout.write(self.style.SUCCESS("Done: " + self._summary(summary)))
        if summary.attached:
            self.stdout.write(
                f"Months loaded without indexes, then indexed: {len(summary.attached)} "
                f"({', '.join(summary.attached)})."
            )
        self.stdout.write(
            "Time: "
            + ", ".join(f"{step} {seconds:,.1f} s" for step, seconds in summary.seconds.items())
            + "."
        )
        if summary.refused_total:
            self.stdout.write(f"Refused rows and their reasons are in {options['skip_bad']}.")

    @staticmethod
    def _summary(summary: Summary) -> str:
        skipped = sum(summary.skipped.values())
        parts = [
            f"{summary.imported:,} imported",
            f"{summary.present:,} already present",
            f"{skipped:,} skipped"
            + (
                " (" + ", ".join(f"{k}: {v:,}" for k, v in sorted(summary.skipped.items())) + ")"
                if skipped
                else ""
            ),
            f"{summary.refused_total:,} refused"
            + (
                " (" + ", ".join(f"{k}: {v:,}" for k, v in sorted(summary.refused.items())) + ")"
                if summary.refused_total
                else ""
            ),
        ]
        text = ", ".join(parts) + "."
        if summary.rebuilt:
            start, end = summary.rebuilt
            text += f" Rollups rebuilt for {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC."
        return text

    @staticmethod
    def _workers(wanted: int | None) -> int:
        import os

        if wanted is None:
            return min(os.cpu_count() or 1, 4) if workers_possible() else 1
        if wanted < 1:
            raise CommandError(f"--workers must be at least 1, got {wanted}")
        if wanted > 1 and not workers_possible():
            raise CommandError(
                "--workers above 1 needs PostgreSQL and no open transaction; use --workers 1"
            )
        return wanted
