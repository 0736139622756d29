from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        # Loading the Celery app here (not in config/__init__.py) makes it the current app
        # in every Django process, so tasks enqueue to the configured broker, without
        # importing the config package setting DJANGO_SETTINGS_MODULE as a side effect.
        import config.celery  # noqa: F401
        from accounts import checks, signals  # noqa: F401 - registers checks and receivers
