"""A login's preferences for the pages: the time zone they show times in."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from accounts.models import UserPreference
from accounts.time_zones import known_zones, zone_named


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return "/"
    return target


@login_required(login_url="/")
@require_http_methods(["GET", "POST"])
def time_zone_view(request):
    """GET: the form. POST ``time_zone`` (an IANA name, or empty for the
    site's): saved, then back to ``next``. Anything else is a 400 naming the
    field, and nothing is saved."""
    current = (
        UserPreference.objects.filter(user=request.user).values_list("time_zone", flat=True).first()
        or ""
    )
    error = None
    if request.method == "POST":
        names = request.POST.getlist("time_zone")
        chosen = names[-1] if len(names) == 1 else None
        if chosen is None:
            error = "time_zone: give exactly one zone."
        elif chosen != "" and zone_named(chosen) is None:
            shown = "".join(ch if ch.isprintable() else "\ufffd" for ch in chosen[:60])
            error = f"time_zone: “{shown}” is not a time zone this site knows (e.g. Europe/Berlin)."
        else:
            UserPreference.objects.update_or_create(
                user=request.user, defaults={"time_zone": chosen}
            )
            shown = chosen or f"{settings.TIME_ZONE}, the site's zone"
            messages.success(request, f"Times are now shown in {shown}.")
            return HttpResponseRedirect(_next(request))
    context = {
        "title": "Time zone",
        "zones": known_zones(),
        "current": current,
        "site_zone": settings.TIME_ZONE,
        "next": _next(request),
        "error": error,
        "site_header": "Usage Logs",
        "has_permission": True,
    }
    return render(request, "usagelogs/time_zone.html", context, status=400 if error else 200)
