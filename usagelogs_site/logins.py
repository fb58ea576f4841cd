"""Logins on both admin sites (/admin/ and /portal/), and their lockout.

django-axes counts failed logins per username and per address and, past
``USAGELOGS_LOGIN_FAILURE_LIMIT``, refuses every password for that username
or from that address, the right one too, for ``USAGELOGS_LOGIN_LOCKOUT_MINUTES``.
What is here makes that visible where it happens: the login form says why it
refused (not "wrong password", which would send the user to try again), and
the page is answered with 429. The address is the client's, also behind the
proxies named by ``USAGELOGS_TRUSTED_PROXIES``.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpResponse

LOCKED_OUT_STATUS = 429


def lockout_message() -> str:
    minutes = settings.USAGELOGS_LOGIN_LOCKOUT_MINUTES
    return (
        f"Too many failed logins for this username or from this address: logging in is "
        f"locked for {minutes} minute{'s' if minutes != 1 else ''} after the last failed "
        "attempt, whatever the password. Try again later, or ask support staff to unlock it."
    )


class LockoutMessageMixin:
    """For an AuthenticationForm: the lockout's message instead of the wrong-password one.

    django-axes refuses a locked-out login inside ``authenticate`` (which then
    returns None, as for a wrong password) and marks the request
    ``axes_locked_out``; it marks it too on the failure that starts a lockout.
    """

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            if getattr(self.request, "axes_locked_out", False):
                raise forms.ValidationError(lockout_message(), code="locked_out") from None
            raise


class StaffAuthenticationForm(LockoutMessageMixin, AdminAuthenticationForm):
    """The support staff admin's login form (admin.site.login_form)."""


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the login page as the view drew it, with the
    lockout's message in its form, answered 429 instead of axes' bare text."""
    if original_response is None:
        return HttpResponse(
            lockout_message(), status=LOCKED_OUT_STATUS, content_type="text/plain; charset=utf-8"
        )
    original_response.status_code = LOCKED_OUT_STATUS
    return original_response


def client_address(request) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the address a login came from.

    With ``USAGELOGS_TRUSTED_PROXIES`` = N proxies in front, each appending the
    address it was reached from to X-Forwarded-For, the client's is the Nth
    entry from the end: entries before it are whatever the client sent, and
    counting them would let anyone pick a fresh address for every try.
    """
    proxies = settings.USAGELOGS_TRUSTED_PROXIES
    if proxies:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR")
