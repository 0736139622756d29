from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """The processor's duties, on top of every other app: closing an account, erasing a
    person, answering a recipient's data request and running retention."""

    name = "privacy"
