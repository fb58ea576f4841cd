"""REST API authentication with personal access tokens (``Authorization: Bearer ult_…``)."""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.models import AccessToken
from accounts.services import hash_secret

# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION_SECONDS = 60


class AccessTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode(errors="replace") not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: expected 'Bearer <token>'."
            )
        try:
            secret = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not secret.startswith(AccessToken.SCHEME):
            raise exceptions.AuthenticationFailed("Invalid token.")
        token = (
            AccessToken.objects.select_related("user")
            .filter(token_hash=hash_secret(secret))
            .first()
        )
        if token is None or token.is_revoked or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        self._touch(token)
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'

    @staticmethod
    def _touch(token: AccessToken) -> None:
        now = timezone.now()
        stale = token.last_used_at is None or (
            (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        )
        if stale:
            AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)


class AccessTokenScheme(OpenApiAuthenticationExtension):
    """Documents the bearer token in the OpenAPI schema."""

    target_class = AccessTokenAuthentication
    name = "accessToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal access token (ult_…) created in the admin or portal.",
        }
