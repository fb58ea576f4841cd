"""Who may see which accounts: the one place that decides it.

Every surface that shows account data (admin, portal, filter choices,
autocomplete, export, API, stats) asks ``visible_account_ids``, directly or
through ``scope_to_visible``. Support staff who may read every account are
those ``reads_every_account`` says so of; anyone else sees the accounts they
are a member of, and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django.db.models import (
    QuerySet,
)

from accounts.models import Account, ApiKey

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    User = AbstractBaseUser | AnonymousUser


# The permission the staff admin's call list checks. Reading every account's
# calls needs it on every surface (admin, API, exports, stats), together with
# ``is_staff``: see ``reads_every_account``.
READ_EVERY_ACCOUNT_PERMISSION = "logs.view_callrecord"


def reads_every_account(user: User) -> bool:
    """Whether ``user`` is support staff who may read every account's calls.

    It takes both ``is_staff`` and ``READ_EVERY_ACCOUNT_PERMISSION``: the staff
    flag alone only opens the admin site, and the call list there asks for this
    very function (``CallRecordAdmin.has_view_permission``), so the admin's
    check and the scope of the API and exports cannot drift apart. Staff
    without the permission are treated like anyone else. Internal details of a
    call (the upstream) follow the same rule.
    """
    return bool(
        user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(READ_EVERY_ACCOUNT_PERMISSION)
    )


def visible_account_ids(user: User, *, account: Account | None = None) -> list[int] | None:
    """The ids of the accounts whose calls ``user`` may see; ``None`` means all.

    Support staff (``reads_every_account``: ``is_staff`` and the call list's
    view permission) see every account. Anyone else, staff without that
    permission included, sees the accounts they are a member of, if any.
    ``account`` narrows the answer to that one account (the portal's current
    account); asking for an account the user may not see gives an empty list,
    never an error that would confirm it exists.
    """
    if not user.is_authenticated or not user.is_active:
        return []
    allowed = None if reads_every_account(user) else _member_account_ids(user)
    if account is None:
        return allowed
    if allowed is None or account.pk in allowed:
        return [account.pk]
    return []


# Memberships read during the current request, by user id (see remember_memberships).
_request_memberships: ContextVar[dict[int, list[int]] | None] = ContextVar(
    "request_memberships", default=None
)


@contextmanager
def remember_memberships() -> Iterator[None]:
    """Within this block, read each user's memberships once.

    A page asks many times (the list, each filter's choices, each rollup level
    of the totals); ``accounts.middleware.ScopeCacheMiddleware`` wraps every
    request in this. Outside it (commands, the shell, tests calling selectors
    directly) every call reads the memberships afresh, so a change is seen at once.
    """
    token = _request_memberships.set({})
    try:
        yield
    finally:
        _request_memberships.reset(token)


def _member_account_ids(user: User) -> list[int]:
    remembered = _request_memberships.get()
    if remembered is not None and user.pk in remembered:
        return list(remembered[user.pk])
    ids = list(user.memberships.values_list("account_id", flat=True))
    if remembered is not None:
        remembered[user.pk] = ids
    return list(ids)


def visible_accounts(user: User) -> QuerySet[Account]:
    return scope_to_visible(Account.objects.all(), "pk", user, None)


def visible_keys(user: User, *, account: Account | None = None) -> QuerySet[ApiKey]:
    return scope_to_visible(ApiKey.objects.all(), "account_id", user, account)


def key_names(user: User, *, account: Account | None = None) -> list[str]:
    return sorted(set(visible_keys(user, account=account).values_list("name", flat=True)))


def scope_to_visible(
    queryset: QuerySet, field: str, user: User, account: Account | None
) -> QuerySet:
    ids = visible_account_ids(user, account=account)
    if ids is None:
        return queryset
    return queryset.filter(**{f"{field}__in": ids})
