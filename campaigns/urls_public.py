from django.urls import path

from campaigns.views import archive, public

# Public: the links inside campaign messages, each opened by its signed token.
urlpatterns = [
    path("t/o/<str:token>", public.track_open, name="track_open"),
    path("t/c/<str:token>", public.track_click, name="track_click"),
    # Anonymous counts: the token names the campaign, not the recipient.
    path("t/ao/<str:token>", public.track_open_anonymous, name="track_open_anonymous"),
    path("t/ac/<str:token>", public.track_click_anonymous, name="track_click_anonymous"),
    path("u/<str:token>", public.unsubscribe, name="unsubscribe"),
    path("u/<str:token>/preferences", public.preferences, name="preferences"),
    path("u/<str:token>/stop-tracking", public.stop_tracking, name="stop_tracking"),
    path("v/<str:token>", public.view_in_browser, name="view_in_browser"),
    # The account's public archive, opened by its key (campaigns.archive).
    path("archive/<str:key>/", archive.archive_index, name="archive_index"),
    path("archive/<str:key>/feed.atom", archive.archive_feed, name="archive_feed"),
    path("archive/<str:key>/<int:campaign_id>/", archive.archive_campaign, name="archive_campaign"),
    path(
        "archive/<str:key>/<int:campaign_id>/content",
        archive.archive_content,
        name="archive_content",
    ),
]
