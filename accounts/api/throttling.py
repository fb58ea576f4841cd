"""Per-token rate limits for the REST API (answered with 429 and Retry-After)."""

from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    """One bucket per access token; session users get one bucket per user."""

    scope = "token"

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        if token is not None and hasattr(token, "prefix"):
            ident = f"token:{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"anon:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IngestRateThrottle(TokenRateThrottle):
    scope = "ingest"
