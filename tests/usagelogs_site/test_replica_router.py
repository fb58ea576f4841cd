"""Reads of call data go to read replicas; writes, and reads inside a
transaction, stay on the primary (usagelogs_site/routers.py)."""

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import override_settings

from accounts.models import Account
from logs.ingest.service import ingest_calls
from logs.models import CallRecord
from logs.read.scope import visible_calls
from tests.factories import ApiKeyFactory, StaffUserFactory, record_dict
from usagelogs_site.routers import ReadReplicaRouter

router = ReadReplicaRouter()


@override_settings(DATABASE_REPLICAS=["replica_1", "replica_2"])
def test_reads_of_calls_go_to_a_replica_outside_transactions(transactional_db):
    assert router.db_for_read(CallRecord) in {"replica_1", "replica_2"}


@override_settings(DATABASE_REPLICAS=["replica_1"])
def test_reads_inside_a_transaction_stay_on_the_primary(transactional_db):
    with transaction.atomic():
        assert router.db_for_read(CallRecord) == "default"


@override_settings(DATABASE_REPLICAS=["replica_1"])
def test_accounts_and_logins_are_always_read_from_the_primary(transactional_db):
    assert router.db_for_read(Account) is None
    assert router.db_for_read(get_user_model()) is None


@override_settings(DATABASE_REPLICAS=[])
def test_without_replicas_everything_uses_the_primary(transactional_db):
    assert router.db_for_read(CallRecord) is None


def test_writes_and_migrations_only_touch_the_primary():
    assert router.db_for_write(CallRecord) == "default"
    assert router.allow_migrate("default", "logs")
    assert not router.allow_migrate("replica_1", "logs")


@pytest.mark.replica
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_the_call_list_is_read_from_the_replica_database():
    key = ApiKeyFactory()
    record = record_dict(key)
    ingest_calls([record])
    staff = StaffUserFactory()

    calls = visible_calls(staff).filter(request_id=record["request_id"])

    assert calls.db.startswith("replica_")
    assert [call.request_id for call in calls] == [record["request_id"]]
