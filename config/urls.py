from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import views as account_views
from accounts.api.errors import api_not_found

handler403 = "accounts.views.errors.permission_denied"
handler404 = "accounts.views.errors.page_not_found"
handler500 = "accounts.views.errors.server_error"

api_v1: list[URLPattern | URLResolver] = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("accounts.api.urls")),
    path("", include("contacts.api_urls")),
    path("", include("privacy.api_urls")),
    path("", include("stats.api_urls")),
    path("", include("domains.api_urls")),
    path("", include("audiences.api_urls")),
    path("", include("campaigns.api_urls")),
    path("", include("journeys.api_urls")),
    path("", include("media.api_urls")),
    # Anything else under the API answers in JSON too.
    re_path(r"^.*$", api_not_found),
]

urlpatterns = [
    path("", account_views.dashboard, name="dashboard"),
    path("healthz", account_views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("", include("accounts.urls")),
    path("", include("contacts.urls")),
    path("", include("contacts.urls_suppressions")),
    path("", include("contacts.urls_subscribe")),
    path("", include("privacy.urls")),
    path("", include("domains.urls")),
    path("", include("audiences.urls")),
    path("", include("campaigns.urls")),
    path("", include("campaigns.urls_public")),
    path("", include("journeys.urls")),
    path("", include("media.urls")),
    path("", include("stats.urls_reports")),
    path("webhooks/", include("stats.urls")),
    path("api/v1/", include(api_v1)),
    # Other versions, and anything else under /api/, answer in JSON too.
    re_path(r"^api/", api_not_found),
    path("admin/", admin.site.urls),
]
