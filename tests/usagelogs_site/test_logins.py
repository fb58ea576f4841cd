"""Failed logins lock out, per username and per address, on both admin sites.

Every test logs in through the real login pages (POST /admin/login/ and
/portal/login/), as a browser does. The limit is the default: 5 failures, then
15 minutes in which no password works, the right one included, and the page
says so.
"""

from __future__ import annotations

import io
import runpy
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db.models import F
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.factories import (
    TEST_PASSWORD,
    AccountFactory,
    MembershipFactory,
    StaffUserFactory,
    owner_of,
)
from tests.pages import page

pytestmark = pytest.mark.django_db

LIMIT = 5
WRONG = "not-the-password"
WRONG_PASSWORD_TEXT = "correct username and password"
LOCKED_TEXT = "Too many failed logins for this username or from this address"
SITES = ["/admin/", "/portal/"]


@pytest.fixture
def people(db):
    """A support login (for /admin/) and an account owner (for /portal/)."""
    return {
        "/admin/": StaffUserFactory(username="support"),
        "/portal/": owner_of(AccountFactory(name="Acme"), username="owner"),
    }


def log_in(client: Client, site: str, username: str, password: str, address: str = "192.0.2.10"):
    return client.post(
        f"{site}login/",
        {"username": username, "password": password, "next": site},
        REMOTE_ADDR=address,
    )


def logged_in(client: Client, site: str) -> bool:
    """Whether the session opens the site's index (a login page otherwise)."""
    return client.get(site).status_code == 200


def form_errors(response) -> str:
    """The text of the login form's errors, as the page shows them."""
    return " ".join(str(error) for error in response.context["form"].non_field_errors())


def test_the_defaults_are_five_failures_and_fifteen_minutes(settings):
    assert settings.AXES_FAILURE_LIMIT == LIMIT
    assert timedelta(minutes=15) == settings.AXES_COOLOFF_TIME


@pytest.mark.parametrize("site", SITES)
def test_the_fifth_failure_locks_and_then_the_right_password_does_not_work(people, site):
    user = people[site]
    client = Client()

    for attempt in range(1, LIMIT):
        response = log_in(client, site, user.username, WRONG)
        assert response.status_code == 200, attempt
        assert WRONG_PASSWORD_TEXT in form_errors(response), attempt
    fifth = log_in(client, site, user.username, WRONG)
    right = log_in(client, site, user.username, TEST_PASSWORD)

    for response in (fifth, right):
        assert response.status_code == 429
        # The login page itself, with the message in its form: not a bare error text.
        assert 'name="password"' in page(response)
        assert LOCKED_TEXT in form_errors(response)
        assert "locked for 15 minutes" in page(response)
        assert WRONG_PASSWORD_TEXT not in page(response)
    assert not logged_in(client, site)


@pytest.mark.parametrize("site", SITES)
def test_fewer_failures_than_the_limit_leave_the_right_password_working(people, site):
    user = people[site]
    client = Client()
    for _ in range(LIMIT - 1):
        log_in(client, site, user.username, WRONG)

    response = log_in(client, site, user.username, TEST_PASSWORD)

    assert response.status_code == 302
    assert logged_in(client, site)


@pytest.mark.parametrize("site", SITES)
def test_a_username_is_locked_from_every_address(people, site):
    user = people[site]
    for n in range(LIMIT):
        log_in(Client(), site, user.username, WRONG, address=f"198.51.100.{n + 1}")

    client = Client()
    response = log_in(client, site, user.username, TEST_PASSWORD, address="203.0.113.99")

    assert response.status_code == 429
    assert LOCKED_TEXT in form_errors(response)
    assert not logged_in(client, site)


@pytest.mark.parametrize("site", SITES)
def test_an_address_is_locked_for_every_username(people, site):
    user = people[site]
    for n in range(LIMIT):
        log_in(Client(), site, f"guess-{n}", WRONG, address="198.51.100.66")

    locked = Client()
    from_there = log_in(locked, site, user.username, TEST_PASSWORD, address="198.51.100.66")
    elsewhere = Client()
    from_elsewhere = log_in(elsewhere, site, user.username, TEST_PASSWORD, address="203.0.113.5")

    assert from_there.status_code == 429
    assert LOCKED_TEXT in form_errors(from_there)
    assert not logged_in(locked, site)
    assert from_elsewhere.status_code == 302
    assert logged_in(elsewhere, site)


def test_failures_on_both_sites_count_together(people):
    """One count per username, whichever site the tries went to."""
    user = people["/admin/"]
    MembershipFactory(user=user, account=AccountFactory(name="Initech"))
    for site in ["/admin/", "/portal/", "/admin/", "/portal/", "/admin/"]:
        log_in(Client(), site, user.username, WRONG)

    for site in SITES:
        response = log_in(Client(), site, user.username, TEST_PASSWORD)
        assert response.status_code == 429, site
        assert LOCKED_TEXT in form_errors(response), site


@pytest.mark.parametrize("site", SITES)
def test_the_lockout_ends_after_the_cool_off(people, site):
    user = people[site]
    for _ in range(LIMIT):
        log_in(Client(), site, user.username, WRONG)
    assert log_in(Client(), site, user.username, TEST_PASSWORD).status_code == 429

    # Fifteen minutes and a second pass (the failures are moved back, not the clock).
    from axes.models import AccessAttempt

    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=15, seconds=1))
    client = Client()
    response = log_in(client, site, user.username, TEST_PASSWORD)

    assert response.status_code == 302
    assert logged_in(client, site)


@pytest.mark.parametrize(
    ("command", "argument"),
    [("axes_reset_username", "support"), ("axes_reset_ip", "192.0.2.10"), ("axes_reset", None)],
)
def test_staff_unlock_with_a_command(people, command, argument):
    user = people["/admin/"]
    for _ in range(LIMIT):
        log_in(Client(), "/admin/", user.username, WRONG)

    call_command(command, *([argument] if argument else []), stdout=io.StringIO())
    client = Client()
    response = log_in(client, "/admin/", user.username, TEST_PASSWORD)

    assert response.status_code == 302
    assert logged_in(client, "/admin/")


def test_the_lockout_message_follows_the_settings(people, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.USAGELOGS_LOGIN_LOCKOUT_MINUTES = 1
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    user = people["/portal/"]

    log_in(Client(), "/portal/", user.username, WRONG)
    second = log_in(Client(), "/portal/", user.username, WRONG)

    assert second.status_code == 429
    assert "locked for 1 minute after the last failed attempt" in form_errors(second)


def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(people, settings):
    """With one trusted proxy, the client's address is the last X-Forwarded-For
    entry; what the client wrote before it does not make it a new address."""
    settings.USAGELOGS_TRUSTED_PROXIES = 1
    proxy = "10.0.0.2"
    user = people["/admin/"]
    for n in range(LIMIT):
        Client().post(
            "/admin/login/",
            {"username": f"guess-{n}", "password": WRONG},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n + 1}, 198.51.100.7",
        )

    same_client = Client().post(
        "/admin/login/",
        {"username": user.username, "password": TEST_PASSWORD},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="198.51.100.7",
    )
    other_client = Client().post(
        "/admin/login/",
        {"username": user.username, "password": TEST_PASSWORD},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="198.51.100.8",
    )

    assert same_client.status_code == 429
    assert other_client.status_code == 302


def test_the_api_token_is_not_a_password_and_is_not_locked(people):
    from tests.api.helpers import LIST_URL, token_client, token_for

    owner = people["/portal/"]
    for _ in range(LIMIT):
        log_in(Client(), "/portal/", owner.username, WRONG)

    assert token_client(token_for(owner)).get(LIST_URL).status_code == 200


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    site=st.sampled_from(SITES),
    username=st.text(max_size=300),
    password=st.text(max_size=300),
)
def test_garbage_in_the_login_form_never_logs_in_nor_breaks(people, site, username, password):
    client = Client(raise_request_exception=False)

    response = client.post(f"{site}login/", {"username": username, "password": password})

    assert response.status_code in (200, 429)
    assert 'name="password"' in page(response)
    assert not logged_in(client, site)


# --- the settings -------------------------------------------------------------------------

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "usagelogs_site" / "settings.py"


def test_the_environment_sets_the_limit_and_the_lockout(monkeypatch):
    monkeypatch.delenv("DEBUG", raising=False)
    monkeypatch.setenv("USAGELOGS_LOGIN_FAILURE_LIMIT", "3")
    monkeypatch.setenv("USAGELOGS_LOGIN_LOCKOUT_MINUTES", "60")

    loaded = runpy.run_path(str(SETTINGS_FILE))

    assert loaded["AXES_FAILURE_LIMIT"] == 3
    assert loaded["AXES_COOLOFF_TIME"] == timedelta(hours=1)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("USAGELOGS_LOGIN_FAILURE_LIMIT", "0"),
        ("USAGELOGS_LOGIN_FAILURE_LIMIT", "five"),
        ("USAGELOGS_LOGIN_LOCKOUT_MINUTES", "-5"),
        ("USAGELOGS_TRUSTED_PROXIES", "-1"),
    ],
)
def test_a_bad_lockout_setting_is_refused_naming_it(monkeypatch, name, value):
    monkeypatch.delenv("DEBUG", raising=False)
    monkeypatch.setenv(name, value)

    with pytest.raises(ImproperlyConfigured, match=name):
        runpy.run_path(str(SETTINGS_FILE))


def test_a_superuser_unlocks_by_deleting_the_access_attempt_in_the_admin(people, superuser):
    from axes.models import AccessAttempt

    user = people["/admin/"]
    for _ in range(LIMIT):
        log_in(Client(), "/admin/", user.username, WRONG)
    admin = Client()
    admin.force_login(superuser)
    listed = admin.get("/admin/axes/accessattempt/")
    attempt = AccessAttempt.objects.get(username=user.username)

    deleted = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    client = Client()
    response = log_in(client, "/admin/", user.username, TEST_PASSWORD)

    assert listed.status_code == 200
    assert user.username in page(listed)
    assert deleted.status_code == 302
    assert response.status_code == 302
    assert logged_in(client, "/admin/")
