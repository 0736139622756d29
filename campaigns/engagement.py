"""A recipient's open or click, whoever saw it: Missive's own pixel and redirect
(campaigns.public) or a provider's tracking (stats.feedback). The one place that stamps
a delivery's first open and first click.

The rule: the event is always kept (flagged when a machine did it: an image proxy, a link
scanner); under per-recipient tracking of someone who did not object, it names the
delivery, and a person's open or click is stamped on it as the first one when it is the
earliest seen, and as the contact's newest open or click when it is the latest (what
segments read); a click is the contact's activity too. The stamps and the event are one
statement: one round trip, one commit, at the peak of a send.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from events.models import Event
from events.services import NewEvent, record_events

# LEAST and GREATEST skip NULLs: the first stamp is the earliest report, whatever order
# the reports arrive in, and a late report never moves the last activity back.
_STAMPS = {
    Event.Type.OPEN: """
WITH stamped AS (
    UPDATE campaigns_delivery SET first_opened_at = LEAST(first_opened_at, %(at)s)
    WHERE id = %(delivery)s AND %(person)s
    RETURNING contact_id
), opened AS (
    UPDATE contacts_contact SET last_opened_at = GREATEST(last_opened_at, %(at)s)
    WHERE id = (SELECT contact_id FROM stamped)
)""",
    Event.Type.CLICK: """
WITH stamped AS (
    UPDATE campaigns_delivery SET first_clicked_at = LEAST(first_clicked_at, %(at)s)
    WHERE id = %(delivery)s AND %(person)s
    RETURNING contact_id
), active AS (
    UPDATE contacts_contact SET last_activity_at = GREATEST(last_activity_at, %(at)s),
        last_clicked_at = GREATEST(last_clicked_at, %(at)s)
    WHERE id = (SELECT contact_id FROM stamped)
)""",
}


def record_engagement(
    type: str,
    *,
    account_id: int,
    campaign_id: int,
    delivery_id: int,
    personal: bool,
    machine: bool,
    at: datetime,
    link_id: int | None = None,
    detail: Mapping[str, object] | None = None,
    dedup_key: str | None = None,
) -> bool:
    """Record an open or a click (``type``) of ``delivery_id``. ``personal``: the account
    tracks recipients and this one did not object, so the event names the delivery.
    False when a report with the same ``dedup_key`` was stored already."""
    event = NewEvent(
        type=type,
        account_id=account_id,
        campaign_id=campaign_id,
        delivery_id=delivery_id if personal else None,
        link_id=link_id,
        occurred_at=at,
        machine=machine,
        detail=dict(detail or {}),
        dedup_key=dedup_key,
    )
    stored = record_events(
        [event],
        before=_STAMPS[Event.Type(type)],
        params={"at": at, "delivery": delivery_id, "person": personal and not machine},
    )
    return stored == 1
