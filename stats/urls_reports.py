from django.urls import path

from stats import views_readiness, views_reports

urlpatterns = [
    path(
        "campaigns/<int:campaign_id>/report/",
        views_reports.campaign_report,
        name="campaign_report",
    ),
    path(
        "campaigns/<int:campaign_id>/report.csv",
        views_reports.campaign_report_csv,
        name="campaign_report_csv",
    ),
    path(
        "campaigns/<int:campaign_id>/readiness/",
        views_readiness.campaign_readiness,
        name="campaign_readiness",
    ),
    path(
        "settings/domains/<int:domain_id>/readiness/",
        views_readiness.domain_readiness,
        name="domain_readiness",
    ),
    path(
        "campaigns/comparison/",
        views_reports.campaign_comparison,
        name="campaign_comparison",
    ),
]
