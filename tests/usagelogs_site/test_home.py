"""The front door (``/``) and the portal's home: each person lands where their work is."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.conftest import logged_in
from tests.factories import AccountFactory, ApiKeyFactory, ingest, owner_of, record_dict

pytestmark = pytest.mark.django_db


def test_staff_land_in_the_back_office(staff_client):
    response = staff_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_owners_land_in_their_portal_not_on_a_not_authorized_page():
    owner = owner_of(AccountFactory(name="Acme"), username="owner")
    response = logged_in(owner).get("/", follow=True)
    assert response.redirect_chain == [("/portal/", 302)]
    assert response.status_code == 200


def test_the_admins_view_site_link_leads_an_owner_home():
    owner = owner_of(AccountFactory(name="Acme"), username="owner")
    portal = logged_in(owner).get("/portal/")
    assert portal.context["site_url"] == "/"


def test_someone_not_logged_in_is_offered_both_logins():
    response = Client().get("/")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'href="/portal/login/"' in page
    assert 'href="/admin/login/"' in page


def test_a_login_with_no_account_and_no_staff_flag_is_told_so(outsider):
    response = logged_in(outsider).get("/")
    assert response.status_code == 200
    assert "has no account and no back-office access" in response.content.decode()


def test_the_portal_home_shows_todays_totals_and_links_to_the_calls(clock):
    account = AccountFactory(name="Acme")
    owner = owner_of(account, username="owner")
    key = ApiKeyFactory(account=account)
    now = timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    ingest(
        record_dict(key, created_at=now - timedelta(minutes=5), cost="1.25"),
        record_dict(key, created_at=now - timedelta(minutes=4), status_code=500, cost="0"),
        # Yesterday's call is not today's.
        record_dict(key, created_at=midnight - timedelta(minutes=1)),
        record_dict(ApiKeyFactory(), created_at=now - timedelta(minutes=3)),  # another account
    )

    response = logged_in(owner).get("/portal/")

    page = response.content.decode()
    totals = response.context["today_totals"]
    assert (totals.calls, totals.errors) == (2, 1)
    assert 'data-total="calls">2<' in page
    assert "Recent actions" not in page
    today = f"start={midnight:%Y-%m-%dT%H}%3A00"
    assert f'href="/portal/logs/callrecord/?{today}"' in page
    assert f'href="/portal/logs/callrecord/?{today}&amp;status=error"' in page


def test_the_call_list_offers_skip_links_to_the_filters_and_the_results(staff_client):
    page = staff_client.get("/admin/logs/callrecord/").content.decode()
    assert page.index('href="#changelist-filter"') < page.index('id="changelist-filter"')
    assert 'href="#result_list"' in page


def test_seed_demo_prints_the_address_it_is_told():
    out = StringIO()
    call_command(
        "seed_demo", "--calls", "3", "--site", "http://0.0.0.0:8101/", stdout=out, stderr=StringIO()
    )
    assert "http://0.0.0.0:8101/admin/" in out.getvalue()
    assert "http://0.0.0.0:8101/portal/" in out.getvalue()
    assert ":8000" not in out.getvalue()


def test_key_and_access_record_lists_show_iso_times(superuser, superuser_client):
    from logs.audit import record_access
    from logs.models import AccessRecord
    from tests.pages import result_rows

    key = ApiKeyFactory(name="prod-backend")
    record = record_access(
        user=superuser,
        action=AccessRecord.Action.EXPORT,
        surface=AccessRecord.Surface.API,
        filters={},
    )

    keys = result_rows(superuser_client.get("/admin/accounts/apikey/"))
    records = result_rows(superuser_client.get("/admin/logs/accessrecord/"))

    assert keys[0]["created_at"] == timezone.localtime(key.created_at).strftime("%Y-%m-%d %H:%M:%S")
    assert records[0]["at"] == timezone.localtime(record.at).strftime("%Y-%m-%d %H:%M:%S")
