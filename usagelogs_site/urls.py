from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Usage Logs — support"
admin.site.site_title = "Usage Logs"
admin.site.index_title = "Back office"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
