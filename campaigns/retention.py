"""Retention of the personalized copies of sent messages (DeliveryBody): 6 days by
default. After that, "view in browser" says the message is no longer available, while
the unsubscribe and preferences links of the message keep working (their tokens carry
ids only)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from accounts.retention_policy import Policy
from campaigns.models import DeliveryBody

CHUNK = 10_000


def _expired(now: datetime) -> QuerySet[DeliveryBody]:
    days = settings.MISSIVE_RETENTION["message_bodies_days"]
    return DeliveryBody.objects.filter(created_at__lt=now - timedelta(days=days))


def due(now: datetime) -> int:
    return _expired(now).count()


def purge(now: datetime) -> int:
    """In chunks, so a day of a million messages never holds one huge transaction."""
    removed = 0
    while True:
        ids = list(_expired(now).order_by().values_list("pk", flat=True)[:CHUNK])
        if not ids:
            return removed
        deleted, _ = DeliveryBody.objects.filter(pk__in=ids).delete()
        removed += deleted


POLICIES = [
    Policy(
        name="message_bodies",
        description="Personalized copies of sent messages (view in browser), kept 6 days "
        "by default.",
        due=due,
        purge=purge,
    )
]
