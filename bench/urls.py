"""The project's URLs plus the stock admin sites, for the benchmark process only."""

from django.urls import path

from bench.stock_admin import stock_export_site, stock_site
from usagelogs_site.urls import urlpatterns as site_urlpatterns

urlpatterns = [
    path("stockadmin/", stock_site.urls),
    path("stockexport/", stock_export_site.urls),
    *site_urlpatterns,
]

handler404 = "usagelogs_site.api.not_found"
