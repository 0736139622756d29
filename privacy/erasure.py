"""Erasure of a contact: the person leaves the account for good (GDPR Art. 17).

This is the one place that reaches into every table holding a person's data, campaigns'
and statistics' included, so it imports from apps that otherwise depend on contacts.

Guarantees, each one a test in tests/contacts/test_erasure.py:

- Gone, in one transaction: the contact, its subscriptions and their consent proof, the
  personal copies of the messages it was sent (DeliveryBody) and the events of those
  messages (opens, clicks, bounces…), found by the ids of its deliveries.
- Kept, without the person: its deliveries stay, so the campaigns' counts do not move,
  but their contact is set to null and their error text (a provider's refusal often
  quotes the address) is cleared.
- Left behind: a suppression for the account, holding only the address's SHA-256 with
  the reason ``erasure``, so no later import, API call or form can mail the address
  again. An entry already there keeps its reason.
- Audited without the address in clear: the entry carries the hash and the counts.
- Set-based: a fixed number of statements whatever the number of deliveries, so a
  contact with thousands of messages is erased in well under a second.
- A message being sent at the very moment of the erasure may still write its body and
  its "sent" event afterwards; a follow-up task removes those once every claim of the
  time has expired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from accounts.models import MailFailure, User
from accounts.services import audit_log
from accounts.tasking import enqueue
from campaigns.models import Delivery, DeliveryBody
from contacts.models import Contact, Subscription, Suppression, email_sha256
from contacts.services import delete_contact_rows, suppress
from events.models import Event


class Reason:
    """Why a contact was erased, as the audit entry says it (never free text, which
    could carry the address)."""

    CUSTOMER = "customer"  # a member or an API key of the account
    DATA_REQUEST = "data_request"  # the person, through the verified "your data" link

    ALL = (CUSTOMER, DATA_REQUEST)


@dataclass(frozen=True)
class Erased:
    contact_id: int
    email_sha256: str
    subscriptions: int
    deliveries: int
    bodies: int
    events: int
    suppression_id: int


@transaction.atomic
def erase_contact(*, contact: Contact, actor: User | None, reason: str) -> Erased:
    """Erase ``contact`` from its account; see the module's guarantees. Raises
    Contact.DoesNotExist if it was erased or deleted a moment ago."""
    if reason not in Reason.ALL:
        raise ValueError(f"Unknown erasure reason {reason!r}.")
    # Locked first: a second erasure of the same contact waits, then finds it gone.
    contact = (
        Contact.objects.select_for_update(of=("self",)).select_related("account").get(pk=contact.pk)
    )
    account = contact.account
    digest = email_sha256(contact.email)

    deliveries = Delivery.objects.filter(contact_id=contact.pk)
    delivery_ids = deliveries.values("id")
    events = Event.objects.filter(account_id=account.pk, delivery_id__in=delivery_ids).delete()[0]
    bodies = DeliveryBody.objects.filter(delivery_id__in=delivery_ids).delete()[0]
    in_flight = list(deliveries.filter(status=Delivery.Status.SENDING).values_list("id", flat=True))
    # (a journey's email keeps the properties of the event that started it: theirs)
    unlinked = deliveries.update(contact=None, error="", context=None)

    removed = Subscription.objects.filter(contact_id=contact.pk).count()
    delete_contact_rows([contact.pk])
    # Missive's own mail to the address that could not be sent (a confirmation link, say).
    MailFailure.objects.filter(
        recipients__iregex=rf"(^|, ){re.escape(contact.email)}(,|$)"
    ).delete()

    suppress(account=account, digests=[digest], reason=Suppression.Reason.ERASURE, actor=actor)
    suppression = Suppression.objects.for_account(account).get(email_sha256=digest)
    erased = Erased(
        contact_id=contact.pk,
        email_sha256=digest,
        subscriptions=removed,
        deliveries=unlinked,
        bodies=bodies,
        events=events,
        suppression_id=suppression.pk,
    )
    audit_log(
        account=account,
        actor=actor,
        action="contact.erased",
        reason=reason,
        email_sha256=digest,
        subscriptions=removed,
        deliveries=unlinked,
        bodies=bodies,
        events=events,
    )
    if in_flight:
        enqueue(
            "privacy.erase_in_flight_leftovers",
            account.pk,
            in_flight,
            countdown=settings.MISSIVE_SEND_CLAIM_TIMEOUT + 60,
        )
    return erased


@transaction.atomic
def erase_leftovers(*, account_id: int, delivery_ids: list[int]) -> int:
    """Remove what messages in flight during an erasure wrote after it: their bodies and
    their events. Only deliveries that no longer name anyone are touched, so running it
    twice, or late, is harmless. Returns how many rows went."""
    anonymous = Delivery.objects.filter(
        pk__in=delivery_ids, contact__isnull=True, campaign__account_id=account_id
    ).values("id")
    events = Event.objects.filter(account_id=account_id, delivery_id__in=anonymous).delete()[0]
    bodies = DeliveryBody.objects.filter(delivery_id__in=anonymous).delete()[0]
    return events + bodies
