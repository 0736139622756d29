"""The images endpoints, under /api/v1/ (image_id names what it points to, so the tenancy
sweep can fill it)."""

from django.urls import path

from media import api

urlpatterns = [
    path("images/", api.ImagesView.as_view(), name="api-images"),
    path("images/<int:image_id>/", api.ImageView.as_view(), name="api-image"),
]
