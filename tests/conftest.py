"""Shared fixtures, and the PostgreSQL switch.

The suite runs on SQLite unless ``DATABASE_URL=postgres://...`` is set (the
settings read it through dj-database-url). Tests marked
``@pytest.mark.postgres`` need PostgreSQL: elsewhere they are skipped, and the
end of the run says so in a banner, so a green SQLite run never passes for a
PostgreSQL one.

No test reads the wall clock: the run, and each test, start at a fixed
instant (``tests/clock.py``); ``clock`` is the fixture that pins it, and
``@at_instants(...)`` runs a test at several instants.

The world most tests need, ``two_accounts``: accounts A and B, each with an
owner, keys in the shared pricing groups ``default`` and ``vip``, and a few
calls ingested through the ingest service; plus an outsider (a login in no
account). Staff see both accounts; each owner sees only their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.db import connections
from django.test import Client, override_settings

from accounts.models import Account, ApiKey, Group
from logs.ingest.service import ingest_calls
from logs.models import CallRecord
from tests.clock import PINNED, Clock, Instant
from tests.factories import (
    AccountFactory,
    ApiKeyFactory,
    GroupFactory,
    StaffUserFactory,
    SuperuserFactory,
    UserFactory,
    owner_of,
    record_dict,
)

# --- PostgreSQL-only tests ------------------------------------------------------------

POSTGRES_SKIP_REASON = "needs PostgreSQL: set DATABASE_URL=postgres://..."
_postgres_skipped: set[str] = set()


def on_postgresql() -> bool:
    return connections["default"].vendor == "postgresql"


# The whole run starts at the pinned instant too, so what runs outside a test
# (the migrations creating this month's partitions) never reads the wall clock.
_run_clock = time_machine.travel(PINNED.at.timestamp(), tick=True)


def pytest_configure(config):
    # Hashing with the production hasher costs ~0.3 s per user; tests need none of it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _run_clock.start()


def pytest_unconfigure(config):
    _run_clock.stop()


REPLICA_SKIP_REASON = "needs a read replica: set DATABASE_REPLICA_URLS (CI sets it on PostgreSQL)"

# Redis for the tests of the Redis cache (REDIS_URL); a database of its own is not
# needed: those tests use keys no one else does and remove them.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_SKIP_REASON = f"needs Redis at {TEST_REDIS_URL} (set TEST_REDIS_URL)"


def redis_answers() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    for marker, available, reason in (
        ("postgres", on_postgresql, POSTGRES_SKIP_REASON),
        ("replica", lambda: bool(settings.DATABASE_REPLICAS), REPLICA_SKIP_REASON),
        ("redis", redis_answers, REDIS_SKIP_REASON),
    ):
        if not any(item.get_closest_marker(marker) for item in items) or available():
            continue
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(skip)
                _postgres_skipped.add(item.nodeid)


@pytest.fixture(scope="session", autouse=True)
def _close_connections_before_dropping_test_databases(django_db_setup, django_db_blocker):
    """Replica aliases mirror the test database on connections of their own;
    close them all before pytest-django drops the database they point at."""
    yield
    with django_db_blocker.unblock():
        connections.close_all()


@pytest.fixture(autouse=True)
def clock(request) -> Iterator[Clock]:
    """Every test starts at a fixed instant: ``PINNED``, or each instant that
    ``@at_instants(...)`` parametrizes it with (see tests/clock.py).

    time-machine moves the process's clock, every thread's: ``timezone.now()``,
    ``datetime.now()``, ``time.time()``. It ticks on from the instant, so
    durations still pass. An instant with a zone sets ``TIME_ZONE`` for the
    test (``override_settings``: the live server's threads see it too).
    """
    instant: Instant = getattr(request, "param", PINNED)
    with ExitStack() as stack:
        # A timestamp, not the aware datetime: time-machine would also set the
        # process's TZ to the datetime's zone, which Django's TIME_ZONE owns.
        traveller = stack.enter_context(time_machine.travel(instant.at.timestamp(), tick=True))
        if instant.zone is not None:
            stack.enter_context(override_settings(TIME_ZONE=instant.zone))
        yield Clock(instant=instant, traveller=traveller)


# Fixtures through which a test reaches the database (the django_db mark aside).
_DATABASE_FIXTURES = frozenset(
    {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback"}
)


@pytest.fixture(autouse=True)
def _empty_cache(request, django_db_blocker):
    """Each test that may use the database starts with an empty cache (throttle
    counts, slow-call thresholds).

    The cache is the database cache (settings.CACHES), as in production, so a
    test without database access has no cache to read, and clearing it needs
    the test database: it is cleared outside the test's own transaction, so
    whatever a transactional test committed to it is gone too.
    """
    uses_database = request.node.get_closest_marker("django_db") is not None or bool(
        _DATABASE_FIXTURES & set(request.fixturenames)
    )
    if uses_database:
        from django.core.cache import cache

        request.getfixturevalue("django_db_setup")
        with django_db_blocker.unblock():
            cache.clear()
    yield


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = sum(
        1
        for report in terminalreporter.stats.get("skipped", [])
        if getattr(report, "nodeid", None) in _postgres_skipped
    )
    if skipped:
        tests = "test was" if skipped == 1 else "tests were"
        terminalreporter.write_sep(
            "!",
            f"{skipped} PostgreSQL-, replica- or Redis-only {tests} SKIPPED: no PostgreSQL "
            "DATABASE_URL, no DATABASE_REPLICA_URLS or no Redis given (run again with "
            "DATABASE_URL=postgres://... DATABASE_REPLICA_URLS=postgres://... and Redis "
            f"at {TEST_REDIS_URL})",
            yellow=True,
            bold=True,
        )


# --- people -------------------------------------------------------------------------


@pytest.fixture
def staff_user(db):
    """Support staff: sees every account (``is_staff`` + the back office's view permissions)."""
    return StaffUserFactory(username="support")


@pytest.fixture
def superuser(db):
    return SuperuserFactory(username="root")


@pytest.fixture
def outsider(db):
    """A login that belongs to no account."""
    return UserFactory(username="outsider")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(staff_user) -> Client:
    return logged_in(staff_user)


@pytest.fixture
def superuser_client(superuser) -> Client:
    return logged_in(superuser)


# --- groups and keys ------------------------------------------------------------------


@pytest.fixture
def default_group(db) -> Group:
    return GroupFactory(name="default")


@pytest.fixture
def vip_group(db) -> Group:
    return GroupFactory(name="vip", description="Priority capacity")


@pytest.fixture
def api_key(db, default_group) -> ApiKey:
    """One key (group ``default``) of its own account; the full key is ``api_key.secret``."""
    return ApiKeyFactory(name="ingest-test", group=default_group)


# --- the two-account world ------------------------------------------------------------


@dataclass
class AccountWorld:
    """One account as its owner knows it."""

    account: Account
    owner: Any
    key: ApiKey  # in group "default"
    vip_key: ApiKey  # in group "vip"
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def keys(self) -> list[ApiKey]:
        return [self.key, self.vip_key]

    @property
    def model_names(self) -> list[str]:
        return sorted({call.model for call in self.calls})

    @property
    def key_names(self) -> list[str]:
        return sorted(key.name for key in self.keys)


@dataclass
class TwoAccounts:
    a: AccountWorld
    b: AccountWorld
    default_group: Group
    vip_group: Group
    start: datetime  # the first call's time; calls follow at whole minutes

    @property
    def calls(self) -> list[CallRecord]:
        return [*self.a.calls, *self.b.calls]


def _account_world(
    slug: str, name: str, groups: tuple[Group, Group], models: tuple[str, str], start: datetime
) -> AccountWorld:
    default_group, vip_group = groups
    account = AccountFactory(name=name, slug=slug)
    owner = owner_of(account, username=f"owner-{slug}")
    key = ApiKeyFactory(account=account, name=f"{slug}-prod", group=default_group)
    vip_key = ApiKeyFactory(account=account, name=f"{slug}-batch", group=vip_group)
    everyday, premium = models
    records = [
        record_dict(key, model=everyday, created_at=start, usage="0.5", cost="0.00012"),
        record_dict(
            key,
            model=everyday,
            created_at=start + timedelta(minutes=1),
            call_type="embedding",
            usage="0.25",
            cost="0.00002",
        ),
        record_dict(
            vip_key,
            model=premium,
            created_at=start + timedelta(minutes=2),
            status_code=429,
            error_reason="rate_limit_exceeded",
            output_tokens=0,
            usage="0",
            cost="0",
        ),
        record_dict(
            vip_key,
            model=premium,
            created_at=start + timedelta(minutes=3),
            status_code=502,
            error_reason="upstream_unavailable",
            usage="1.125",
            cost="0.0031",
        ),
    ]
    created = ingest_calls(records).created_ids
    calls = list(CallRecord.objects.filter(pk__in=created).order_by("created_at"))
    return AccountWorld(account=account, owner=owner, key=key, vip_key=vip_key, calls=calls)


@pytest.fixture
def two_accounts(db, clock, default_group, vip_group) -> TwoAccounts:
    """Accounts A ("Acme Robotics") and B ("Globex"), four calls each, no shared
    model or key names. A's calls start at ``start``, a day before the test's
    instant; B's an hour later."""
    start = (clock.now - timedelta(days=1)).replace(second=0, microsecond=0)
    groups = (default_group, vip_group)
    a = _account_world("acme", "Acme Robotics", groups, ("gpt-4o-mini", "gpt-4o"), start)
    b_models = ("gemini-1.5-flash", "claude-3-5-sonnet")
    b = _account_world("globex", "Globex", groups, b_models, start + timedelta(hours=1))
    return TwoAccounts(a=a, b=b, default_group=default_group, vip_group=vip_group, start=start)


@pytest.fixture
def account_a(two_accounts) -> AccountWorld:
    return two_accounts.a


@pytest.fixture
def account_b(two_accounts) -> AccountWorld:
    return two_accounts.b


@pytest.fixture
def owner_a(account_a):
    return account_a.owner


@pytest.fixture
def owner_b(account_b):
    return account_b.owner


@pytest.fixture
def owner_a_client(owner_a) -> Client:
    return logged_in(owner_a)


@pytest.fixture
def owner_b_client(owner_b) -> Client:
    return logged_in(owner_b)
