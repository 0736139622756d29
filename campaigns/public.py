"""What the links inside a campaign message do: record an open, resolve a click, unsubscribe,
change preferences, show the message again.

These run for anyone who holds a link, thousands of times a second at the peak of a send,
so each is a few hand-written statements (the pixel and the click three at most, the
one-click unsubscribe six at most, pinned by tests) and none of them opens a transaction
of its own. Ids come from the signed token; a click's target comes from the campaign's
Link table by position, never from the request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from campaigns.models import Campaign, Delivery, DeliveryBody
from contacts.models import Contact, ContactList, Subscription, Suppression, email_sha256
from contacts.selectors import forget_list_counts
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
          WHERE e.delivery_id = d.id AND e.type = 'click' AND e.occurred_at >= %s)
FROM campaigns_delivery AS d
JOIN campaigns_campaign AS c ON c.id = d.campaign_id
JOIN accounts_account AS a ON a.id = c.account_id
JOIN campaigns_link AS l ON l.campaign_id = d.campaign_id AND l.position = %s
LEFT JOIN contacts_contact AS ct ON ct.id = d.contact_id
WHERE d.id = %s
"""
# The recipient's first open (for a person's open only) and the event, in one statement:
# one round trip and one commit instead of two of each.
_OPEN_SQL = """
WITH opened AS (
    UPDATE campaigns_delivery SET first_opened_at = COALESCE(first_opened_at, %(now)s)
    WHERE id = %(delivery)s AND %(first)s
)
INSERT INTO stats_event (account_id, campaign_id, delivery_id, type, occurred_at, machine,
    detail)
VALUES (%(account)s, %(campaign)s, %(event_delivery)s, 'open', %(now)s, %(machine)s,
    %(detail)s::jsonb)
"""
_CLICK_SQL = """
WITH clicked AS (
    UPDATE campaigns_delivery SET first_clicked_at = COALESCE(first_clicked_at, %(now)s)
    WHERE id = %(delivery)s AND %(first)s
    RETURNING contact_id
), active AS (
    UPDATE contacts_contact SET last_activity_at = %(now)s
    WHERE id = (SELECT contact_id FROM clicked)
)
INSERT INTO stats_event (account_id, campaign_id, delivery_id, link_id, type, occurred_at,
    machine, detail)
VALUES (%(account)s, %(campaign)s, %(event_delivery)s, %(link)s, 'click', %(now)s, %(machine)s,
    %(detail)s::jsonb)
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
        machine = reason is not None
        # A person who objected to tracking is counted, never named.
        personal = tracking == PER_RECIPIENT and not objected
        cursor.execute(
            _OPEN_SQL,
            {
                "now": now,
                "delivery": delivery_id,
                "first": personal and not machine,
                "account": account_id,
                "campaign": campaign_id,
                "event_delivery": delivery_id if personal else None,
                "machine": machine,
                "detail": json.dumps(machines.reason_detail(reason)),
            },
        )
    return True


def resolve_click(
    delivery_id: int, position: int, *, user_agent: str, ip: str | None = None
) -> str | None:
    """The target of a tracked link, after recording the click (as ``record_open`` does
    for opens); None if there is none."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_LINK_SQL, [now - machines.CLICK_BURST_WINDOW, position, delivery_id])
        row = cursor.fetchone()
        if row is None:
            return None
        link_id, url, campaign_id, account_id, tracking, sent_at, objected, recent = row
        if urlsplit(url).scheme.lower() not in REDIRECT_SCHEMES:
            return None
        if tracking == OFF:
            return url
        reason = machines.click_reason(user_agent, ip, sent_at, now, recent)
        machine = reason is not None
        personal = tracking == PER_RECIPIENT and not objected
        cursor.execute(
            _CLICK_SQL,
            {
                "now": now,
                "delivery": delivery_id,
                "first": personal and not machine,
                "account": account_id,
                "campaign": campaign_id,
                "event_delivery": delivery_id if personal else None,
                "link": link_id,
                "machine": machine,
                "detail": json.dumps(machines.reason_detail(reason)),
            },
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
    """Who a recipient link speaks to: the delivery, its campaign and account, and the
    contact (None once erased)."""

    delivery: Delivery
    campaign: Campaign
    account: Account
    contact: Contact | None


def recipient(delivery_id: int) -> Recipient | None:
    delivery = (
        Delivery.objects.select_related("campaign__account", "contact")
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
    )


_UNSUBSCRIBE_SQL = """
UPDATE contacts_subscription AS s
SET status = 'unsubscribed', unsubscribed_at = %s, updated_at = %s
WHERE s.contact_id = %s AND s.status <> 'unsubscribed'
  AND s.contact_list_id IN (
      SELECT contactlist_id FROM campaigns_campaign_lists WHERE campaign_id = %s)
RETURNING s.contact_list_id
"""


def unsubscribe(who: Recipient, *, how: str) -> int:
    """Unsubscribe the recipient from the campaign's lists, at once; idempotent. Returns
    how many subscriptions changed."""
    if who.contact is None:
        return 0
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_UNSUBSCRIBE_SQL, [now, now, who.contact.pk, who.campaign.pk])
        list_ids = [row[0] for row in cursor.fetchall()]
    if list_ids:
        forget_list_counts(list_ids)
        record_event(
            Event.Type.UNSUBSCRIBE,
            account_id=who.account.pk,
            campaign_id=who.campaign.pk,
            delivery_id=who.delivery.pk,
            detail={"how": how, "lists": list_ids},
            occurred_at=now,
        )
    return len(list_ids)


def campaign_lists(who: Recipient) -> list[ContactList]:
    return list(who.campaign.lists.order_by("name"))


def is_unsubscribed(who: Recipient) -> bool:
    """Whether the recipient is already off every list of the campaign, so the page shows
    that instead of a button that would change nothing."""
    if who.contact is None:
        return True
    return (
        not Subscription.objects.filter(
            contact=who.contact,
            contact_list__in=who.campaign.lists.all(),
        )
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
    if who.contact is None:
        return
    now = timezone.now()
    changed, left = [], []
    for subscription in preferences(who):
        wanted = subscription.contact_list_id in keep and not stop_everything
        if wanted and subscription.status == Subscription.Status.UNSUBSCRIBED:
            subscription.status = Subscription.Status.SUBSCRIBED
            subscription.source = Subscription.Source.FORM
            subscription.legal_basis = Subscription.LegalBasis.CONSENT
            subscription.consent_at = now
            subscription.confirmed_at = now
            subscription.consent_ip = ip
            subscription.consent_user_agent = user_agent[:500]
            subscription.consent_text = (
                f"Subscribed again to {subscription.contact_list.name} from the "
                f"preferences page of a message of {who.account.name}."
            )
            subscription.unsubscribed_at = None
        elif not wanted and subscription.status != Subscription.Status.UNSUBSCRIBED:
            subscription.status = Subscription.Status.UNSUBSCRIBED
            subscription.unsubscribed_at = now
            left.append(subscription.contact_list_id)
        else:
            continue
        subscription.updated_at = now
        subscription.save()
        changed.append(subscription.contact_list_id)
    if stop_everything:
        Suppression.objects.get_or_create(
            account=who.account,
            email_sha256=email_sha256(who.contact.email),
            defaults={"reason": Suppression.Reason.UNSUBSCRIBE, "note": "From a message"},
        )
    Contact.objects.filter(pk=who.contact.pk).update(last_activity_at=now)
    forget_list_counts(changed)
    if left or stop_everything:
        record_event(
            Event.Type.UNSUBSCRIBE,
            account_id=who.account.pk,
            campaign_id=who.campaign.pk,
            delivery_id=who.delivery.pk,
            detail={"how": "preferences", "lists": left, "everything": stop_everything},
            occurred_at=now,
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
