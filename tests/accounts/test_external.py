"""Accounts and keys a gateway's records bring in: found by the source's own id,
created once, never holding a secret."""

import hashlib

import pytest

from accounts.external import ExternalKey, UnknownExternal, account_for, key_for
from accounts.models import Account, ApiKey, Source
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def test_a_team_seen_twice_is_one_account():
    first = account_for(Source.LITELLM, "team-a", name="Team A", create=True)
    again = account_for(Source.LITELLM, "team-a", name="renamed upstream", create=True)

    assert again.pk == first.pk
    assert Account.objects.filter(source=Source.LITELLM).count() == 1
    assert first.name == "Team A"


def test_the_same_id_from_two_sources_is_two_accounts():
    litellm = account_for(Source.LITELLM, "42", name="Acme", create=True)
    newapi = account_for(Source.NEWAPI, "42", name="Acme", create=True)

    assert litellm.pk != newapi.pk
    assert litellm.slug != newapi.slug


def test_an_unknown_account_is_refused_when_creating_is_off():
    with pytest.raises(UnknownExternal, match="team-x"):
        account_for(Source.LITELLM, "team-x", create=False)
    assert not Account.objects.exists()


def test_a_key_is_known_by_its_hash_and_alias_never_a_secret():
    account = account_for(Source.LITELLM, "team-a", create=True)
    key_hash = hashlib.sha256(b"sk-the-real-litellm-key").hexdigest()

    key = key_for(
        Source.LITELLM,
        account,
        ExternalKey(external_id=key_hash, alias="prod", key_hash=key_hash),
        create=True,
    )

    stored = ApiKey.objects.get(pk=key.pk)
    assert stored.name == "prod"
    assert stored.secret_hash == key_hash
    assert stored.prefix.startswith("ll-")
    assert len(stored.prefix) == ApiKey.PREFIX_LENGTH
    assert stored.group.name == "default"
    assert key_for(Source.LITELLM, account, ExternalKey(key_hash), create=False).pk == key.pk


def test_two_keys_with_one_alias_get_two_names():
    account = account_for(Source.NEWAPI, "7", create=True)

    one = key_for(Source.NEWAPI, account, ExternalKey("1", alias="prod"), create=True)
    two = key_for(Source.NEWAPI, account, ExternalKey("2", alias="prod"), create=True)

    assert one.name == "prod"
    assert two.name.startswith("prod (") and two.name != one.name
    assert one.prefix != two.prefix


def test_a_key_is_never_moved_to_another_account():
    account = account_for(Source.NEWAPI, "7", create=True)
    key_for(Source.NEWAPI, account, ExternalKey("1"), create=True)

    with pytest.raises(UnknownExternal, match="another account"):
        key_for(Source.NEWAPI, AccountFactory(), ExternalKey("1"), create=True)


def test_a_key_in_a_group_the_site_lacks_creates_that_group():
    account = account_for(Source.NEWAPI, "7", create=True)

    key = key_for(Source.NEWAPI, account, ExternalKey("1"), group_name="svip", create=True)

    assert key.group.name == "svip"
    assert key.group.price_ratio == 1
