from django.urls import include, path
from rest_framework.routers import DefaultRouter

from logs.api.views import CallViewSet, StatsView

router = DefaultRouter()
router.register("calls", CallViewSet, basename="call")

urlpatterns = [
    path("stats/", StatsView.as_view(), name="stats"),
    path("", include(router.urls)),
]
