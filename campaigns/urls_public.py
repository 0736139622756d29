from django.urls import path

from campaigns.views import public

# Public: the links inside campaign messages, each opened by its signed token.
urlpatterns = [
    path("t/o/<str:token>", public.track_open, name="track_open"),
    path("t/c/<str:token>", public.track_click, name="track_click"),
    path("u/<str:token>", public.unsubscribe, name="unsubscribe"),
    path("u/<str:token>/preferences", public.preferences, name="preferences"),
    path("v/<str:token>", public.view_in_browser, name="view_in_browser"),
]
