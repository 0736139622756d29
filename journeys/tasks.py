"""Celery tasks of journeys: thin, idempotent, taking ids."""

from __future__ import annotations

import logging

from celery import shared_task

from journeys import engine, services, triggers
from journeys.models import Journey

logger = logging.getLogger(__name__)


@shared_task(name="journeys.advance")
def advance(journey_id: int) -> int:
    """Move one batch of the journey's due enrollments; queue the next batch while more
    are due."""
    report = engine.advance(journey_id)
    if report.more:
        advance.delay(journey_id)
    else:
        services.finish_if_empty(journey_id)
    return report.claimed


@shared_task(name="journeys.scan_account")
def scan_account(account_id: int) -> int:
    """Read the triggers of the account's live journeys now (a subscription or a tag
    just changed)."""
    entered = 0
    for journey_id in Journey.objects.filter(
        account_id=account_id, status=Journey.Status.LIVE
    ).values_list("pk", flat=True):
        entered += triggers.scan(journey_id)
    return entered


@shared_task(name="journeys.tick")
def tick() -> dict[str, int]:
    """Every minute: each live journey reads its trigger; every journey with due
    enrollments and nobody moving them gets a batch started (the sweeper: a lost task
    costs a minute, never a step)."""
    entered = kicked = 0
    for journey_id in Journey.objects.filter(status=Journey.Status.LIVE).values_list(
        "pk", flat=True
    ):
        try:
            entered += triggers.scan(journey_id)
        except Exception:  # one journey's broken trigger must not stop the others
            logger.exception("Journey %s: its trigger could not be read", journey_id)
    for journey_id in Journey.objects.filter(status__in=engine.MOVING).values_list("pk", flat=True):
        if engine.due_exists(journey_id):
            advance.delay(journey_id)
            kicked += 1
        else:
            services.finish_if_empty(journey_id)
    return {"entered": entered, "kicked": kicked}
