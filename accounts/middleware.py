"""Request-wide context for the scoping selectors."""

from django.utils import timezone

from accounts.models import UserPreference
from accounts.scoping import remember_memberships
from accounts.time_zones import zone_named


class ScopeCacheMiddleware:
    """Reads each user's account memberships once per request.

    Every surface asks ``visible_account_ids`` several times while building
    one page; the answer cannot change in between, so one query serves them all.
    Streamed responses (exports) finish after this returns: their queries read
    memberships afresh, which is only ever correct.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with remember_memberships():
            return self.get_response(request)


class UserTimeZoneMiddleware:
    """Pages show times in the zone the user chose (``UserPreference``), or the
    site's. The API keeps the site's zone on every request, whoever asks and
    however they authenticate, and says so (its stats name the zone)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not request.path.startswith("/api/"):
            name = (
                UserPreference.objects.filter(user=user).values_list("time_zone", flat=True).first()
            )
            zone = zone_named(name) if name else None
        if zone is None:
            timezone.deactivate()
            return self.get_response(request)
        timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
