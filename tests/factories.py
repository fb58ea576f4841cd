"""Test data, in one place.

Accounts, users, groups and memberships are plain factory-boy factories. Two
things are not, on purpose, because the app has one way to make them:

* API keys go through ``accounts.services.create_api_key`` (real prefix and
  hash). ``ApiKeyFactory()`` returns the saved ``ApiKey`` with the full key it
  was issued with on its ``secret`` attribute (never stored in the database).
* Calls go through the ingest service ``logs.ingest.ingest_calls``.
  ``record_dict(api_key, **overrides)`` builds one valid ingest record (the
  JSON object a gateway sends); ``make_call(api_key, **overrides)`` ingests one
  and returns the stored ``CallRecord``; ``make_calls`` ingests several in one
  batch. ``CallRecordFactory`` wraps the same two for factory-boy style:
  ``CallRecordFactory(api_key=key, model="x")`` stores a call,
  ``CallRecordFactory.build(api_key=key)`` gives the record dict.
* Rollups: ingest leaves what calls add to them pending until a fold (reads
  are exact either way); ``fold_rollups()`` folds everything pending, for
  tests that look at the rollup levels themselves.

Overrides in ``record_dict``: any ingest field by name; ``OMIT`` removes a
field; a ``datetime`` for ``created_at`` is written as ISO 8601 (a naive one
stays naive, so it is refused, as it should be); ``usage``/``cost`` may be
``Decimal``; ``api_key`` may be an ``ApiKey`` or a prefix string; ``group`` an
``Group`` or a name.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import Account, ApiKey, Group, Membership
from accounts.services import create_api_key, revoke_api_key
from logs.ingest.service import IngestResult, ingest_calls
from logs.models import CallRecord, ModelPrice
from logs.rollups.fold import fold_pending_rollups

User = get_user_model()

TEST_PASSWORD = "test-password-123"

# Permissions a support-staff login needs to read the back office.
SUPPORT_PERMISSIONS = (
    "logs.view_callrecord",
    "accounts.view_account",
    "accounts.view_membership",
    "accounts.view_group",
    "accounts.view_apikey",
)


def grant(user, *permissions: str) -> None:
    """Give ``user`` permissions named ``"app_label.codename"``."""
    for name in permissions:
        app_label, codename = name.split(".", 1)
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    # Django caches permissions on the instance.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)


# --- people and accounts ------------------------------------------------------------


class UserFactory(DjangoModelFactory):
    """An ordinary login (no staff flag). Password: ``TEST_PASSWORD``.

    ``UserFactory(permissions=["logs.view_callrecord"])`` grants permissions.
    """

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(TEST_PASSWORD)
    is_active = True
    is_staff = False
    is_superuser = False

    @factory.post_generation
    def permissions(self, create: bool, extracted: Iterable[str] | None, **kwargs):
        if create and extracted:
            grant(self, *extracted)


class StaffUserFactory(UserFactory):
    """Support staff: ``is_staff`` with the view permissions of the back office."""

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True

    @factory.post_generation
    def permissions(self, create: bool, extracted: Iterable[str] | None, **kwargs):
        if create:
            grant(self, *(SUPPORT_PERMISSIONS if extracted is None else extracted))


class SuperuserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    is_staff = True
    is_superuser = True


class AccountFactory(DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")
    slug = factory.Sequence(lambda n: f"account-{n}")
    is_active = True


class GroupFactory(DjangoModelFactory):
    """A pricing group. Names are unique: ``GroupFactory(name="vip")`` reuses an existing one."""

    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group-{n}")
    price_ratio = Decimal("1")


class ModelPriceFactory(DjangoModelFactory):
    """A price of the price list, for every group unless ``group`` is given."""

    class Meta:
        model = ModelPrice

    model = "gpt-4o-mini"
    group = None
    valid_from = datetime(2026, 1, 1, tzinfo=UTC)
    input_per_million = Decimal("2.50")
    cached_input_per_million = Decimal("1.25")
    cache_write_per_million = Decimal("3.125")
    output_per_million = Decimal("10")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    account = factory.SubFactory(AccountFactory)
    role = Membership.Role.OWNER


def owner_of(account: Account, **user_fields) -> Any:
    """A new user who owns ``account``."""
    user = UserFactory(**user_fields)
    MembershipFactory(user=user, account=account, role=Membership.Role.OWNER)
    return user


class ApiKeyFactory(DjangoModelFactory):
    """An API key made by ``create_api_key``; the full key is on ``.secret``.

    ``ApiKeyFactory(secret="sk-...")`` fixes the key; ``ApiKeyFactory(revoked=True)``
    or ``revoked_at=...`` revokes it after creation.
    """

    class Meta:
        model = ApiKey

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"key-{n}")
    group = factory.SubFactory(GroupFactory)
    secret = None
    revoked_at = None
    revoked = False

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise TypeError("API keys only exist through create_api_key: use ApiKeyFactory()")

    @classmethod
    def _create(cls, model_class, *args, secret=None, revoked_at=None, revoked=False, **kwargs):
        issued = create_api_key(secret=secret, **kwargs)
        api_key = issued.api_key
        if revoked_at is not None:
            api_key.revoked_at = revoked_at
            api_key.save(update_fields=["revoked_at"])
        elif revoked:
            revoke_api_key(api_key)
        api_key.secret = issued.secret
        return api_key


# --- calls (through the ingest service) -----------------------------------------------


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()
"""``record_dict(key, model=OMIT)`` leaves the field out of the record."""

_request_ids = itertools.count(1)


def next_request_id() -> str:
    return f"req-test-{next(_request_ids):07d}"


def iso(moment: datetime) -> str:
    """ISO 8601 as a gateway sends it (a naive datetime stays naive)."""
    return moment.isoformat()


def record_dict(api_key: ApiKey | str, /, **overrides: Any) -> dict[str, Any]:
    """One valid ingest record for ``api_key`` (an ApiKey or its prefix)."""
    prefix = api_key.prefix if isinstance(api_key, ApiKey) else api_key
    record: dict[str, Any] = {
        "request_id": next_request_id(),
        "created_at": timezone.now() - timedelta(minutes=5),
        "api_key": prefix,
        "call_type": "chat",
        "model": "gpt-4o-mini",
        "endpoint": "/v1/chat/completions",
        "stream": False,
        "status_code": 200,
        "duration_ms": 1500,
        "ttft_ms": 250,
        "input_tokens": 120,
        "output_tokens": 30,
        "usage": "0.5",
        "cost": "0.00012",
        "client_ip": "203.0.113.7",
        "request": {
            "params": {"model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 256},
            "headers": {"User-Agent": "openai-python/1.54"},
            "body": {"messages": [{"role": "user", "content": "Hello there"}]},
        },
        "response": {"choices": [{"message": {"role": "assistant", "content": "Hi!"}}]},
    }
    record.update(overrides)
    for name, value in list(record.items()):
        if value is OMIT:
            del record[name]
        elif isinstance(value, datetime):
            record[name] = iso(value)
        elif isinstance(value, Decimal):
            record[name] = str(value)
        elif isinstance(value, Group):
            record[name] = value.name
        elif isinstance(value, ApiKey):
            record[name] = value.prefix
    return record


def ingest(*records: dict[str, Any]) -> IngestResult:
    """Ingest records as one batch (a thin alias that reads well in tests)."""
    return ingest_calls(list(records))


def make_call(api_key: ApiKey | None = None, **overrides: Any) -> CallRecord:
    """Ingest one record and return the stored CallRecord (a new key if none is given)."""
    api_key = api_key if api_key is not None else ApiKeyFactory()
    record = record_dict(api_key, **overrides)
    ingest_calls([record])
    return CallRecord.objects.get(request_id=record["request_id"])


def make_calls(api_key: ApiKey, count: int, **overrides: Any) -> list[CallRecord]:
    """Ingest ``count`` records (same overrides, fresh request ids) in one batch."""
    records = [record_dict(api_key, **overrides) for _ in range(count)]
    result = ingest_calls(records)
    return list(CallRecord.objects.filter(pk__in=result.created_ids).order_by("pk"))


def fold_rollups() -> int:
    """Fold every pending rollup delta into the rollup levels, as the folder does
    shortly after each ingest (after its commit: never inside a test's
    transaction). Returns how many deltas were folded."""
    folded = 0
    while (result := fold_pending_rollups()) is not None and result.deltas:
        folded += result.deltas
    return folded


class CallRecordFactory(factory.Factory):
    """``CallRecordFactory(api_key=key, **fields)`` ingests one record and returns
    the stored CallRecord; ``.build(...)`` returns the record dict instead."""

    class Meta:
        model = dict

    api_key = factory.LazyFunction(lambda: ApiKeyFactory())

    @classmethod
    def _build(cls, model_class, *args, api_key, **overrides):
        return record_dict(api_key, **overrides)

    @classmethod
    def _create(cls, model_class, *args, api_key, **overrides):
        return make_call(api_key, **overrides)
