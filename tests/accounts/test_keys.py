"""API keys: the full key is handed out once and never stored; keys that calls
refer to are revoked, never deleted."""

import hashlib

import pytest
from django.db import connection
from django.db.models import ProtectedError
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import create_api_key, generate_secret, hash_secret, revoke_api_key
from tests.factories import AccountFactory, ApiKeyFactory, GroupFactory, make_call

pytestmark = pytest.mark.django_db


def raw_rows(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
        return cursor.fetchall()


def test_create_api_key_returns_the_secret_and_stores_only_prefix_and_hash():
    account, group = AccountFactory(), GroupFactory()

    issued = create_api_key(account=account, name="prod", group=group)

    stored = ApiKey.objects.get(pk=issued.api_key.pk)
    assert issued.secret.startswith("sk-")
    assert len(issued.secret) > ApiKey.PREFIX_LENGTH
    assert stored.prefix == issued.secret[: ApiKey.PREFIX_LENGTH]
    assert stored.secret_hash == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert stored.secret_hash == hash_secret(issued.secret)
    assert not hasattr(stored, "secret")


def test_no_column_of_the_key_table_holds_the_full_key():
    issued = [
        create_api_key(account=AccountFactory(), name=f"k{n}", group=GroupFactory())
        for n in range(3)
    ]

    rows = raw_rows(ApiKey._meta.db_table)

    assert len(rows) == len(issued)
    for key in issued:
        for row in rows:
            for value in row:
                assert key.secret not in str(value)


def test_each_key_gets_a_fresh_secret_and_a_distinct_prefix():
    account, group = AccountFactory(), GroupFactory()
    issued = [create_api_key(account=account, name=f"k{n}", group=group) for n in range(5)]

    assert len({key.secret for key in issued}) == len(issued)
    assert len({key.api_key.prefix for key in issued}) == len(issued)


def test_a_given_secret_is_used_as_is():
    secret = generate_secret()

    issued = create_api_key(
        account=AccountFactory(), name="demo", group=GroupFactory(), secret=secret
    )

    assert issued.secret == secret
    assert issued.api_key.prefix == secret[: ApiKey.PREFIX_LENGTH]
    assert issued.api_key.secret_hash == hash_secret(secret)


def test_the_factory_exposes_the_secret_of_a_real_key():
    key = ApiKeyFactory()

    assert key.prefix == key.secret[: ApiKey.PREFIX_LENGTH]
    assert ApiKey.objects.get(pk=key.pk).secret_hash == hash_secret(key.secret)


def test_revoke_sets_revoked_at_once():
    key = ApiKeyFactory()
    before = timezone.now()

    revoke_api_key(key)
    first = ApiKey.objects.get(pk=key.pk).revoked_at
    revoke_api_key(ApiKey.objects.get(pk=key.pk))

    assert first is not None
    assert before <= first <= timezone.now()
    assert ApiKey.objects.get(pk=key.pk).revoked_at == first
    assert ApiKey.objects.get(pk=key.pk).is_revoked
    assert not ApiKey.objects.active().filter(pk=key.pk).exists()


def test_a_key_without_calls_can_be_deleted():
    key = ApiKeyFactory()

    key.delete()

    assert not ApiKey.objects.filter(prefix=key.prefix).exists()


def test_a_key_that_calls_refer_to_cannot_be_deleted():
    key = ApiKeyFactory()
    make_call(key)

    with pytest.raises(ProtectedError):
        ApiKey.objects.get(pk=key.pk).delete()

    assert ApiKey.objects.filter(pk=key.pk).exists()
