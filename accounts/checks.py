"""A system check that keeps tenant scoping the only path to customer data: every
model with a foreign key to Account must offer ``for_account``."""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core import checks

from accounts.models import Account


@checks.register()
def account_scoped_models(
    app_configs: object = None, **kwargs: object
) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for model in apps.get_models():
        if model._meta.app_label not in settings.MISSIVE_APPS or model is Account:
            continue
        points_at_account = any(
            getattr(field, "related_model", None) is Account
            for field in model._meta.get_fields()
            if field.many_to_one
        )
        if points_at_account and not hasattr(model._default_manager, "for_account"):
            errors.append(
                checks.Error(
                    f"{model._meta.label} belongs to an account but its default manager has "
                    "no for_account().",
                    hint="Use accounts.scoping.AccountScopedManager.",
                    obj=model,
                    id="missive.E001",
                )
            )
    return errors


@checks.register(checks.Tags.security, deploy=True)
def base_url_is_https(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """The production settings refuse to start without it; this says so again in
    ``check --deploy`` wherever those settings let a plain-http address through (DEBUG)."""
    if urlsplit(settings.MISSIVE_BASE_URL).scheme == "https":
        return []
    return [
        checks.Error(
            f"MISSIVE_BASE_URL is {settings.MISSIVE_BASE_URL!r}, not an https:// address.",
            hint="One-click unsubscribe (RFC 8058) requires https links, and the links "
            "Missive mails must not travel in the clear: set MISSIVE_BASE_URL to the "
            "installation's https:// address.",
            id="missive.E002",
        )
    ]


@checks.register()
def provider_library_installed(
    app_configs: object = None, **kwargs: object
) -> list[checks.CheckMessage]:
    """A provider whose API needs a library of its own (Amazon SES: boto3) comes with an
    extra of Missive's; without it, say which at start rather than at the first send."""
    esp = settings.EMAIL_ESP
    if not esp:
        return []
    try:
        importlib.import_module(f"anymail.backends.{esp}")
    except ImportError as missing:
        return [
            checks.Error(
                f"EMAIL_ESP={esp} needs a library that is not installed ({missing}).",
                hint=f"pip install 'missive[{esp.replace('_', '-')}]'",
                id="missive.E003",
            )
        ]
    return []
