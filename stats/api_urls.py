"""The statistics endpoints of the API, under /api/v1/."""

from django.urls import path

from stats import api

urlpatterns = [
    path(
        "campaigns/<int:campaign_id>/report/",
        api.CampaignReportView.as_view(),
        name="api-campaign-report",
    ),
    path(
        "domains/<int:domain_id>/readiness/",
        api.DomainReadinessView.as_view(),
        name="api-domain-readiness",
    ),
]
