"""Demo logins: a support person and an account owner, with published passwords.

Only ``manage.py seed_demo`` calls this. The passwords are in the README on
purpose, so these users must never exist on a database anyone else can reach.
"""

from dataclasses import dataclass, replace

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Account, Membership


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    who: str
    url: str  # path of the site this login is for


SUPPORT = DemoLogin("support", "support-demo", "support staff (sees every account)", "/admin/")
OWNER = DemoLogin("owner", "owner-demo", "account owner", "/portal/")


@transaction.atomic
def ensure_demo_users(owner_account: Account | None) -> list[DemoLogin]:
    """Create the demo logins, or put them back as documented.

    Safe to run again: users are found by username, and their passwords and
    flags are reset, so the README's logins work even after someone changed
    them while trying things out. The owner gets an owner membership of
    ``owner_account`` (when there is one) and is never staff: the portal, not
    the back office, is where owners go.
    """
    user_model = get_user_model()

    support, _ = user_model.objects.get_or_create(username=SUPPORT.username)
    support.is_active = True
    # Superuser keeps the demo simple: support can also try the admin's
    # account and key screens without a permission setup.
    support.is_staff = True
    support.is_superuser = True
    support.email = support.email or "support@example.com"
    support.set_password(SUPPORT.password)
    support.save()

    owner, _ = user_model.objects.get_or_create(username=OWNER.username)
    owner.is_active = True
    owner.is_staff = False
    owner.is_superuser = False
    owner.email = owner.email or "owner@example.com"
    owner.set_password(OWNER.password)
    owner.save()
    if owner_account is None:
        return [SUPPORT, OWNER]
    Membership.objects.update_or_create(
        user=owner, account=owner_account, defaults={"role": Membership.Role.OWNER}
    )
    return [SUPPORT, replace(OWNER, who=f"owner of {owner_account.name}")]
