"""Who sees which calls, accounts, keys, groups and model names: staff who
may read every account see them all; anyone else only their accounts'."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.models import Membership
from accounts.scoping import key_names, visible_account_ids, visible_accounts, visible_keys
from logs.read.scope import model_names, visible_calls, visible_groups
from tests.factories import (
    GroupFactory,
    MembershipFactory,
    StaffUserFactory,
    UserFactory,
    make_call,
    owner_of,
)

pytestmark = pytest.mark.django_db


def ids(calls) -> set[int]:
    return {call.pk for call in calls}


def test_staff_see_every_account(two_accounts, staff_user):
    assert ids(visible_calls(staff_user)) == ids(two_accounts.calls)
    assert visible_account_ids(staff_user) is None


def test_a_member_sees_only_their_accounts_calls(two_accounts):
    a, b = two_accounts.a, two_accounts.b

    assert ids(visible_calls(a.owner)) == ids(a.calls)
    assert ids(visible_calls(b.owner)) == ids(b.calls)


def test_a_viewer_sees_their_accounts_calls(two_accounts):
    viewer = UserFactory()
    MembershipFactory(user=viewer, account=two_accounts.b.account, role=Membership.Role.VIEWER)

    assert ids(visible_calls(viewer)) == ids(two_accounts.b.calls)


def test_a_member_of_both_accounts_sees_both(two_accounts):
    both = owner_of(two_accounts.a.account)
    MembershipFactory(user=both, account=two_accounts.b.account)

    assert ids(visible_calls(both)) == ids(two_accounts.calls)


def test_a_login_in_no_account_sees_nothing(two_accounts, outsider):
    assert not visible_calls(outsider).exists()
    assert visible_account_ids(outsider) == []


def test_an_anonymous_user_sees_nothing(two_accounts):
    assert not visible_calls(AnonymousUser()).exists()
    assert not visible_calls(AnonymousUser(), account=two_accounts.a.account).exists()


@pytest.mark.parametrize("who", ["owner", "staff"])
def test_an_inactive_user_sees_nothing(two_accounts, who):
    user = two_accounts.a.owner if who == "owner" else StaffUserFactory()
    user.is_active = False
    user.save()

    assert not visible_calls(user).exists()
    assert not visible_calls(user, account=two_accounts.a.account).exists()


def test_narrowing_to_an_own_account_gives_its_calls(two_accounts):
    both = owner_of(two_accounts.a.account)
    MembershipFactory(user=both, account=two_accounts.b.account)

    assert ids(visible_calls(both, account=two_accounts.a.account)) == ids(two_accounts.a.calls)
    assert ids(visible_calls(both, account=two_accounts.b.account)) == ids(two_accounts.b.calls)


def test_narrowing_to_someone_elses_account_gives_nothing(two_accounts):
    a, b = two_accounts.a, two_accounts.b

    assert not visible_calls(a.owner, account=b.account).exists()
    assert not visible_calls(b.owner, account=a.account).exists()
    assert visible_account_ids(a.owner, account=b.account) == []


def test_staff_narrowed_to_one_account_see_that_account(two_accounts, staff_user):
    b = two_accounts.b

    assert ids(visible_calls(staff_user, account=b.account)) == ids(b.calls)


def test_leaving_an_account_hides_its_calls(two_accounts):
    a = two_accounts.a
    assert visible_calls(a.owner).exists()

    Membership.objects.filter(user=a.owner).delete()

    assert not visible_calls(a.owner).exists()


def test_accounts_and_keys_are_scoped_like_calls(two_accounts, staff_user, outsider):
    a, b = two_accounts.a, two_accounts.b

    assert set(visible_accounts(a.owner)) == {a.account}
    assert set(visible_accounts(staff_user)) == {a.account, b.account}
    assert not visible_accounts(outsider).exists()
    assert set(visible_keys(a.owner)) == set(a.keys)
    assert not visible_keys(a.owner, account=b.account).exists()
    assert set(visible_keys(staff_user, account=b.account)) == set(b.keys)


def test_model_names_are_scoped(two_accounts, staff_user, outsider):
    a, b = two_accounts.a, two_accounts.b
    assert not set(a.model_names) & set(b.model_names), "the world keeps them apart"

    assert model_names(a.owner) == a.model_names
    assert model_names(b.owner) == b.model_names
    assert model_names(staff_user) == sorted({*a.model_names, *b.model_names})
    assert model_names(staff_user, account=a.account) == a.model_names
    assert model_names(a.owner, account=b.account) == []
    assert model_names(outsider) == []
    assert model_names(AnonymousUser()) == []


def test_key_names_are_scoped(two_accounts, staff_user, outsider):
    a, b = two_accounts.a, two_accounts.b
    assert not set(a.key_names) & set(b.key_names), "the world keeps them apart"

    assert key_names(a.owner) == a.key_names
    assert key_names(b.owner) == b.key_names
    assert key_names(staff_user) == sorted({*a.key_names, *b.key_names})
    assert key_names(a.owner, account=b.account) == []
    assert key_names(outsider) == []


def test_a_model_name_used_by_both_accounts_is_listed_once(two_accounts, staff_user):
    shared = two_accounts.b.model_names[0]
    make_call(two_accounts.a.key, model=shared)

    assert model_names(staff_user).count(shared) == 1
    assert shared in model_names(two_accounts.a.owner)


def test_groups_offered_to_an_owner_are_those_of_their_keys(two_accounts):
    a = two_accounts.a
    GroupFactory(name="unused-by-anyone")

    assert set(visible_groups(a.owner)) == {key.group for key in a.keys}


def test_groups_offered_to_an_owner_include_those_their_calls_were_made_in(two_accounts):
    # visible_groups' docstring: "groups their keys belong to or that their calls
    # were made in". A call may name a group none of the account's keys is in.
    a = two_accounts.a
    special = GroupFactory(name="special-event")
    make_call(a.key, group=special.name)

    assert special in set(visible_groups(a.owner))
