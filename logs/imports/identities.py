"""The accounts, keys and pricing groups a source's rows name, found or created
once per import (``accounts.external``) and remembered: a million rows name a
few hundred of them."""

from __future__ import annotations

from accounts.external import ExternalKey, UnknownExternal, account_for, group_named, key_for
from accounts.models import Account, Source


class Identities:
    """Key prefixes and group names for a source's own ids, cached."""

    def __init__(self, source: Source, *, create: bool = True):
        self.source = source
        self.create = create
        self._accounts: dict[str, Account] = {}
        self._keys: dict[tuple[int, str], str] = {}
        self._groups: dict[str, str] = {}

    def account(self, external_id: str, name: str = "") -> Account:
        account = self._accounts.get(external_id)
        if account is None:
            account = account_for(self.source, external_id, name=name, create=self.create)
            self._accounts[external_id] = account
        return account

    def key_prefix(self, account: Account, key: ExternalKey, *, group_name: str = "") -> str:
        """The prefix of our key for the source's key (raises UnknownExternal)."""
        # By account too: a key id seen under another account is refused by key_for.
        slot = (account.pk, key.external_id)
        prefix = self._keys.get(slot)
        if prefix is None:
            api_key = key_for(self.source, account, key, group_name=group_name, create=self.create)
            prefix = self._keys[slot] = api_key.prefix
        return prefix

    def group(self, name: str) -> str | None:
        """Our pricing group's name for the source's group (None for none)."""
        name = name.strip()
        if not name:
            return None
        found = self._groups.get(name)
        if found is None:
            found = self._groups[name] = group_named(name).name
        return found


__all__ = ["ExternalKey", "Identities", "UnknownExternal"]
