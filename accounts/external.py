"""Accounts and keys that a gateway's own records bring in.

A LiteLLM proxy knows its teams and keys, new-api its users and tokens; calls
from them name those, never a key of ours. Each is found here by the
source's own id (a team id, LiteLLM's SHA-256 of the key, a token id) and,
when allowed, created on first sight, so that live calls and imported history
of one key land on one key. No secret is ever stored: a key from a source is
known by its hash (when the source gives one) and its alias.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import Account, ApiKey, Group, Source

# Keys from a source get a prefix of ours, "<tag>-" and hex, as long as the
# prefixes calls name keys by: records from a mapped source then name their key
# like any other, and the admin shows something short to search for.
_PREFIX_TAGS = {
    Source.LITELLM: "ll",
    Source.NEWAPI: "na",
    Source.ONEAPI: "oa",
    Source.OPENTELEMETRY: "ot",
}

DEFAULT_GROUP = "default"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class UnknownExternal(LookupError):
    """An account or key the source names is not known here and may not be created."""


@dataclass(frozen=True)
class ExternalKey:
    """What a source says about one of its keys."""

    external_id: str
    alias: str = ""
    key_hash: str = ""  # the SHA-256 hex of the whole key, when the source has it


def _digest(source: str, external_id: str) -> str:
    return hashlib.sha256(f"{source}:{external_id}".encode()).hexdigest()


def account_for(source: Source, external_id: str, *, name: str = "", create: bool) -> Account:
    """The account a source's ``external_id`` stands for; created on first
    sight when ``create``, else UnknownExternal."""
    account = Account.objects.filter(source=source, external_id=external_id).first()
    if account is not None:
        return account
    if not create:
        raise UnknownExternal(f"no account for {source.label} id {external_id!r}")
    digest = _digest(source, external_id)
    label = (name or external_id).strip()[:150]
    account = Account(
        name=label or f"{source.label} {digest[:8]}",
        # Unique by construction: the digest tells two sources' same names apart.
        slug=f"{slugify(label)[:60] or source.value}-{digest[:10]}",
        source=source,
        external_id=external_id,
    )
    return _create_or_get(account, Account.objects.filter(source=source, external_id=external_id))


def key_for(
    source: Source,
    account: Account,
    key: ExternalKey,
    *,
    group_name: str = "",
    create: bool,
) -> ApiKey:
    """The key a source's ``key.external_id`` stands for, in ``account``;
    created on first sight when ``create``, else UnknownExternal.

    A key is one source's key wherever it shows up: the same id under another
    account is refused rather than moved, as calls already name its account.
    """
    existing = ApiKey.objects.filter(source=source, external_id=key.external_id).first()
    if existing is not None:
        if existing.account_id != account.pk:
            raise UnknownExternal(
                f"{source.label} key {key.external_id!r} belongs to another account"
            )
        return existing
    if not create:
        raise UnknownExternal(f"no API key for {source.label} key {key.external_id!r}")
    digest = _digest(source, key.external_id)
    alias = key.alias.strip()[:80] or f"{source.label} key {digest[:8]}"
    if ApiKey.objects.filter(account=account, name=alias).exists():
        alias = f"{alias} ({digest[:8]})"
    prefix_head = f"{_PREFIX_TAGS[source]}-"
    width = ApiKey.PREFIX_LENGTH - len(prefix_head)
    prefix = prefix_head + digest[:width]
    if ApiKey.objects.filter(prefix=prefix).exists():
        # 36 bits rarely collide; when they do, a later window of the digest.
        prefix = prefix_head + digest[width : 2 * width]
    api_key = ApiKey(
        account=account,
        name=alias,
        group=group_named(group_name or DEFAULT_GROUP),
        prefix=prefix,
        secret_hash=key.key_hash if _SHA256_HEX.fullmatch(key.key_hash) else "",
        source=source,
        external_id=key.external_id,
    )
    return _create_or_get(
        api_key, ApiKey.objects.filter(source=source, external_id=key.external_id)
    )


def group_named(name: str) -> Group:
    """A pricing group by name, created at the neutral ratio when a source
    names one this site has not set up (prices are set in the admin)."""
    group, _ = Group.objects.get_or_create(name=slugify(name)[:64] or DEFAULT_GROUP)
    return group


def _create_or_get(instance, same):
    """Save ``instance``; if a concurrent request created the same one first,
    that one (the savepoint keeps the caller's transaction usable)."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError:
        found = same.first()
        if found is None:
            raise
        return found
    return instance
