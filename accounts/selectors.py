"""Reads for accounts. What a user may see is decided in ``accounts.scoping``."""

from django.db.models import QuerySet

from accounts.models import Account


def accounts_of(user) -> QuerySet[Account]:
    """Accounts a user is a member of (for the portal's account switcher)."""
    if not user.is_authenticated:
        return Account.objects.none()
    return Account.objects.filter(memberships__user=user).distinct()
