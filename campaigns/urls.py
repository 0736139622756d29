from django.urls import path

from campaigns.views import manage

urlpatterns = [
    path("campaigns/", manage.campaigns, name="campaigns"),
    path("campaigns/new/", manage.campaign_new, name="campaign_new"),
    path("campaigns/templates/", manage.templates, name="campaign_templates"),
    path(
        "campaigns/templates/<int:template_id>/delete/",
        manage.template_delete,
        name="template_delete",
    ),
    path("campaigns/<int:campaign_id>/", manage.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/preview/", manage.campaign_preview, name="campaign_preview"),
    path("campaigns/<int:campaign_id>/test/", manage.campaign_test, name="campaign_test"),
    path("campaigns/<int:campaign_id>/delete/", manage.campaign_delete, name="campaign_delete"),
    path(
        "campaigns/<int:campaign_id>/save-template/",
        manage.campaign_save_template,
        name="campaign_save_template",
    ),
]
