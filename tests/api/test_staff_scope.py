"""Who reads every account: the staff flag together with the call list's permission.

``is_staff`` alone opens the admin site, not every customer's calls. Support
staff read every account only with ``logs.view_callrecord``, the permission
the admin's call list asks for, and that one rule holds on every surface: the
API's list, detail, export and stats, the admin's list, detail, export and
stats, and the internal fields (the upstream). Staff without the permission are
treated like anyone else: the accounts they are a member of, or nothing.

Read from the ``catalog`` (tests/api/conftest.py): Initech and Umbrella, fifteen
calls at fixed times; ``cat-07`` is Umbrella's, with upstream ``aws-us-east-1``.
"""

from __future__ import annotations

import pytest

from logs.models import AccessRecord
from logs.read.export import CSV_HEADERS
from tests.api.helpers import (
    EXPORT_URL,
    STATS_URL,
    body_of,
    csv_rows,
    detail_url,
    request_ids,
    session_client,
    token_client,
    token_for,
    walk,
)
from tests.factories import MembershipFactory, StaffUserFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

ADMIN_LIST = "/admin/logs/callrecord/"
ADMIN_EXPORT = "/admin/logs/callrecord/export/"
ADMIN_STATS = "/admin/logs/callrecord/stats/"
PORTAL_LIST = "/portal/logs/callrecord/"
PORTAL_EXPORT = "/portal/logs/callrecord/export/"
PORTAL_STATS = "/portal/logs/callrecord/stats/"


def admin_detail(call_id: int) -> str:
    return f"/admin/logs/callrecord/{call_id}/change/"


def portal_detail(call_id: int) -> str:
    return f"/portal/logs/callrecord/{call_id}/change/"


def export_ids(response) -> list[str]:
    rows = csv_rows(response)
    assert rows[0] == CSV_HEADERS
    request_id = CSV_HEADERS.index("request id")
    return [row[request_id] for row in rows[1:]]


def staff_without_permission(**fields):
    """Staff who may open the admin site and its account pages, not the call list."""
    return StaffUserFactory(permissions=["accounts.view_account", "accounts.view_apikey"], **fields)


@pytest.fixture(params=["session", "token"])
def how(request) -> str:
    return request.param


def api_for(user, how: str):
    return session_client(user) if how == "session" else token_client(token_for(user))


# --- the API ------------------------------------------------------------------------


def test_staff_with_the_permission_read_every_account_on_the_api(catalog, how):
    api = api_for(StaffUserFactory(permissions=["logs.view_callrecord"]), how)
    umbrella_call = catalog.call("cat-07")

    rows = walk(api)
    detail = api.get(detail_url(umbrella_call.pk))

    assert request_ids(rows) == catalog.ids()
    assert {row["upstream"] for row in rows if row["request_id"] == "cat-07"} == {"aws-us-east-1"}
    assert detail.status_code == 200
    assert detail.json()["upstream"] == "aws-us-east-1"
    assert export_ids(api.get(EXPORT_URL)) == catalog.ids()
    assert api.get(STATS_URL).json()["totals"]["calls"] == len(catalog.calls)


def test_staff_without_the_permission_read_nothing_on_the_api(catalog, how):
    api = api_for(staff_without_permission(), how)
    umbrella_call = catalog.call("cat-07")

    detail = api.get(detail_url(umbrella_call.pk))

    assert walk(api) == []
    assert detail.status_code == 404
    assert "aws-us-east-1" not in detail.content.decode()
    assert export_ids(api.get(EXPORT_URL)) == []
    stats = api.get(STATS_URL).json()
    assert stats["totals"]["calls"] == 0
    assert stats["results"] == [] or all(row["calls"] == 0 for row in stats["results"])
    assert not AccessRecord.objects.filter(action=AccessRecord.Action.VIEW_CALL).exists()


def test_staff_without_the_permission_filtering_on_an_account_still_read_nothing(catalog):
    api = session_client(staff_without_permission())

    for account in (catalog.initech, catalog.umbrella):
        assert walk(api, {"account": account.pk}) == []
        assert export_ids(api.get(EXPORT_URL, {"account": account.pk})) == []
        assert api.get(STATS_URL, {"account": account.pk}).json()["totals"]["calls"] == 0


def test_staff_without_the_permission_but_in_an_account_read_that_account_only(catalog, how):
    member = staff_without_permission()
    MembershipFactory(user=member, account=catalog.initech)
    api = api_for(member, how)
    initech_ids = catalog.ids(lambda c: c.account_id == catalog.initech.pk)
    initech_call = catalog.call("cat-04")

    rows = walk(api)
    own = api.get(detail_url(initech_call.pk))
    other = api.get(detail_url(catalog.call("cat-07").pk))

    assert request_ids(rows) == initech_ids
    # Like an account owner: no internal fields either.
    assert all("upstream" not in row for row in rows)
    assert own.status_code == 200
    assert "upstream" not in own.json()
    assert other.status_code == 404
    assert export_ids(api.get(EXPORT_URL)) == initech_ids
    assert "aws-us-east-1" not in body_of(api.get(EXPORT_URL)).decode()
    assert api.get(STATS_URL).json()["totals"]["calls"] == len(initech_ids)


def test_a_permission_without_the_staff_flag_reads_only_its_accounts(catalog):
    """The permission alone (say, granted to an owner by mistake) widens nothing."""
    owner = catalog.initech_owner
    grant(owner, "logs.view_callrecord")
    api = session_client(owner)
    initech_ids = catalog.ids(lambda c: c.account_id == catalog.initech.pk)

    assert request_ids(walk(api)) == initech_ids
    assert api.get(detail_url(catalog.call("cat-07").pk)).status_code == 404
    assert export_ids(api.get(EXPORT_URL)) == initech_ids
    assert api.get(STATS_URL).json()["totals"]["calls"] == len(initech_ids)


def test_a_permission_through_a_group_counts_like_a_direct_one(catalog):
    from django.contrib.auth.models import Group as AuthGroup
    from django.contrib.auth.models import Permission

    support = AuthGroup.objects.create(name="support")
    support.permissions.add(
        Permission.objects.get(content_type__app_label="logs", codename="view_callrecord")
    )
    staff = staff_without_permission()
    staff.groups.add(support)
    api = session_client(staff)

    assert request_ids(walk(api)) == catalog.ids()
    assert api.get(STATS_URL).json()["totals"]["calls"] == len(catalog.calls)


# --- the admin ------------------------------------------------------------------------


def test_staff_with_the_permission_read_every_account_in_the_admin(catalog, client):
    client.force_login(StaffUserFactory(permissions=["logs.view_callrecord"]))
    umbrella_call = catalog.call("cat-07")

    listed = client.get(ADMIN_LIST, {"o": "-1"})
    detail = client.get(admin_detail(umbrella_call.pk))
    stats = client.get(ADMIN_STATS)

    assert listed.status_code == 200
    assert sorted(c.request_id for c in listed.context["cl"].result_list) == sorted(catalog.ids())
    assert detail.status_code == 200
    assert "aws-us-east-1" in detail.content.decode()
    assert sorted(export_ids(client.get(ADMIN_EXPORT))) == sorted(catalog.ids())
    assert stats.status_code == 200
    assert stats.context["stats"].totals.calls == len(catalog.calls)


@pytest.mark.parametrize("in_an_account", [False, True])
def test_staff_without_the_permission_get_no_call_page_in_the_admin(catalog, client, in_an_account):
    staff = staff_without_permission()
    if in_an_account:
        MembershipFactory(user=staff, account=catalog.initech)
    client.force_login(staff)
    initech_call = catalog.call("cat-04")

    assert client.get(ADMIN_LIST).status_code == 403
    export = client.get(ADMIN_EXPORT)
    assert export.status_code == 403
    assert b"cat-04" not in body_of(export)
    assert client.get(ADMIN_STATS).status_code == 403
    detail = client.get(admin_detail(initech_call.pk))
    # The admin's answer to a call it will not show: back to the index, nothing of it.
    assert detail.status_code == 302
    assert "cat-04" not in client.get(detail["Location"]).content.decode()
    assert not AccessRecord.objects.exists()
    # The account pages their permissions grant still open.
    assert client.get("/admin/accounts/account/").status_code == 200


def test_staff_without_the_permission_see_no_call_list_in_the_admin_index(catalog, client):
    client.force_login(staff_without_permission())

    index = client.get("/admin/").content.decode()

    assert ADMIN_LIST not in index
    assert "/admin/logs/prunerun/" not in index


# --- the portal -----------------------------------------------------------------------


def test_staff_without_the_permission_read_their_own_account_in_the_portal(catalog, client):
    staff = staff_without_permission()
    MembershipFactory(user=staff, account=catalog.initech)
    client.force_login(staff)
    initech_ids = catalog.ids(lambda c: c.account_id == catalog.initech.pk)

    listed = client.get(PORTAL_LIST)
    other = client.get(portal_detail(catalog.call("cat-07").pk))

    assert listed.status_code == 200
    assert sorted(c.request_id for c in listed.context["cl"].result_list) == sorted(initech_ids)
    assert sorted(export_ids(client.get(PORTAL_EXPORT))) == sorted(initech_ids)
    assert client.get(PORTAL_STATS).context["stats"].totals.calls == len(initech_ids)
    assert other.status_code == 302
    keys = client.get("/portal/accounts/apikey/").content.decode()
    assert "initech-prod" in keys
    assert "umbrella-main" not in keys


def test_a_login_in_no_account_and_without_staff_reads_nothing(catalog):
    api = session_client(UserFactory())

    assert walk(api) == []
    assert export_ids(api.get(EXPORT_URL)) == []
