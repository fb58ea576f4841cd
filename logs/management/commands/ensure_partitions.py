"""python manage.py ensure_partitions [--ahead N] — create next months' partitions.

The ingest service creates partitions on demand; run this daily from cron so
the next months exist before the first call of the month arrives.
"""

from django.core.management.base import BaseCommand, CommandError

from logs.retention.partitions import ensure_partitions, is_partitioned


class Command(BaseCommand):
    help = "Create this month's and the next months' call partitions (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument("--ahead", type=int, default=3, help="Months ahead (default 3).")

    def handle(self, *args, **options):
        if options["ahead"] < 0 or options["ahead"] > 120:
            raise CommandError("--ahead must be between 0 and 120")
        if not is_partitioned():
            self.stdout.write("The calls table is not partitioned here (not PostgreSQL).")
            return
        created = ensure_partitions([], ahead=options["ahead"])
        for name in created:
            self.stdout.write(f"created {name}")
        self.stdout.write(self.style.SUCCESS(f"{len(created)} partitions created."))
