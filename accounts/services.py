"""Writes for accounts: creating and revoking API keys."""

import hashlib
import secrets
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import AccessToken, Account, ApiKey, Group

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
    if len(secret) < 2 * ApiKey.PREFIX_LENGTH:
        # The prefix is stored in clear: a short secret would be stored whole.
        raise ValueError(f"an API key must be at least {2 * ApiKey.PREFIX_LENGTH} characters")
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


INGEST_PERMISSION = "logs.ingest_callrecord"


@dataclass(frozen=True)
class IssuedToken:
    token: AccessToken
    secret: str  # the full token; shown once and never stored


def is_service_user(user) -> bool:
    """A user that programs act as: holds the ingest permission and belongs to no
    account, so an owner's credentials can never write calls."""
    return user.is_active and user.has_perm(INGEST_PERMISSION) and not user.memberships.exists()


@transaction.atomic
def create_access_token(*, user, name: str, can_ingest: bool = False) -> IssuedToken:
    if can_ingest and not is_service_user(user):
        raise ValidationError(
            {
                "can_ingest": "Only a service user (with the ingest permission and no account "
                "membership) may hold an ingest token."
            }
        )
    secret = AccessToken.SCHEME + secrets.token_urlsafe(32)
    token = AccessToken(
        user=user,
        name=name,
        prefix=secret[: AccessToken.PREFIX_LENGTH],
        token_hash=hash_secret(secret),
        can_ingest=can_ingest,
    )
    token.full_clean(exclude=["prefix", "token_hash", "user"])
    token.save()
    return IssuedToken(token=token, secret=secret)


def revoke_access_token(token: AccessToken) -> AccessToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
