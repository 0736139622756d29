"""The sending domains endpoints, under /api/v1/ (domain_id names what it points to, so
the tenancy sweep can fill it)."""

from django.urls import path

from domains.api import views

urlpatterns = [
    path("domains/", views.DomainsView.as_view(), name="api-domains"),
    path("domains/<int:domain_id>/", views.DomainView.as_view(), name="api-domain"),
    path(
        "domains/<int:domain_id>/check/", views.DomainCheckView.as_view(), name="api-domain-check"
    ),
    path(
        "domains/<int:domain_id>/rotate/",
        views.DomainRotateView.as_view(),
        name="api-domain-rotate",
    ),
]
