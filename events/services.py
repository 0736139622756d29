"""The one door that writes events. Every part of Missive that witnesses something happen
to a message (the sender, the public endpoints, provider feedback) records it here, and
nothing else inserts into the event table.

Events are written by one statement, whatever their number: rows go as arrays that
PostgreSQL unnests, so a batch of a thousand "sent" events costs one round trip, and a
caller that must change a row of its own in the same statement (the first-open stamp of
``campaigns.engagement``) puts that write in front of it as a WITH clause. An event that
carries its source's id (``dedup_key``) is stored once: the same report delivered twice
conflicts with the first and is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone


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


_INSERT_SQL = """
INSERT INTO stats_event
    (account_id, campaign_id, delivery_id, link_id, type, occurred_at, machine, detail,
     dedup_key)
SELECT * FROM unnest(
    %(event_account)s::bigint[], %(event_campaign)s::bigint[], %(event_delivery)s::bigint[],
    %(event_link)s::bigint[], %(event_type)s::text[], %(event_at)s::timestamptz[],
    %(event_machine)s::boolean[], %(event_detail)s::jsonb[], %(event_dedup)s::text[])
ON CONFLICT DO NOTHING
RETURNING 1
"""


def record_events(
    events: Iterable[NewEvent],
    *,
    before: str = "",
    params: Mapping[str, Any] | None = None,
) -> int:
    """Write ``events`` in one statement; how many were stored (a report already stored
    under the same ``dedup_key`` and time is not). ``before`` is a WITH clause of the
    caller's own writes to run in the same statement, with its named ``params`` (which
    must not start with ``event_``)."""
    rows = list(events)
    if not rows and not before:
        return 0
    now = timezone.now()
    values: dict[str, list[Any]] = {
        "event_account": [e.account_id for e in rows],
        "event_campaign": [e.campaign_id for e in rows],
        "event_delivery": [e.delivery_id for e in rows],
        "event_link": [e.link_id for e in rows],
        "event_type": [str(e.type) for e in rows],
        "event_at": [e.occurred_at or now for e in rows],
        "event_machine": [e.machine for e in rows],
        "event_detail": [json.dumps(dict(e.detail)) for e in rows],
        "event_dedup": [e.dedup_key for e in rows],
    }
    with connection.cursor() as cursor:
        cursor.execute(f"{before}\n{_INSERT_SQL}", {**(params or {}), **values})
        return len(cursor.fetchall())


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
    dedup_key: str | None = None,
) -> bool:
    """One event; False when a report with the same ``dedup_key`` and time is stored
    already."""
    event = NewEvent(
        type=type,
        account_id=account_id,
        campaign_id=campaign_id,
        delivery_id=delivery_id,
        link_id=link_id,
        machine=machine,
        detail=dict(detail or {}),
        occurred_at=occurred_at,
        dedup_key=dedup_key,
    )
    return record_events([event]) == 1
