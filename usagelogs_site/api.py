"""API-wide behaviour: every error is JSON with a clear message."""

from django.http import Http404, JsonResponse
from rest_framework.exceptions import NotFound
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        # Django's message names the model; an id the caller may not see and
        # an id that does not exist must read exactly the same.
        exc = NotFound()
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"detail": response.data}
    return response


def not_found(request, exception=None):
    """404 for unknown URLs: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    """500 for an unexpected exception (Django has already logged it): JSON
    under /api/, like every other answer of the API, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": "Server error: the request could not be answered. It has been logged."},
            status=500,
        )
    from django.views.defaults import server_error as django_server_error

    return django_server_error(request)
