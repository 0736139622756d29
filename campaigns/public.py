"""What the links inside a campaign message do: record an open, resolve a click, unsubscribe,
change preferences, show the message again.

These run for anyone who holds a link, thousands of times a second at the peak of a send,
so each is a few hand-written statements (the pixel and the click three at most, the
one-click unsubscribe six at most, pinned by tests) and none of them opens a transaction
of its own. Ids come from the signed token; a click's target comes from the campaign's
Link table by position, never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import OuterRef
from django.utils import timezone

from accounts.models import Account
from campaigns.engagement import record_engagement
from campaigns.models import Campaign, Delivery, DeliveryBody
from contacts import services as contacts_services
from contacts.models import Contact, ContactList, Subscription, Suppression, email_sha256
from events import machines
from events.models import Event
from events.services import record_event

REDIRECT_SCHEMES = ("http", "https", "mailto")

# What the pixel and the click need to know, in one read: the campaign, the account and
# its tracking choice (read when the link is fetched, so a change applies at once), and
# when the message went out.
_DELIVERY_SQL = """
SELECT d.campaign_id, c.account_id, a.tracking, d.sent_at, ct.tracking_objected_at IS NOT NULL
FROM campaigns_delivery AS d
JOIN campaigns_campaign AS c ON c.id = d.campaign_id
JOIN accounts_account AS a ON a.id = c.account_id
LEFT JOIN contacts_contact AS ct ON ct.id = d.contact_id
WHERE d.id = %s
"""
# (with the times of the delivery's clicks of the last moment: a scanner clicks every link
# at once)
_LINK_SQL = """
SELECT l.id, l.url, d.campaign_id, c.account_id, a.tracking, d.sent_at,
    ct.tracking_objected_at IS NOT NULL,
    ARRAY(SELECT e.occurred_at FROM stats_event AS e
          WHERE e.delivery_id = d.id AND e.type = %s AND e.occurred_at >= %s)
FROM campaigns_delivery AS d
JOIN campaigns_campaign AS c ON c.id = d.campaign_id
JOIN accounts_account AS a ON a.id = c.account_id
JOIN campaigns_link AS l ON l.campaign_id = d.campaign_id AND l.position = %s
LEFT JOIN contacts_contact AS ct ON ct.id = d.contact_id
WHERE d.id = %s
"""
_CAMPAIGN_SQL = """
SELECT c.account_id, a.tracking FROM campaigns_campaign AS c
JOIN accounts_account AS a ON a.id = c.account_id
WHERE c.id = %s
"""
_CAMPAIGN_LINK_SQL = """
SELECT l.id, l.url, c.account_id, a.tracking FROM campaigns_campaign AS c
JOIN accounts_account AS a ON a.id = c.account_id
JOIN campaigns_link AS l ON l.campaign_id = c.id AND l.position = %s
WHERE c.id = %s
"""

PER_RECIPIENT = Account.Tracking.PER_RECIPIENT
OFF = Account.Tracking.OFF


def record_open(delivery_id: int, *, user_agent: str, ip: str | None = None) -> bool:
    """An open of the message. Machine opens (image proxies, prefetchers) are recorded
    but flagged, and do not count as the recipient's first open; under anonymous
    tracking the open is counted for the campaign only; with tracking off, nothing is
    kept. False if the delivery does not exist."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_DELIVERY_SQL, [delivery_id])
        row = cursor.fetchone()
        if row is None:
            return False
        campaign_id, account_id, tracking, sent_at, objected = row
        if tracking == OFF:
            return True
    reason = machines.open_reason(user_agent, ip, sent_at, now)
    # A person who objected to tracking is counted, never named.
    record_engagement(
        Event.Type.OPEN,
        account_id=account_id,
        campaign_id=campaign_id,
        delivery_id=delivery_id,
        personal=tracking == PER_RECIPIENT and not objected,
        machine=reason is not None,
        at=now,
        detail=machines.reason_detail(reason),
    )
    return True


def resolve_click(
    delivery_id: int, position: int, *, user_agent: str, ip: str | None = None
) -> str | None:
    """The target of a tracked link, after recording the click (as ``record_open`` does
    for opens); None if there is none."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _LINK_SQL,
            [Event.Type.CLICK.value, now - machines.CLICK_BURST_WINDOW, position, delivery_id],
        )
        row = cursor.fetchone()
        if row is None:
            return None
        link_id, url, campaign_id, account_id, tracking, sent_at, objected, recent = row
        if urlsplit(url).scheme.lower() not in REDIRECT_SCHEMES:
            return None
        if tracking == OFF:
            return url
    reason = machines.click_reason(user_agent, ip, sent_at, now, recent)
    record_engagement(
        Event.Type.CLICK,
        account_id=account_id,
        campaign_id=campaign_id,
        delivery_id=delivery_id,
        personal=tracking == PER_RECIPIENT and not objected,
        machine=reason is not None,
        at=now,
        link_id=link_id,
        detail=machines.reason_detail(reason),
    )
    return url


def record_anonymous_open(campaign_id: int, *, user_agent: str, ip: str | None = None) -> bool:
    """An open counted for the campaign only: the link names no one."""
    with connection.cursor() as cursor:
        cursor.execute(_CAMPAIGN_SQL, [campaign_id])
        row = cursor.fetchone()
    if row is None:
        return False
    account_id, tracking = row
    if tracking != OFF:
        reason = machines.open_reason(user_agent, ip)
        record_event(
            Event.Type.OPEN,
            account_id=account_id,
            campaign_id=campaign_id,
            machine=reason is not None,
            detail=machines.reason_detail(reason),
        )
    return True


def resolve_anonymous_click(
    campaign_id: int, position: int, *, user_agent: str, ip: str | None = None
) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(_CAMPAIGN_LINK_SQL, [position, campaign_id])
        row = cursor.fetchone()
    if row is None:
        return None
    link_id, url, account_id, tracking = row
    if urlsplit(url).scheme.lower() not in REDIRECT_SCHEMES:
        return None
    if tracking != OFF:
        reason = machines.click_reason(user_agent, ip)
        record_event(
            Event.Type.CLICK,
            account_id=account_id,
            campaign_id=campaign_id,
            link_id=link_id,
            machine=reason is not None,
            detail=machines.reason_detail(reason),
        )
    return url


@dataclass(frozen=True)
class Recipient:
    """Who a recipient link speaks to: the delivery, its campaign (with the ids of its
    lists) and account, and the contact (None once erased)."""

    delivery: Delivery
    campaign: Campaign
    account: Account
    contact: Contact | None
    list_ids: list[int]


def recipient(delivery_id: int) -> Recipient | None:
    lists = Campaign.lists.through.objects.filter(campaign_id=OuterRef("campaign_id"))
    delivery = (
        Delivery.objects.select_related("campaign__account", "contact")
        .annotate(list_ids=ArraySubquery(lists.values("contactlist_id")))
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return None
    return Recipient(
        delivery=delivery,
        campaign=delivery.campaign,
        account=delivery.campaign.account,
        contact=delivery.contact,
        list_ids=list(delivery.list_ids),
    )


@transaction.atomic(savepoint=False)
def unsubscribe(who: Recipient, *, how: str) -> int:
    """Unsubscribe the recipient from the campaign's lists, at once, and record the event
    against the message; idempotent. ``how`` names the route (one-click, page, mailto, a
    provider). Returns how many subscriptions changed."""
    if who.contact is None:
        return 0
    now = timezone.now()
    changed = contacts_services.unsubscribe(
        account=who.account,
        actor=None,
        contact_ids=[who.contact.pk],
        list_ids=who.list_ids,
        how=how,
        when=now,
    )
    if changed:
        _record_unsubscribe(who, now, how=how, lists=[list_id for _, list_id in changed])
    return len(changed)


def _record_unsubscribe(who: Recipient, at: datetime, **detail: object) -> None:
    record_event(
        Event.Type.UNSUBSCRIBE,
        account_id=who.account.pk,
        campaign_id=who.campaign.pk,
        delivery_id=who.delivery.pk,
        detail=detail,
        occurred_at=at,
    )


def campaign_lists(who: Recipient) -> list[ContactList]:
    return list(ContactList.objects.filter(pk__in=who.list_ids).order_by("name"))


def is_unsubscribed(who: Recipient) -> bool:
    """Whether the recipient is already off every list of the campaign, so the page shows
    that instead of a button that would change nothing."""
    if who.contact is None:
        return True
    return (
        not Subscription.objects.filter(contact=who.contact, contact_list_id__in=who.list_ids)
        .exclude(status=Subscription.Status.UNSUBSCRIBED)
        .exists()
    )


def preferences(who: Recipient) -> list[Subscription]:
    """The recipient's subscriptions with this account (the lists they are on)."""
    if who.contact is None:
        return []
    return list(
        Subscription.objects.filter(contact=who.contact)
        .select_related("contact_list")
        .order_by("contact_list__name")
    )


@transaction.atomic
def update_preferences(
    who: Recipient,
    *,
    keep: set[int],
    stop_everything: bool,
    ip: str | None,
    user_agent: str,
) -> None:
    """The recipient's own choice: lists in ``keep`` stay (or are subscribed again, which
    they ask for themselves, recording the consent); the others are unsubscribed;
    ``stop_everything`` also puts the address on the account's suppression list."""
    contact = who.contact
    if contact is None:
        return
    now = timezone.now()
    current = preferences(who)
    if not stop_everything:
        for subscription in current:
            if (
                subscription.contact_list_id in keep
                and subscription.status == Subscription.Status.UNSUBSCRIBED
            ):
                try:
                    contacts_services.subscription_subscribe(
                        contact=contact,
                        contact_list=subscription.contact_list,
                        source=Subscription.Source.FORM,
                        legal_basis=Subscription.LegalBasis.CONSENT,
                        consent_text=(
                            f"Subscribed again to {subscription.contact_list.name} from the "
                            f"preferences page of a message of {who.account.name}."
                        ),
                        consent_ip=ip,
                        consent_user_agent=user_agent,
                    )
                except ValidationError:  # the address is suppressed: it stays off
                    continue
    leave = [s.contact_list_id for s in current if stop_everything or s.contact_list_id not in keep]
    left = contacts_services.unsubscribe(
        account=who.account,
        actor=None,
        contact_ids=[contact.pk],
        list_ids=leave,
        how="preferences",
        when=now,
    )
    if stop_everything:
        contacts_services.suppress(
            account=who.account,
            digests=[email_sha256(contact.email)],
            reason=Suppression.Reason.UNSUBSCRIBE,
            actor=None,
            note="From a message",
        )
    Contact.objects.filter(pk=contact.pk).update(last_activity_at=now)
    if left or stop_everything:
        _record_unsubscribe(
            who,
            now,
            how="preferences",
            lists=[list_id for _, list_id in left],
            everything=stop_everything,
        )


def stored_body(delivery_id: int) -> DeliveryBody | None:
    """The message as sent, while it is kept (6 days)."""
    return DeliveryBody.objects.filter(pk=delivery_id).first()


def stop_tracking(who: Recipient) -> bool:
    """The recipient objects to tracking: from now on their opens and clicks are counted
    for the campaign without naming them, here and in every later message. Idempotent;
    True when it changed something."""
    if who.contact is None:
        return False
    now = timezone.now()
    changed = Contact.objects.filter(pk=who.contact.pk, tracking_objected_at__isnull=True).update(
        tracking_objected_at=now, updated_at=now
    )
    return bool(changed)
