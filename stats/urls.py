"""Under /webhooks/: the providers' event webhooks (anymail's URLs, ``<provider>/tracking/``,
reversed as ``anymail:<provider>_tracking_webhook``) and the bounce endpoint."""

from django.urls import include, path

from stats import views, webhooks

urlpatterns = [
    path("bounces/", views.bounce_report, name="bounce_report"),
    path("", include((webhooks.tracking_urlpatterns(), "anymail"))),
]
