from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from usagelogs_site.home import home
from usagelogs_site.logins import StaffAuthenticationForm
from usagelogs_site.portal import portal_site
from usagelogs_site.preferences import time_zone_view

admin.site.login_form = StaffAuthenticationForm
admin.site.site_header = "Usage Logs — support"
admin.site.site_title = "Usage Logs"
admin.site.index_title = "Back office"

urlpatterns = [
    path("", home, name="home"),
    path("preferences/time-zone/", time_zone_view, name="time_zone"),
    path("admin/", admin.site.urls),
    path("portal/", portal_site.urls),
    path("api/v1/", include("logs.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

handler404 = "usagelogs_site.api.not_found"
handler500 = "usagelogs_site.api.server_error"
