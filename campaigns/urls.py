from django.urls import path

from campaigns.views import ab, blocks, manage

urlpatterns = [
    path("campaigns/", manage.campaigns, name="campaigns"),
    path("campaigns/new/", manage.campaign_new, name="campaign_new"),
    path("campaigns/templates/", manage.templates, name="campaign_templates"),
    path("campaigns/starters/<slug:key>/preview/", blocks.starter_preview, name="starter_preview"),
    path(
        "campaigns/templates/<int:template_id>/preview/",
        blocks.template_preview,
        name="template_preview",
    ),
    path(
        "campaigns/templates/<int:template_id>/delete/",
        manage.template_delete,
        name="template_delete",
    ),
    path("campaigns/<int:campaign_id>/", manage.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/preview/", manage.campaign_preview, name="campaign_preview"),
    path("campaigns/<int:campaign_id>/blocks/", blocks.campaign_blocks, name="campaign_blocks"),
    path(
        "campaigns/<int:campaign_id>/blocks/change/",
        blocks.campaign_blocks_change,
        name="campaign_blocks_change",
    ),
    path(
        "campaigns/<int:campaign_id>/blocks/upload/",
        blocks.campaign_blocks_upload,
        name="campaign_blocks_upload",
    ),
    path("campaigns/<int:campaign_id>/editor/", blocks.campaign_editor, name="campaign_editor"),
    path("campaigns/<int:campaign_id>/publish/", manage.campaign_publish, name="campaign_publish"),
    path(
        "campaigns/<int:campaign_id>/preview/contacts/",
        manage.campaign_preview_contacts,
        name="campaign_preview_contacts",
    ),
    path("campaigns/<int:campaign_id>/ab-test/", ab.campaign_ab, name="campaign_ab"),
    path(
        "campaigns/<int:campaign_id>/ab-test/winner/",
        ab.campaign_ab_winner,
        name="campaign_ab_winner",
    ),
    path("campaigns/<int:campaign_id>/test/", manage.campaign_test, name="campaign_test"),
    path(
        "campaigns/<int:campaign_id>/duplicate/",
        manage.campaign_duplicate,
        name="campaign_duplicate",
    ),
    path("campaigns/<int:campaign_id>/delete/", manage.campaign_delete, name="campaign_delete"),
    path("campaigns/<int:campaign_id>/start/", manage.campaign_start, name="campaign_start"),
    path(
        "campaigns/<int:campaign_id>/schedule/", manage.campaign_schedule, name="campaign_schedule"
    ),
    path(
        "campaigns/<int:campaign_id>/unschedule/",
        manage.campaign_unschedule,
        name="campaign_unschedule",
    ),
    path("campaigns/<int:campaign_id>/pause/", manage.campaign_pause, name="campaign_pause"),
    path("campaigns/<int:campaign_id>/resume/", manage.campaign_resume, name="campaign_resume"),
    path("campaigns/<int:campaign_id>/cancel/", manage.campaign_cancel, name="campaign_cancel"),
    path(
        "campaigns/<int:campaign_id>/progress/", manage.campaign_progress, name="campaign_progress"
    ),
    path(
        "campaigns/<int:campaign_id>/follow-up/",
        manage.campaign_follow_up,
        name="campaign_follow_up",
    ),
    path(
        "campaigns/<int:campaign_id>/save-template/",
        manage.campaign_save_template,
        name="campaign_save_template",
    ),
]
