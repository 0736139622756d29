from django.apps import AppConfig


class MediaConfig(AppConfig):
    """The images customers upload for their campaigns: checked, stripped of metadata,
    resized, kept in Django's storage and served at stable public URLs for mail."""

    name = "media"
