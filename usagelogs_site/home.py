"""The site's front door (``/``, and the admin's "View site" link): each person
goes where their work is. Support staff to the back office, account owners to
their portal, and someone not logged in to a page offering both logins (the
back office's login refuses an owner, the portal's admits one)."""

from __future__ import annotations

from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from accounts.selectors import accounts_of


def home(request):
    user = request.user
    if user.is_authenticated and user.is_active:
        if user.is_staff:
            return HttpResponseRedirect(reverse("admin:index"))
        if accounts_of(user).exists():
            return HttpResponseRedirect(reverse("portal:index"))
    return render(
        request,
        "usagelogs/home.html",
        {
            "staff_login": reverse("admin:login"),
            "portal_login": reverse("portal:login"),
            "logged_in_elsewhere": user.is_authenticated,
        },
    )
