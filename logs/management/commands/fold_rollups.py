"""python manage.py fold_rollups [--loop] [--interval SECONDS]

Move what ingest appended (pending rollup deltas) into the rollup levels. Once,
until nothing is pending; or, with --loop, again and again as a process of its
own (production: run it beside the web workers and set
USAGELOGS_FOLD_AFTER_INGEST=0 so ingest requests only append). Reads are exact
whether or not it runs; they are only faster when little is pending.
"""

import signal
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from logs.rollups.fold import fold_pending_rollups


class Command(BaseCommand):
    help = "Fold pending rollup deltas into the rollup levels (once, or --loop)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop", action="store_true", help="Keep folding until stopped (SIGTERM or Ctrl-C)."
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="With --loop: seconds to wait when nothing is pending (default 1).",
        )

    def handle(self, *args, loop: bool, interval: float, **options):
        if not 0 < interval <= 3600:
            raise CommandError("--interval must be more than 0 and at most 3600 seconds")
        self.stopping = False
        if loop:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self.stop)
        folded = 0
        while not self.stopping:
            try:
                # Waits for another folder rather than skipping: this one is meant to run.
                result = fold_pending_rollups(wait=True)
            except DatabaseError as exc:
                if not loop:
                    raise CommandError(f"folding failed: {exc}") from exc
                # A lost connection or a restarting database: nothing was folded
                # (one transaction per fold); try again after a pause.
                self.stderr.write(f"folding failed, retrying: {exc}")
                close_old_connections()
                time.sleep(interval)
                continue
            folded += result.deltas
            if result.deltas:
                if loop:
                    self.stdout.write(
                        f"folded {result.deltas} deltas in {result.milliseconds} ms", ending="\n"
                    )
                continue
            if not loop:
                break
            close_old_connections()
            time.sleep(interval)
        self.stdout.write(self.style.SUCCESS(f"Folded {folded} pending deltas."))

    def stop(self, signum, frame) -> None:
        # Finish the fold in progress (one transaction), then leave.
        self.stopping = True
