"""The account owners' portal: a second Django admin site at /portal/.

Anyone who belongs to an account may log in (no staff flag). Every page shows
one account at a time, the "current account", kept in the session and checked
against the user's memberships on every request; a user in several accounts
switches between them from the header.
"""

from urllib.parse import urlencode
from weakref import WeakKeyDictionary

from django import forms
from django.contrib import admin
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.admin import PortalAccessTokenAdmin, PortalApiKeyAdmin
from accounts.models import AccessToken, Account, ApiKey
from accounts.selectors import accounts_of
from logs.admin.calls import PortalCallRecordAdmin
from logs.models import CallRecord
from logs.periods import bucket_start
from logs.read.filters import CallFilters
from logs.read.totals import scoped_totals
from usagelogs_site.logins import LockoutMessageMixin

SESSION_KEY = "portal_account_id"


class PortalAuthenticationForm(LockoutMessageMixin, AuthenticationForm):
    """Like the admin's login form, but membership of an account admits, not is_staff."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "no_account": "This login does not belong to any account.",
    }

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not accounts_of(user).exists():
            raise forms.ValidationError(self.error_messages["no_account"], code="no_account")


class PortalSite(admin.AdminSite):
    site_header = "Usage Logs"
    site_title = "Usage Logs portal"
    index_title = "Your account"
    login_form = PortalAuthenticationForm
    enable_nav_sidebar = False
    # Today's totals and the way to the calls, not Django's "Recent actions"
    # (owners change nothing here, so it was always empty).
    index_template = "portal/index.html"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Each request's current account, looked up once (every page asks often);
        # gone with the request.
        self._current_accounts: WeakKeyDictionary = WeakKeyDictionary()

    def has_permission(self, request) -> bool:
        return request.user.is_active and self.current_account(request) is not None

    def current_account(self, request) -> Account | None:
        """The account the portal shows now: the one chosen in the session if the
        user still belongs to it, else the first one they belong to."""
        if request is None or not request.user.is_authenticated or not request.user.is_active:
            return None
        if request not in self._current_accounts:
            accounts = accounts_of(request.user).order_by("name")
            chosen = request.session.get(SESSION_KEY)
            account = (accounts.filter(pk=chosen).first() if chosen else None) or accounts.first()
            self._current_accounts[request] = account
        return self._current_accounts[request]

    def each_context(self, request):
        context = super().each_context(request)
        if request.user.is_authenticated:
            context["portal_current_account"] = self.current_account(request)
            context["portal_accounts"] = list(accounts_of(request.user).order_by("name"))
            context["portal_switch_url"] = reverse(f"{self.name}:switch_account")
        return context

    def index(self, request, extra_context=None):
        account = self.current_account(request)
        today = bucket_start(timezone.now(), "day")
        calls_url = reverse(f"{self.name}:logs_callrecord_changelist")
        today_query = urlencode({"start": timezone.localtime(today).strftime("%Y-%m-%dT%H:%M")})
        context = {
            "today": timezone.localtime(today).date(),
            "today_totals": scoped_totals(
                request.user, account=account, filters=CallFilters(start=today)
            ),
            "calls_url": calls_url,
            "today_calls_url": f"{calls_url}?{today_query}",
            "errors_today_url": f"{calls_url}?{today_query}&status=error",
            "stats_url": f"{calls_url}stats/",
            **(extra_context or {}),
        }
        return super().index(request, context)

    def get_urls(self):
        return [
            path(
                "switch-account/",
                self.admin_view(self.switch_account),
                name="switch_account",
            ),
            *super().get_urls(),
        ]

    def switch_account(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        wanted = request.POST.get("account", "")
        account = accounts_of(request.user).filter(pk=wanted).first() if wanted.isdigit() else None
        if account is not None:
            request.session[SESSION_KEY] = account.pk
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = reverse(f"{self.name}:index")
        # Filters belong to the account they were chosen in: go back to the list, not the query.
        return HttpResponseRedirect(target.split("?", 1)[0])


portal_site = PortalSite(name="portal")
portal_site.register(CallRecord, PortalCallRecordAdmin)
portal_site.register(ApiKey, PortalApiKeyAdmin)
portal_site.register(AccessToken, PortalAccessTokenAdmin)
