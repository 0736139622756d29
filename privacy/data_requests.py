"""A person's data, and what they may ask of it (GDPR Art. 15 to 21).

Two users of this module:

- the customer, who exports one contact's data as a portable JSON document
  (``contact_export``) and erases a contact (``contacts.erasure``);
- the person on a customer's list, who needs no login: the public "your data" page
  mails a signed link to the address given, and that link opens, across every account
  that holds the address, the person's data and what they may do with it: see it,
  download it, correct their name, unsubscribe from everything, object to tracking,
  erase it.

Guarantees, each one a test in tests/contacts/test_data_requests.py:

- The public page looks nothing up: it queues the same mail for any valid address, and
  answers the same page, so neither its words nor its timing say who is on a list.
- The link carries a random token, not the address: the address stays server-side in
  a ``PublicLink`` row (contacts/tokens.py), bound to its purpose, expiring after 24
  hours; a bad, altered, old-format or expired link is a friendly 404, never an error.
  Only the owner of the mailbox can open it, so only they learn which customers hold
  their data.
- A link opened with GET (as mail scanners do) changes nothing and tells no customer
  anything; every act is a POST from the page.
- Erasure, the one act that cannot be undone, needs a fresh proof of the mailbox: the
  erase button mails a second link, for that one customer, that works once and for one
  hour. A "your data" link that leaks (forwarded, left in a browser's history) lets
  someone see and correct the data for a day, never erase it.
- Every act is one transaction that also writes the customer's ``DataRequest`` log row
  (the address's hash, never the address) and an audit entry naming the person as the
  actor; after the commit, the account's owners and admins are mailed by a worker, at
  most once an hour for the same kind of request about the same address.
- Erasure runs in the request (a handful of set-based statements), so the page that
  says "erased" is telling the truth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from accounts.mail import send_notice
from accounts.models import Account, Membership, User
from accounts.query import parse_id
from accounts.roles import Role
from accounts.services import acting_label, audit_log
from accounts.tasking import enqueue
from campaigns.models import Delivery, Link
from contacts import services
from contacts.models import (
    Contact,
    DataRequest,
    PublicLink,
    Subscription,
    Suppression,
    email_sha256,
)
from contacts.services import clean_email
from contacts.tokens import link_issue, link_open, link_use
from events.models import Event
from journeys.models import ContactEvent, Enrollment
from privacy import erasure

K = DataRequest.Kind

LINK_PURPOSE = PublicLink.Purpose.YOUR_DATA
LINK_LIFETIME = timedelta(hours=24)
ERASE_PURPOSE = PublicLink.Purpose.ERASE
ERASE_LINK_LIFETIME = timedelta(hours=1)
# Requests per client address and window: enough for a person and their typos, too few
# to turn the page into a way of mailing strangers.
RATE_LIMIT = 5
RATE_WINDOW = timedelta(hours=1)
# A customer hears about the same kind of request for the same address at most this
# often by mail; the log keeps every one.
NOTICE_PAUSE = timedelta(hours=1)
# How the audit log names the one who acted: the person, who has no login.
PERSON = "The person concerned (verified by email)"
# Who at a customer hears of a request.
NOTIFIED_ROLES = (Role.OWNER, Role.ADMIN)
LOG_PAGE_SIZE = 100


# --- One contact's data, as a portable document -------------------------------------------


def contact_data(contact: Contact) -> dict[str, object]:
    """Everything Missive holds on ``contact`` for its account: the contact's fields and
    attributes, its subscriptions with their consent proof, the messages it was sent
    (campaign, dates) and what happened to them (events). JSON-ready but for datetimes,
    which DjangoJSONEncoder and DRF write as ISO 8601."""
    account = contact.account
    subscriptions = (
        Subscription.objects.filter(contact=contact)
        .select_related("contact_list")
        .order_by("contact_list__name")
    )
    deliveries = list(
        Delivery.objects.for_account(account)
        .filter(contact=contact)
        .order_by("id")
        .values_list(
            "id",
            "campaign__name",
            "status",
            "sent_at",
            "first_opened_at",
            "first_clicked_at",
        )
    )
    # (keyed as the events' nullable columns are, which look them up)
    campaign_of: dict[int | None, str] = {row[0]: row[1] for row in deliveries}
    events = list(
        Event.objects.for_account(account)
        .filter(delivery_id__in=Delivery.objects.filter(contact=contact).values("id"))
        .order_by("occurred_at", "id")
        .values_list("delivery_id", "type", "occurred_at", "machine", "link_id", "detail")
    )
    journeys = (
        Enrollment.objects.for_account(account)
        .filter(contact=contact)
        .select_related("journey")
        .order_by("entered_at", "id")
    )
    custom_events = ContactEvent.objects.for_account(account).filter(contact=contact)
    link_ids = {row[4] for row in events if row[4]}
    links: dict[int | None, str] = dict(
        Link.objects.for_account(account).filter(pk__in=link_ids).values_list("pk", "url")
    )
    return {
        "exported_at": timezone.now(),
        "controller": {"name": account.name, "postal_address": account.postal_address},
        "contact": {
            "email": contact.email,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "attributes": contact.attributes,
            "created_at": contact.created_at,
            "updated_at": contact.updated_at,
            "last_activity_at": contact.last_activity_at,
            "tracking_objected_at": contact.tracking_objected_at,
        },
        "subscriptions": [
            {
                "list": s.contact_list.name,
                "status": s.status,
                "source": s.source,
                "legal_basis": s.legal_basis,
                "consent_at": s.consent_at,
                "consent_ip": s.consent_ip,
                "consent_user_agent": s.consent_user_agent,
                "consent_text": s.consent_text,
                "confirmed_at": s.confirmed_at,
                "unsubscribed_at": s.unsubscribed_at,
                "created_at": s.created_at,
            }
            for s in subscriptions
        ],
        "deliveries": [
            {
                "campaign": name,
                "status": status,
                "sent_at": sent_at,
                "first_opened_at": opened,
                "first_clicked_at": clicked,
            }
            for _id, name, status, sent_at, opened, clicked in deliveries
        ],
        "events": [
            {
                "campaign": campaign_of.get(delivery_id, ""),
                "type": kind,
                "occurred_at": occurred_at,
                "machine": machine,
                "link": links.get(link_id, ""),
                "detail": detail,
            }
            for delivery_id, kind, occurred_at, machine, link_id, detail in events
        ],
        "journeys": [
            {
                "journey": e.journey.name,
                "status": e.status,
                "entered_at": e.entered_at,
                "finished_at": e.finished_at,
                "outcome": e.outcome,
                "event_properties": e.context,
                "steps_reached": [{"step": step, "at": at} for step, at in e.history],
            }
            for e in journeys
        ],
        "account_events": [
            {"name": e.name, "properties": e.properties, "occurred_at": e.occurred_at}
            for e in custom_events.order_by("occurred_at", "id")
        ],
    }


def export_filename(contact: Contact) -> str:
    return f"contact-{contact.pk}-{timezone.now():%Y%m%d-%H%M}.json"


@transaction.atomic
def contact_export(*, contact: Contact, actor: User | None) -> dict[str, object]:
    """One contact's data for the customer (the same document the person downloads),
    recorded in the account's activity log."""
    data = contact_data(contact)
    audit_log(
        account=contact.account,
        actor=actor,
        action="contact.exported",
        email_sha256=email_sha256(contact.email),
    )
    return data


# --- The public request -------------------------------------------------------------------


def request_allowed(ip: str) -> bool:
    """Count one request from ``ip``; False once it passes RATE_LIMIT in the window
    (fixed, opened by the first request)."""
    key = f"your-data-rate:{ip or 'unknown'}"
    window = int(RATE_WINDOW.total_seconds())
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # the window closed between the two calls
        cache.set(key, 1, timeout=window)
        count = 1
    return count <= RATE_LIMIT


def your_data_token(email: str) -> str:
    return link_issue(purpose=LINK_PURPOSE, email=email, lifetime=LINK_LIFETIME)


def your_data_url(email: str) -> str:
    return settings.MISSIVE_BASE_URL + reverse("your_data_overview", args=[your_data_token(email)])


def your_data_request(*, email: str) -> None:
    """Queue the mail with the link for ``email``, known or not. Nothing is stored here:
    the worker stores the link's row as it mails it."""
    email = clean_email(email)
    enqueue("privacy.send_your_data_link", email)


def send_link(email: str) -> None:
    """Have the link mailed. A mail server that refuses to the end is recorded for the
    operator (accounts/mail.py): the person can ask again."""
    try:
        email = clean_email(email)
    except ValidationError:
        return
    context = {
        "email": email,
        "url": your_data_url(email),
        "lifetime_hours": int(LINK_LIFETIME.total_seconds() // 3600),
    }
    send_notice(
        "privacy/email/your_data_link",
        context,
        to=[email],
        subject="[Missive] Your data: the link you asked for",
    )


def address_for_token(token: str) -> str | None:
    """The address a link was mailed to, or None (bad, altered, expired, or made for
    another purpose)."""
    link = link_open(LINK_PURPOSE, token)
    if link is None:
        return None
    try:
        return clean_email(link.email)
    except ValidationError:
        return None


# --- What the person sees -----------------------------------------------------------------


def _holding_contacts(email: str) -> QuerySet[Contact]:
    """The contacts with this address in every active account: the one read that spans
    accounts, on purpose (the person's own view). One probe of the unique index on
    (account, lower(email)) per account."""
    active = list(Account.objects.filter(status=Account.Status.ACTIVE).values_list("pk", flat=True))
    return (
        Contact.objects.alias(email_key=Lower("email"))
        .filter(account_id__in=active, email_key=clean_email(email))
        .select_related("account")
    )


@dataclass(frozen=True)
class Holding:
    """What one customer holds on the person, as the overview shows it."""

    contact: Contact
    subscribed: int
    lists: int
    deliveries: int

    @property
    def account(self) -> Account:
        return self.contact.account


def holdings(email: str) -> list[Holding]:
    contacts = list(_holding_contacts(email).order_by("account__name", "account_id"))
    result = []
    for contact in contacts:
        statuses = list(Subscription.objects.filter(contact=contact).values_list("status"))
        result.append(
            Holding(
                contact=contact,
                subscribed=sum(1 for (s,) in statuses if s == Subscription.Status.SUBSCRIBED),
                lists=len(statuses),
                deliveries=Delivery.objects.filter(contact=contact).count(),
            )
        )
    return result


def holding(email: str, account_id: int) -> Contact | None:
    """The person's contact in one account, or None (no such account, or none held)."""
    return _holding_contacts(email).filter(account_id=account_id).first()


# --- What the person does -----------------------------------------------------------------


@contextlib.contextmanager
def _as_the_person() -> Iterator[None]:
    """Audit entries written inside name the person as the actor."""
    token = acting_label.set(PERSON)
    try:
        yield
    finally:
        acting_label.reset(token)


def _record(contact: Contact, kind: str, outcome: str, *, keep_link: bool = True) -> DataRequest:
    """The customer's log row and audit entry, and after the commit its notice."""
    account = contact.account
    entry = DataRequest.objects.create(
        account=account,
        contact=contact if keep_link else None,
        kind=kind,
        email_sha256=email_sha256(contact.email),
        outcome=outcome[:200],
    )
    audit_log(
        account=account,
        actor=None,
        action="data_request.handled",
        kind=kind,
        outcome=entry.outcome,
        email_sha256=entry.email_sha256,
    )
    enqueue("privacy.notify_data_request", entry.pk)
    return entry


def data_request_access(*, contact: Contact) -> dict[str, object]:
    """The person looks at their data on the page."""
    with _as_the_person(), transaction.atomic():
        data = contact_data(contact)
        _record(contact, K.ACCESS, "Shown their data on the page.")
    return data


def data_request_export(*, contact: Contact) -> dict[str, object]:
    """The person downloads their data as JSON (portability, Art. 20)."""
    with _as_the_person(), transaction.atomic():
        data = contact_data(contact)
        _record(contact, K.EXPORT, "Downloaded their data (JSON).")
    return data


def data_request_correct(*, contact: Contact, first_name: str, last_name: str) -> Contact:
    """The person corrects the name fields (rectification, Art. 16)."""
    with _as_the_person(), transaction.atomic():
        changed = [
            label
            for label, old, new in (
                ("first name", contact.first_name, first_name.strip()),
                ("last name", contact.last_name, last_name.strip()),
            )
            if old != new
        ]
        if changed:
            contact = services.contact_update(
                contact=contact, actor=None, first_name=first_name, last_name=last_name
            )
            outcome = f"Corrected their {' and '.join(changed)}."
        else:
            outcome = "Asked for a correction; the names were already as given."
        _record(contact, K.CORRECTION, outcome)
    return contact


def data_request_unsubscribe(*, contact: Contact) -> int:
    """The person leaves every list of the account, and no future list of it may mail
    them: an account-level suppression says so. Returns how many subscriptions ended."""
    with _as_the_person(), transaction.atomic():
        count = services.contacts_unsubscribe(
            account=contact.account, actor=None, contact_ids=[contact.pk], how="data request"
        )
        services.suppress(
            account=contact.account,
            digests=[email_sha256(contact.email)],
            reason=Suppression.Reason.UNSUBSCRIBE,
            actor=None,
            note="Unsubscribed from everything through a data request.",
        )
        lists = f"{count} list{'s' if count != 1 else ''}"
        _record(
            contact,
            K.UNSUBSCRIBE,
            f"Unsubscribed from {lists}; no list of this account may mail them again.",
        )
    return count


def data_request_object(*, contact: Contact) -> Contact:
    """The person objects to open and click tracking (Art. 21). Idempotent: the first
    objection's date is kept."""
    with _as_the_person(), transaction.atomic():
        now = timezone.now()
        updated = Contact.objects.filter(pk=contact.pk, tracking_objected_at__isnull=True).update(
            tracking_objected_at=now, updated_at=now
        )
        contact.refresh_from_db(fields=["tracking_objected_at", "updated_at"])
        outcome = (
            "Objected to tracking: their opens and clicks are no longer recorded."
            if updated
            else "Objected to tracking again (already recorded)."
        )
        _record(contact, K.OBJECTION, outcome)
    return contact


def erase_confirmation_send(*, contact: Contact) -> None:
    """Have the person mailed a one-time link that erases their data at ``contact``'s
    account (the fresh proof of the mailbox an erasure needs). The subject says nothing
    of the customer: its name is the customer's choice."""
    token = link_issue(
        purpose=ERASE_PURPOSE,
        email=contact.email,
        lifetime=ERASE_LINK_LIFETIME,
        account=contact.account,
    )
    context = {
        "email": contact.email,
        "account": contact.account,
        "url": settings.MISSIVE_BASE_URL + reverse("your_data_erase_confirm", args=[token]),
        "lifetime_minutes": int(ERASE_LINK_LIFETIME.total_seconds() // 60),
    }
    send_notice(
        "privacy/email/your_data_erase",
        context,
        to=[contact.email],
        subject="[Missive] Confirm the erasure of your data",
    )


@dataclass(frozen=True)
class EraseTarget:
    """What an erasure confirmation link stands for: its account, and the person's
    contact there (None: nothing held any more)."""

    account: Account
    contact: Contact | None


def erase_target(token: str) -> EraseTarget | None:
    """What the erasure link ``token`` would erase, or None (bad, used, expired, or the
    account is closed). Reads only."""
    link = link_open(ERASE_PURPOSE, token)
    if link is None or link.account is None or not link.account.is_active:
        return None
    return EraseTarget(account=link.account, contact=holding(link.email, link.account.pk))


def data_request_erase(*, token: str) -> erasure.Erased | None:
    """The person erases their data from the account (Art. 17), with the one-time link
    mailed by ``erase_confirmation_send``. The link is used up in the same transaction,
    so of two presses one erases and the other gets None. The log row keeps only the
    hash and the outcome."""
    with _as_the_person(), transaction.atomic():
        link = link_use(ERASE_PURPOSE, token)
        # (an erasure link always names its account: erase_confirmation_send)
        contact = (
            holding(link.email, link.account_id) if link and link.account_id is not None else None
        )
        if contact is None:
            return None
        erased = erasure.erase_contact(
            contact=contact, actor=None, reason=erasure.Reason.DATA_REQUEST
        )
        _record(
            contact,
            K.ERASURE,
            f"Erased: the contact, {erased.subscriptions} subscription"
            f"{'s' if erased.subscriptions != 1 else ''} and the tracking of "
            f"{erased.deliveries} message{'s' if erased.deliveries != 1 else ''}; "
            "the address stays suppressed (as a hash).",
            keep_link=False,
        )
    return erased


# --- The customer's side: the log and the notice ------------------------------------------


@dataclass
class DataRequestPage:
    entries: list[DataRequest]
    next_cursor: int | None


def data_requests_page(account: Account, *, before: str = "") -> DataRequestPage:
    """One page of the account's log, newest first, by keyset on the id."""
    queryset = DataRequest.objects.for_account(account).select_related("contact")
    before_id = parse_id(before)
    if before_id is not None:
        queryset = queryset.filter(pk__lt=before_id)
    rows = list(queryset.order_by("-id")[: LOG_PAGE_SIZE + 1])
    has_more = len(rows) > LOG_PAGE_SIZE
    rows = rows[:LOG_PAGE_SIZE]
    return DataRequestPage(entries=rows, next_cursor=rows[-1].pk if has_more and rows else None)


def _notified(account: Account) -> list[str]:
    return list(
        Membership.objects.for_account(account)
        .filter(role__in=NOTIFIED_ROLES, user__is_active=True)
        .order_by("created_at")
        .values_list("user__email", flat=True)
    )


def notify(data_request_id: int) -> bool:
    """Have the account's owners and admins mailed about a request; True if a notice was
    queued (a worker sends it, and records it if it cannot). The address is not in the
    mail: the log links to the contact while it exists."""
    entry = DataRequest.objects.select_related("account").filter(pk=data_request_id).first()
    if entry is None or not entry.account.is_active:
        return False
    recipients = _notified(entry.account)
    if not recipients:
        return False
    key = f"data-request-notice:{entry.account_id}:{entry.kind}:{entry.email_sha256}"
    if not cache.add(key, 1, timeout=int(NOTICE_PAUSE.total_seconds())):
        return False
    context = {
        "entry": entry,
        "account": entry.account,
        "url": settings.MISSIVE_BASE_URL + reverse("data_requests"),
    }
    send_notice(
        "privacy/email/data_request_notice",
        context,
        to=recipients,
        subject=f"[Missive] {entry.account.name}: a data request ({entry.get_kind_display()})",
    )
    return True
