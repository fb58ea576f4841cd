from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter

from logs.api.integrations import LiteLLMIngestView
from logs.api.otlp import OtlpTracesView
from logs.api.views import CallViewSet, HealthView, StatsView

router = DefaultRouter()
router.register("calls", CallViewSet, basename="call")

urlpatterns = [
    path("stats/", StatsView.as_view(), name="stats"),
    path("health/", HealthView.as_view(), name="health"),
    # An OTLP exporter's endpoint is this without "/v1/traces"; it appends that itself.
    re_path(r"^integrations/otlp/v1/traces/?$", OtlpTracesView.as_view(), name="otlp-traces"),
    path("integrations/litellm/", LiteLLMIngestView.as_view(), name="integrations-litellm"),
    path("", include(router.urls)),
]
