from django.urls import include, path
from rest_framework.routers import DefaultRouter

from logs.api.integrations import LiteLLMIngestView
from logs.api.views import CallViewSet, HealthView, StatsView

router = DefaultRouter()
router.register("calls", CallViewSet, basename="call")

urlpatterns = [
    path("stats/", StatsView.as_view(), name="stats"),
    path("health/", HealthView.as_view(), name="health"),
    path("integrations/litellm/", LiteLLMIngestView.as_view(), name="integrations-litellm"),
    path("", include(router.urls)),
]
