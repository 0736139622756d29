"""Reads of events."""

from __future__ import annotations

from accounts.models import Account
from campaigns.models import Delivery, Link
from contacts.activity import Activity
from contacts.models import Contact
from events.models import Event


def contact_activity(account: Account, contact: Contact, *, limit: int = 20) -> list[Activity]:
    """The newest events of the messages sent to ``contact`` (their last 200 campaigns)."""
    # Looked up by an event's ids, which may be empty.
    deliveries: dict[int | None, str] = dict(
        Delivery.objects.for_account(account)
        .filter(contact=contact)
        .order_by("-pk")
        .values_list("pk", "campaign__name")[:200]
    )
    if not deliveries:
        return []
    events = list(
        Event.objects.for_account(account)
        .filter(delivery_id__in=list(deliveries))
        .order_by("-occurred_at")[:limit]
    )
    link_ids = {e.link_id for e in events if e.link_id}
    links: dict[int | None, str] = dict(
        Link.objects.for_account(account).filter(pk__in=link_ids).values_list("pk", "url")
    )
    return [
        Activity(
            occurred_at=e.occurred_at,
            type=e.type,
            label=Event.Type(e.type).label if e.type in Event.Type.values else e.type,
            campaign_id=e.campaign_id,
            campaign_name=deliveries.get(e.delivery_id, ""),
            link_url=links.get(e.link_id, ""),
            machine=e.machine,
        )
        for e in events
    ]
