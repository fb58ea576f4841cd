"""python manage.py seed_demo --calls N [--seed S] [--days D] [--if-empty]

Fills a development database with demo data: the demo accounts, pricing
groups and keys (``logs.demo.ensure_demo_world``), N calls spread over the
last D days (``logs.demo.iter_calls``), sent through the ingest service in
batches like any other calls, and the two demo logins (``accounts.demo``).

The records are a pure function of (seed, calls, days, now); ``now`` is the
current time rounded down to the minute, so two runs within the same minute
produce the same calls (the second is counted as already present), and a
later run adds new calls instead of clashing with earlier ones. Accounts,
groups, keys and users are never duplicated.
"""

import itertools
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.demo import ensure_demo_users
from accounts.models import Account
from logs.demo import ACCOUNTS, DEFAULT_DAYS, DemoWorld, ensure_demo_world, iter_calls
from logs.demo_litellm import ensure_demo_prices, litellm_payloads
from logs.ingest.errors import IngestError
from logs.ingest.records import parse_datetime_with_zone
from logs.ingest.service import ingest_calls
from logs.integrations.litellm import ingest_litellm
from logs.models import CallRecord

MAX_CALLS = 5_000_000  # far beyond a demo; stops a typo from filling the disk
MAX_DAYS = 3650
DEFAULT_LITELLM_CALLS = 120
# Where the logins are printed as being; `make run` passes its own HOST and PORT.
SITE = "http://127.0.0.1:8000"


class Command(BaseCommand):
    help = "Create demo accounts, keys, logins and N demo calls (through the ingest service)."

    def add_arguments(self, parser):
        parser.add_argument("--calls", type=int, required=True, help="How many calls to create.")
        parser.add_argument("--seed", type=int, default=1, help="Same seed, same data (default 1).")
        parser.add_argument(
            "--days",
            type=int,
            default=DEFAULT_DAYS,
            help=f"Spread the calls over the last D days (default {DEFAULT_DAYS}).",
        )
        parser.add_argument(
            "--litellm-calls",
            type=int,
            default=DEFAULT_LITELLM_CALLS,
            help="Calls of a team whose gateway is LiteLLM, posted through the LiteLLM "
            f"integration, with cached and reasoning tokens (default {DEFAULT_LITELLM_CALLS}).",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Create no calls if the database has any; the demo logins are still reset.",
        )
        parser.add_argument(
            "--site",
            default=SITE,
            help=f"The address the server answers at, for the printed logins (default {SITE}).",
        )

    def handle(self, *args, **options):
        count, seed, days = options["calls"], options["seed"], options["days"]
        self.site = options["site"].rstrip("/")
        if not 1 <= count <= MAX_CALLS:
            raise CommandError(f"--calls must be between 1 and {MAX_CALLS:,}, got {count}")
        if not 1 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between 1 and {MAX_DAYS}, got {days}")
        if seed < 0:
            raise CommandError(f"--seed must be zero or more, got {seed}")
        litellm_calls = options["litellm_calls"]
        if not 0 <= litellm_calls <= MAX_CALLS:
            raise CommandError(
                f"--litellm-calls must be between 0 and {MAX_CALLS:,}, got {litellm_calls}"
            )
        if not settings.DEBUG:
            self.stderr.write(
                self.style.WARNING(
                    "DEBUG is off: seed_demo creates logins whose passwords are published. "
                    "Use it only on a development database."
                )
            )

        if options["if_empty"] and CallRecord.objects.exists():
            existing = CallRecord.objects.count()
            self.stdout.write(
                f"The database already has {existing:,} calls; no demo calls created (--if-empty)."
            )
            owner_account = Account.objects.filter(slug=ACCOUNTS[0].slug).first()
            self._print_logins(ensure_demo_users(owner_account))
            return

        # The only input that is not an option: everything else follows from it.
        now = timezone.now().replace(second=0, microsecond=0)
        started = time.monotonic()
        world = ensure_demo_world(seed, since=now - timedelta(days=days))
        made = world.created
        self.stdout.write(
            f"Demo world: {made['groups']} groups, {made['accounts']} accounts and "
            f"{made['keys']} keys created ({len(world.prefixes)} keys in use)."
        )

        created = present = 0
        batch_size = settings.USAGELOGS_INGEST_MAX_BATCH
        # About ten progress lines, whatever the size.
        report_every = max(1, -(-count // batch_size) // 10)
        skipped: list[str] = []
        records = _for_stored_keys(iter_calls(seed, count, now, days=days), world, skipped)
        for number, batch in enumerate(_batches(records, batch_size), start=1):
            try:
                result = ingest_calls(batch)
            except IngestError as exc:
                raise CommandError(f"the ingest service refused demo calls: {exc}") from exc
            created += result.created
            present += result.duplicates
            if number % report_every == 0:
                self.stdout.write(
                    f"… {created + present:,} / {count:,} calls "
                    f"({time.monotonic() - started:.1f} s)"
                )
        if skipped:
            self.stdout.write(f"{len(skipped):,} calls of revoked keys left out.")
        self._seed_litellm(seed, litellm_calls, now, days)

        total = CallRecord.objects.count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Done: {created:,} calls created, {present:,} already present, "
                f"in {time.monotonic() - started:.1f} s (seed {seed}, last {days} days up to "
                f"{now:%Y-%m-%d %H:%M} UTC). The database has {total:,} calls."
            )
        )
        self._print_logins(ensure_demo_users(world.accounts[0]))

    def _seed_litellm(self, seed: int, count: int, now, days: int) -> None:
        """The price list, and the LiteLLM team's calls through the integration."""
        prices = ensure_demo_prices(since=now - timedelta(days=days))
        if not count:
            return
        created = 0
        payloads = litellm_payloads(seed, count, now, days)
        for batch in _batches(payloads, settings.USAGELOGS_INGEST_MAX_BATCH):
            try:
                created += ingest_litellm(batch, create=True).created
            except IngestError as exc:
                raise CommandError(f"the LiteLLM integration refused demo calls: {exc}") from exc
        self.stdout.write(
            f"LiteLLM team: {created:,} calls posted through the LiteLLM integration "
            f"({prices} model prices created for the price list)."
        )

    def _print_logins(self, logins) -> None:
        self.stdout.write("\nDemo logins:")
        for login in logins:
            self.stdout.write(
                f"  {login.who}: {self.site}{login.url}  user {login.username!r}, "
                f"password {login.password!r}"
            )


def _batches(records: Iterable[dict], size: int) -> Iterator[list[dict]]:
    # itertools.batched needs Python 3.12; the project supports 3.11.
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _for_stored_keys(
    records: Iterable[dict], world: DemoWorld, skipped: list[str]
) -> Iterator[dict]:
    """Point each record at the key stored under its account and name (another
    seed may have created it), and leave out calls a revoked key could not
    have made, which ingest would refuse; their request ids go to ``skipped``."""
    for record in records:
        prefix = world.prefixes[record["api_key"]]
        revoked_at = world.revoked_at.get(prefix)
        if revoked_at is not None and parse_datetime_with_zone(record["created_at"]) > revoked_at:
            skipped.append(record["request_id"])
            continue
        record["api_key"] = prefix
        yield record
