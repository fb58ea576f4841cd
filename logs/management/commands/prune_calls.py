"""python manage.py prune_calls --older-than 90d

Retention: removes calls received before the cutoff (whole monthly partitions
on PostgreSQL, batched deletes elsewhere). Rollups are kept.
"""

import re
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from logs.retention.prune import prune_calls

UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", text or "")
    if not match or int(match.group(1)) <= 0:
        raise CommandError(
            f"--older-than must be a positive number with a unit h, d or w (e.g. 90d), got {text!r}"
        )
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


class Command(BaseCommand):
    help = "Remove calls older than a given age (e.g. --older-than 90d). Rollups are kept."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", required=True, help="Age such as 90d, 12w or 36h.")
        parser.add_argument("--batch-size", type=int, default=10_000)

    def handle(self, *args, **options):
        age = parse_age(options["older_than"])
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        started = time.monotonic()
        result = prune_calls(older_than=age, batch_size=options["batch_size"])
        for name in result.partitions_dropped:
            self.stdout.write(f"dropped partition {name}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Removed calls before {result.cutoff.isoformat()}: "
                f"{len(result.partitions_dropped)} partitions dropped, "
                f"{result.calls_deleted} calls deleted in batches "
                f"({time.monotonic() - started:.2f} s)."
            )
        )
