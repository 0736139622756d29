"""The campaigns endpoints of the API, under /api/v1/. Keywords are named after what they
point to (campaign_id, template_id) so the tenancy sweep can fill them."""

from django.urls import path

from campaigns.api import views

urlpatterns = [
    path("campaigns/", views.CampaignsView.as_view(), name="api-campaigns"),
    path("campaigns/<int:campaign_id>/", views.CampaignView.as_view(), name="api-campaign"),
    path(
        "campaigns/<int:campaign_id>/test/",
        views.CampaignTestView.as_view(),
        name="api-campaign-test",
    ),
    path(
        "campaigns/<int:campaign_id>/duplicate/",
        views.CampaignDuplicateView.as_view(),
        name="api-campaign-duplicate",
    ),
    path(
        "campaigns/<int:campaign_id>/checks/",
        views.CampaignChecksView.as_view(),
        name="api-campaign-checks",
    ),
    path(
        "campaigns/<int:campaign_id>/follow-up/",
        views.CampaignFollowUpView.as_view(),
        name="api-campaign-follow-up",
    ),
    path(
        "campaigns/<int:campaign_id>/ab-test/",
        views.CampaignABTestView.as_view(),
        name="api-campaign-ab-test",
    ),
    path(
        "campaigns/<int:campaign_id>/ab-test/winner/",
        views.CampaignABWinnerView.as_view(),
        name="api-campaign-ab-winner",
    ),
    path(
        "campaigns/<int:campaign_id>/publish/",
        views.CampaignPublishView.as_view(),
        name="api-campaign-publish",
    ),
    path(
        "campaigns/<int:campaign_id>/start/",
        views.CampaignStartView.as_view(),
        name="api-campaign-start",
    ),
    path(
        "campaigns/<int:campaign_id>/schedule/",
        views.CampaignScheduleView.as_view(),
        name="api-campaign-schedule",
    ),
    path(
        "campaigns/<int:campaign_id>/unschedule/",
        views.CampaignUnscheduleView.as_view(),
        name="api-campaign-unschedule",
    ),
    path(
        "campaigns/<int:campaign_id>/pause/",
        views.CampaignPauseView.as_view(),
        name="api-campaign-pause",
    ),
    path(
        "campaigns/<int:campaign_id>/resume/",
        views.CampaignResumeView.as_view(),
        name="api-campaign-resume",
    ),
    path(
        "campaigns/<int:campaign_id>/cancel/",
        views.CampaignCancelView.as_view(),
        name="api-campaign-cancel",
    ),
    path(
        "campaigns/<int:campaign_id>/progress/",
        views.CampaignProgressView.as_view(),
        name="api-campaign-progress",
    ),
    path("templates/", views.TemplatesView.as_view(), name="api-templates"),
    path("templates/<int:template_id>/", views.TemplateView.as_view(), name="api-template"),
]
