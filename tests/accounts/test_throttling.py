"""API throttles count in a cache every worker process shares.

gunicorn runs several worker processes; a cache in each process's memory
lets each of them count on its own, so four workers let four times the limit
through. The counters live in the database cache by default and in Redis when
REDIS_URL is set. The tests here count through separate processes, and read
a counter the API wrote through a cache connection of their own.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from rest_framework.throttling import SimpleRateThrottle

from accounts.api.throttling import TokenRateThrottle
from tests.api.helpers import LIST_URL, token_client, token_for
from tests.conftest import TEST_REDIS_URL
from tests.factories import owner_of

PROJECT = Path(__file__).resolve().parents[2]

# One worker process: asks the API's throttle ``attempts`` times for one
# caller's bucket and prints how many were let through.
WORKER = """
import sys
from types import SimpleNamespace

import django

django.setup()

from django.core.management import call_command

from accounts.api.throttling import TokenRateThrottle

call_command("createcachetable", verbosity=0)
caller, attempts = sys.argv[1], int(sys.argv[2])
request = SimpleNamespace(
    auth=None, user=SimpleNamespace(is_authenticated=True, pk=caller), META={}
)
print(sum(TokenRateThrottle().allow_request(request, None) for _ in range(attempts)))
"""


def settings_from(environment: dict[str, str], monkeypatch) -> dict:
    """The project's settings module run afresh under ``environment``."""
    for name in ("REDIS_URL", "DEBUG", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(PROJECT / "usagelogs_site" / "settings.py"))


def run_worker(environment: dict[str, str], caller: str, attempts: int) -> int:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "DATABASE_REPLICA_URLS"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="usagelogs_site.settings",
        USAGELOGS_API_RATE="3/min",
        PYTHONPATH=str(PROJECT),
        **environment,
    )
    done = subprocess.run(
        [sys.executable, "-c", WORKER, caller, str(attempts)],
        env=env,
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


# --- the settings -----------------------------------------------------------------------


def test_the_default_cache_is_the_database_every_process_reads(monkeypatch):
    settings = settings_from({}, monkeypatch)

    cache = settings["CACHES"]["default"]
    assert cache["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    assert cache["LOCATION"]


def test_redis_url_switches_the_cache_to_redis(monkeypatch):
    settings = settings_from({"REDIS_URL": "redis://cache.internal:6380/2"}, monkeypatch)

    assert settings["CACHES"]["default"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.internal:6380/2",
    }


def test_an_empty_redis_url_keeps_the_database_cache(monkeypatch):
    settings = settings_from({"REDIS_URL": " "}, monkeypatch)

    assert settings["CACHES"]["default"]["BACKEND"].endswith("DatabaseCache")


# --- one count across processes ------------------------------------------------------------


def test_two_worker_processes_share_one_count(tmp_path):
    """Two processes on one database: the second finds the first one's count."""
    database = {"DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}"}
    caller = uuid.uuid4().hex

    first = run_worker(database, caller, 3)
    second = run_worker(database, caller, 3)

    assert (first, second) == (3, 0)


@pytest.mark.redis
def test_two_worker_processes_share_one_count_in_redis(tmp_path):
    import redis

    environment = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "REDIS_URL": TEST_REDIS_URL,
    }
    caller = uuid.uuid4().hex
    try:
        first = run_worker(environment, caller, 3)
        second = run_worker(environment, caller, 3)
        stored = redis.Redis.from_url(TEST_REDIS_URL).keys(f"*user:{caller}*")
    finally:
        client = redis.Redis.from_url(TEST_REDIS_URL)
        for key in client.keys(f"*user:{caller}*"):
            client.delete(key)

    assert (first, second) == (3, 0)
    assert len(stored) == 1  # the counter is in Redis, not in either process


# --- the API's counter, read back ----------------------------------------------------------


@pytest.fixture
def tiny_rates(monkeypatch, settings):
    rates = {"token": "3/min", "ingest": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    # DRF read the rates into the throttle class when it was imported.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    return rates


@pytest.mark.django_db
def test_the_apis_counter_is_in_the_shared_cache_table(tiny_rates, api_key, settings):
    secret = token_for(owner_of(api_key.account))
    api = token_client(secret)
    for _ in range(3):
        assert api.get(LIST_URL).status_code == 200
    assert api.get(LIST_URL).status_code == 429

    # A cache connection of its own, as another worker process opens one.
    other_worker = caches.create_connection("default")
    token = api_key.account.memberships.get().user.access_tokens.get()
    key = TokenRateThrottle.cache_format % {"scope": "token", "ident": f"token:{token.pk}"}
    assert len(other_worker.get(key)) == 3
    # And it is a row of the database table every worker reads.
    table = connection.ops.quote_name(settings.CACHES["default"]["LOCATION"])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT cache_key FROM {table}")
        stored = [row[0] for row in cursor.fetchall()]
    assert any(key in stored_key for stored_key in stored)


@pytest.mark.django_db
def test_migrate_creates_the_cache_table(settings):
    """``migrate`` is all a new database needs (make run, CI, production)."""
    table = settings.CACHES["default"]["LOCATION"]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(table)}")
    assert table not in connection.introspection.table_names()

    call_command("migrate", verbosity=0)

    assert table in connection.introspection.table_names()
    caches["default"].set("after-migrate", "kept")
    assert caches.create_connection("default").get("after-migrate") == "kept"
