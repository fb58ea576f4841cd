"""python manage.py rebuild_rollups [--since ISO] [--until ISO]

Recompute the hourly rollups from raw calls, and the daily and monthly ones
from those: after a bulk load that bypassed the ingest service, or to prove
the incremental rollups right.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from logs.ingest.records import parse_datetime_with_zone
from logs.rollups.rebuild import rebuild_rollups


class Command(BaseCommand):
    help = (
        "Rebuild rollups from raw calls: hourly for whole hours (all by default), "
        "then the daily and monthly rows that cover them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO 8601 with a zone; from this hour on.")
        parser.add_argument("--until", help="ISO 8601 with a zone; before this hour.")

    def handle(self, *args, **options):
        bounds = {}
        for option, name in (("since", "start"), ("until", "end")):
            if options[option]:
                try:
                    bounds[name] = parse_datetime_with_zone(options[option])
                except ValueError as exc:
                    raise CommandError(f"--{option} {exc}") from exc
        if "start" in bounds and "end" in bounds and bounds["end"] <= bounds["start"]:
            raise CommandError("--until must be after --since")
        started = time.monotonic()
        written = rebuild_rollups(**bounds)
        self.stdout.write(
            self.style.SUCCESS(
                f"Rebuilt {written} rollup rows in {time.monotonic() - started:.1f} s."
            )
        )
