from rest_framework.permissions import BasePermission

from accounts.models import AccessToken
from accounts.services import is_service_user


class CanIngest(BasePermission):
    """Only an access token with the ingest flag, held by a service user."""

    message = "Ingest needs an access token with the ingest permission, held by a service user."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        return isinstance(token, AccessToken) and token.can_ingest and is_service_user(request.user)
