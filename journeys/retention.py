"""Retention of journeys' history, by the events' rule (13 months by default): an
enrollment that ended that long ago goes with the steps it records, and so do the events
the API recorded. Enrollments still inside a journey stay, however old."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from accounts.retention_policy import Policy
from events.retention import cutoff
from journeys.models import ContactEvent, Enrollment

CHUNK = 10_000


def _finished(now: datetime) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(finished_at__lt=cutoff(now))


def _events(now: datetime) -> QuerySet[ContactEvent]:
    return ContactEvent.objects.filter(created_at__lt=cutoff(now))


def _purge(queryset: QuerySet[Enrollment] | QuerySet[ContactEvent]) -> int:
    removed = 0
    while True:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:CHUNK])
        if not ids:
            return removed
        deleted, _ = queryset.model.objects.filter(pk__in=ids).delete()
        removed += deleted


POLICIES = [
    Policy(
        name="journey_enrollments",
        description="Who went through a journey and the steps they reached, kept 13 months "
        "after they finished by default (as tracking events).",
        due=lambda now: _finished(now).count(),
        purge=lambda now: _purge(_finished(now)),
    ),
    Policy(
        name="journey_events",
        description="Events sent to the API for journeys (order_placed…), kept 13 months "
        "by default (as tracking events).",
        due=lambda now: _events(now).count(),
        purge=lambda now: _purge(_events(now)),
    ),
]
