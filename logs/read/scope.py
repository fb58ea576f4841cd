"""Which calls, pricing groups, model names, tags and end users a user may see.

Every read of calls starts from ``visible_calls``; who may see which
accounts is decided once, in ``accounts.scoping``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import (
    Q,
    QuerySet,
)

from accounts.models import Account, ApiKey, Group
from accounts.scoping import scope_to_visible, visible_account_ids
from logs.models import (
    AccountEndUser,
    AccountGroup,
    AccountModel,
    AccountTag,
    CallRecord,
)

if TYPE_CHECKING:
    from accounts.scoping import User


def visible_calls(user: User, *, account: Account | None = None) -> QuerySet[CallRecord]:
    """Calls ``user`` may see. The start of every read of calls."""
    return scope_to_visible(CallRecord.objects.all(), "account_id", user, account)


def visible_groups(user: User, *, account: Account | None = None) -> QuerySet[Group]:
    """Pricing groups are shared, but which ones an account uses is its own
    business: non-staff see only groups their keys belong to or that their
    calls were made in (AccountGroup, kept by ingest)."""
    ids = visible_account_ids(user, account=account)
    if ids is None:
        return Group.objects.all()
    key_groups = ApiKey.objects.filter(account_id__in=ids).values("group_id")
    call_groups = AccountGroup.objects.filter(account_id__in=ids).values("group_id")
    return Group.objects.filter(Q(pk__in=key_groups) | Q(pk__in=call_groups))


def model_names(user: User, *, account: Account | None = None) -> list[str]:
    """Model names for filter choices, read from AccountModel (kept by ingest),
    not from a DISTINCT over the calls table."""
    rows = scope_to_visible(AccountModel.objects.all(), "account_id", user, account)
    return sorted(set(rows.values_list("model", flat=True)))


def tag_names(user: User, *, account: Account | None = None) -> list[str]:
    """Tags for filter choices, read from AccountTag (kept by ingest): only
    those of the accounts ``user`` may see."""
    rows = scope_to_visible(AccountTag.objects.all(), "account_id", user, account)
    return sorted(set(rows.values_list("tag", flat=True)))


# An account may name thousands of end users: the filter lists this many.
END_USER_CHOICES = 100


def end_user_names(
    user: User, *, account: Account | None = None, limit: int = END_USER_CHOICES
) -> list[str]:
    """End users for filter choices (the first ``limit`` by name), read from
    AccountEndUser (kept by ingest): only those of the accounts ``user`` may see."""
    rows = scope_to_visible(AccountEndUser.objects.all(), "account_id", user, account)
    names = rows.order_by("end_user").values_list("end_user", flat=True).distinct()
    return list(names[:limit])


def end_user_seen(user: User, name: str, *, account: Account | None = None) -> bool:
    """Whether ``name`` is an end user of an account ``user`` may see (offered
    or not among the first choices)."""
    rows = scope_to_visible(AccountEndUser.objects.all(), "account_id", user, account)
    return rows.filter(end_user=name).exists()
