"""Celery tasks of the sending pipeline: thin, idempotent, taking ids."""

from __future__ import annotations

import math

from celery import shared_task
from django.conf import settings

from campaigns import ab, sending, services
from campaigns.models import Campaign
from campaigns.states import State


def dispatch(campaign_id: int) -> int:
    """Start the campaign's lanes: each sends one batch, then queues the next."""
    campaign = Campaign.objects.filter(pk=campaign_id, status=State.SENDING).first()
    if campaign is None:
        return 0
    batches = math.ceil(max(campaign.recipients_count, 1) / settings.MISSIVE_SEND_BATCH_SIZE)
    lanes = max(1, min(settings.MISSIVE_SEND_LANES, batches))
    for _ in range(lanes):
        send_batch.delay(campaign_id)
    return lanes


@shared_task(name="campaigns.take_snapshot")
def take_snapshot(campaign_id: int) -> int:
    """Take the audience (once), then start sending."""
    recipients = sending.take_snapshot(campaign_id)
    dispatch(campaign_id)
    return recipients


@shared_task(name="campaigns.send_batch")
def send_batch(campaign_id: int) -> int:
    report = sending.send_batch(campaign_id)
    if report.more:
        send_batch.delay(campaign_id)
    return report.sent


@shared_task(name="campaigns.kick")
def kick(campaign_id: int) -> int:
    """Start the lanes of a sending campaign whose held messages became due again."""
    return dispatch(campaign_id)


@shared_task(name="campaigns.sweep_sending")
def sweep_sending() -> dict[str, object]:
    report = sending.sweep()
    for campaign_id in report.kicked:
        dispatch(campaign_id)
    for campaign_id in report.unsnapshotted:
        take_snapshot.delay(campaign_id)
    return {
        "returned": report.returned,
        "kicked": report.kicked,
        "finished": report.finished,
        "snapshots": report.unsnapshotted,
    }


@shared_task(name="campaigns.start_due")
def start_due() -> list[int]:
    return services.start_due_campaigns()


@shared_task(name="campaigns.decide_ab_tests")
def decide_ab_tests() -> list[int]:
    return ab.decide_due()
