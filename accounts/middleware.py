"""Request-wide context for the scoping selectors."""

from accounts.scoping import remember_memberships


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
