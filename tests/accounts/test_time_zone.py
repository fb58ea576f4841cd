"""Each login chooses the zone the pages show times in (default: the site's);
the API and the CSV keep theirs and say which."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import UserPreference
from tests.api.helpers import STATS_URL, session_client
from tests.conftest import logged_in
from tests.factories import AccountFactory, ApiKeyFactory, make_call, owner_of
from tests.pages import messages_on_page, result_rows

pytestmark = pytest.mark.django_db

ADMIN = "/admin/logs/callrecord/"
PORTAL = "/portal/logs/callrecord/"
AT = datetime(2026, 12, 16, 13, 45, tzinfo=UTC)


@pytest.fixture
def call(staff_user):
    return make_call(created_at=AT)


def choose(client: Client, zone: str, next_url: str = ADMIN):
    return client.post("/preferences/time-zone/", {"time_zone": zone, "next": next_url})


def test_times_follow_the_zone_the_user_chose_and_the_page_says_which(staff_client, call):
    assert result_rows(staff_client.get(ADMIN))[0]["time"] == "2026-12-16 13:45:00"

    saved = choose(staff_client, "Asia/Kolkata")

    assert saved.status_code == 302 and saved["Location"] == ADMIN
    page = staff_client.get(ADMIN)
    assert result_rows(page)[0]["time"] == "2026-12-16 19:15:00"
    html = page.content.decode()
    assert "Times in Asia/Kolkata" in html
    # A time typed without an offset is the user's zone's: 19:00 in Kolkata is 13:30 UTC.
    assert len(result_rows(staff_client.get(ADMIN, {"start": "2026-12-16T19:00"}))) == 1
    assert len(result_rows(staff_client.get(ADMIN, {"start": "2026-12-16T19:30"}))) == 0


def test_an_empty_choice_is_the_sites_zone_again(staff_client, staff_user, call):
    choose(staff_client, "Asia/Kolkata")
    choose(staff_client, "")
    assert UserPreference.objects.get(user=staff_user).time_zone == ""
    assert result_rows(staff_client.get(ADMIN))[0]["time"] == "2026-12-16 13:45:00"


def test_one_users_zone_is_not_anothers(staff_client, call):
    account = AccountFactory()
    owner = owner_of(account, username="owner")
    make_call(ApiKeyFactory(account=account), created_at=AT)
    choose(staff_client, "America/St_Johns")
    assert result_rows(logged_in(owner).get(PORTAL))[0]["time"] == "2026-12-16 13:45:00"


def test_the_api_keeps_the_sites_zone_and_says_so(staff_user, staff_client, call):
    choose(staff_client, "Asia/Kolkata")
    api = session_client(staff_user)
    body = api.get(STATS_URL, {"interval": "day"}).json()
    assert body["time_zone"] == "UTC"
    assert body["results"][0]["bucket"].startswith("2026-12-16T00:00:00")


def test_the_csv_says_its_times_are_utc(staff_client, call):
    choose(staff_client, "Asia/Kolkata")
    content = b"".join(staff_client.get(ADMIN + "export/").streaming_content).decode()
    header, first = content.splitlines()[:2]
    assert "time (UTC)" in header
    assert "2026-12-16T13:45:00" in first


BAD = [["Mars/Olympus"], ["europe/berlin"], ["UTC", "Asia/Kolkata"], ["\x00"], ["x" * 5000]]


@pytest.mark.parametrize("values", BAD, ids=lambda v: repr(v)[:20])
def test_a_zone_that_is_not_one_is_refused_naming_the_field_and_nothing_is_saved(
    staff_client, staff_user, values
):
    response = staff_client.post("/preferences/time-zone/", {"time_zone": values})
    assert response.status_code == 400
    assert "time_zone:" in response.content.decode()
    assert not UserPreference.objects.filter(user=staff_user).exists()


def test_any_body_is_a_page_or_a_400_never_a_server_error(staff_client, staff_user):
    staff_client.raise_request_exception = False

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        values=st.lists(st.text(max_size=40), max_size=3),
        other=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2),
    )
    def check(values, other):
        UserPreference.objects.filter(user=staff_user).delete()
        response = staff_client.post(
            "/preferences/time-zone/", {**other, "time_zone": values} if values else other
        )
        valid = len(values) == 1 and (values[0] == "" or values[0] in _zones())
        assert response.status_code == (302 if valid else 400), (values, response.status_code)
        saved = UserPreference.objects.filter(user=staff_user).first()
        assert (saved is not None) == valid

    check()


def _zones():
    from accounts.time_zones import known_zones

    return known_zones()


def test_someone_not_logged_in_is_sent_to_the_front_door():
    response = Client().get("/preferences/time-zone/")
    assert response.status_code == 302
    assert response["Location"].startswith("/?next=")


def test_the_form_lists_the_zones_and_marks_the_current_one(staff_client):
    choose(staff_client, "Europe/Berlin")
    page = staff_client.get("/preferences/time-zone/").content.decode()
    assert '<option value="Europe/Berlin" selected>' in page
    assert messages_on_page(staff_client.get(ADMIN)) == []
