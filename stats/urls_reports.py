from django.urls import path

from stats import views_reports

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
        "campaigns/comparison/",
        views_reports.campaign_comparison,
        name="campaign_comparison",
    ),
]
