"""Writes of events. Every part of Missive that witnesses something happen to a message
(the sender, the public endpoints, provider feedback) records it here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from events.models import Event


@dataclass(frozen=True)
class NewEvent:
    type: str
    account_id: int
    campaign_id: int | None = None
    delivery_id: int | None = None
    link_id: int | None = None
    occurred_at: datetime | None = None
    machine: bool = False
    detail: Mapping[str, object] = field(default_factory=dict)
    dedup_key: str | None = None


def record_event(
    type: str,
    *,
    account_id: int,
    campaign_id: int | None = None,
    delivery_id: int | None = None,
    link_id: int | None = None,
    machine: bool = False,
    detail: Mapping[str, object] | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """One event, in one INSERT."""
    Event.objects.create(
        type=type,
        account_id=account_id,
        campaign_id=campaign_id,
        delivery_id=delivery_id,
        link_id=link_id,
        machine=machine,
        detail=dict(detail or {}),
        occurred_at=occurred_at or timezone.now(),
    )


def record_events(events: Iterable[NewEvent]) -> int:
    """Many events in one statement; how many were written."""
    now = timezone.now()
    rows = [
        Event(
            type=e.type,
            account_id=e.account_id,
            campaign_id=e.campaign_id,
            delivery_id=e.delivery_id,
            link_id=e.link_id,
            machine=e.machine,
            detail=dict(e.detail),
            occurred_at=e.occurred_at or now,
            dedup_key=e.dedup_key,
        )
        for e in events
    ]
    Event.objects.bulk_create(rows, batch_size=1000)
    return len(rows)
