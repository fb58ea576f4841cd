"""Writes for accounts: creating and revoking API keys."""

import hashlib
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, ApiKey, Group

KEY_SCHEME = "sk-"


def hash_secret(secret: str) -> str:
    """SHA-256 of the whole key: keys are long random strings, so no salt or KDF is needed."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str  # the full key; shown once and never stored


def generate_secret() -> str:
    return KEY_SCHEME + secrets.token_urlsafe(36).replace("-", "x").replace("_", "y")


@transaction.atomic
def create_api_key(
    *, account: Account, name: str, group: Group, secret: str | None = None
) -> IssuedKey:
    """Create a key and return it with its full secret, which is never stored.

    ``secret`` lets demo data and tests create reproducible keys; production
    callers leave it out and get a fresh random one.
    """
    secret = secret or generate_secret()
    api_key = ApiKey(
        account=account,
        name=name,
        group=group,
        prefix=secret[: ApiKey.PREFIX_LENGTH],
        secret_hash=hash_secret(secret),
    )
    api_key.full_clean(exclude=["prefix", "secret_hash"])
    api_key.save()
    return IssuedKey(api_key=api_key, secret=secret)


def revoke_api_key(api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key
