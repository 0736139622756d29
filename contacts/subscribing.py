"""Subscribe forms: the public way onto a list, and its double opt-in.

Guarantees, each one a test in tests/contacts/test_subscribe_forms.py:

- A form is opened by a key signed with the secret key, never by the list's id alone:
  a list's form cannot be guessed, and a forged or altered key opens nothing.
- A submission tells the person nothing about the address: new, already subscribed,
  suppressed or once unsubscribed, they all see the same answer. Only the mail that
  reaches the inbox differs, and only the owner of the inbox reads it.
- Nothing is stored and nothing is mailed for a suppressed address; an address already
  subscribed is left exactly as it was and gets no mail.
- Every subscription made here carries its consent proof: source, legal basis, time,
  IP address, user agent and the wording shown beside the checkbox.
- Double opt-in confirms only on a POST from the confirmation page, never on the GET
  that mail scanners make when they follow links. A person who once unsubscribed may
  come back through a form, but only through that confirmation, even on a list that
  otherwise subscribes at once.
- A confirmation link opens only the latest request it was mailed for (it is bound to
  the time of the consent), expires after seven days, and confirms at most once.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from email.utils import formataddr

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.mail import send_notice
from accounts.models import Account
from accounts.tasking import enqueue
from contacts import signals
from contacts.models import Contact, ContactList, Subscription
from contacts.selectors import find_contact, forget_list_counts, is_suppressed
from contacts.services import clean_email, contact_create, subscription_subscribe
from contacts.tokens import make_token, read_token

S = Subscription.Status

CONFIRM_PURPOSE = "subscribe-confirm"
CONFIRM_LIFETIME = timedelta(days=7)
# Submissions one IP address may make per window, across every form of the platform.
RATE_LIMIT = 10
RATE_WINDOW = timedelta(hours=1)
# However often a form is sent for one address, its inbox gets at most one
# confirmation per pause: a form must not be a way to flood somebody's mailbox.
CONFIRM_RESEND_PAUSE = timedelta(minutes=10)
DEFAULT_CONSENT_TEXT = "I agree to receive {name} by email. I can unsubscribe at any time."

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- Reads --------------------------------------------------------------------------


def _form_signer() -> signing.Signer:
    # Built per call, so it follows SECRET_KEY and SECRET_KEY_FALLBACKS as they are now.
    # "." separates the list id from its signature: URL-safe, and never part of either.
    return signing.Signer(salt="missive.contacts.subscribe-form", sep=".")


def form_key(contact_list: ContactList) -> str:
    """The list's public key: stable, short, and unguessable without the secret key."""
    return _form_signer().sign(str(contact_list.pk))


def list_for_form_key(key: str) -> ContactList | None:
    """The list a form key opens, or None for a forged, altered or closed one."""
    if not key or len(key) > 100:
        return None
    try:
        list_id = _form_signer().unsign(key)
    except signing.BadSignature:
        return None
    if not list_id.isdigit():
        return None
    return (
        ContactList.objects.select_related("account")
        .filter(pk=int(list_id), account__status=Account.Status.ACTIVE)
        .first()
    )


def subscribe_url(contact_list: ContactList) -> str:
    return settings.MISSIVE_BASE_URL + reverse("subscribe", args=[form_key(contact_list)])


def consent_wording(contact_list: ContactList) -> str:
    """The words beside the checkbox, kept as they were shown as the consent proof."""
    return contact_list.form_consent_text.strip() or DEFAULT_CONSENT_TEXT.format(
        name=contact_list.name
    )


def _consent_stamp(subscription: Subscription) -> int:
    """The consent time in microseconds, exact: it binds a link to one request."""
    assert subscription.consent_at is not None, "a request to confirm records its time"
    return (subscription.consent_at - _EPOCH) // timedelta(microseconds=1)


def confirm_token(subscription: Subscription) -> str:
    return make_token(CONFIRM_PURPOSE, {"s": subscription.pk, "c": _consent_stamp(subscription)})


def confirm_url(subscription: Subscription) -> str:
    return settings.MISSIVE_BASE_URL + reverse(
        "subscribe_confirm", args=[confirm_token(subscription)]
    )


def subscription_for_confirm_token(token: str) -> Subscription | None:
    """The subscription a confirmation link opens, or None: a bad, altered or expired
    token, a link from an earlier request, a subscription gone or unsubscribed since, or
    an account closed since."""
    payload = read_token(CONFIRM_PURPOSE, token, max_age=CONFIRM_LIFETIME)
    subscription_id = payload.get("s") if payload is not None else None
    if payload is None or not isinstance(subscription_id, int):
        return None
    subscription = (
        Subscription.objects.select_related("contact", "contact_list__account")
        .filter(pk=subscription_id, contact_list__account__status=Account.Status.ACTIVE)
        .first()
    )
    if subscription is None or subscription.consent_at is None:
        return None
    if payload.get("c") != _consent_stamp(subscription):
        return None
    if subscription.status == S.UNSUBSCRIBED:
        return None
    return subscription


def submission_allowed(ip: str) -> bool:
    """Count one submission from ``ip``; False once it passes the limit for the window.

    A fixed window, opened by the first submission: cheap (two Redis calls) and enough
    to stop a bot, which is all it is for."""
    key = f"subscribe-rate:{ip or 'unknown'}"
    window = int(RATE_WINDOW.total_seconds())
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # the window closed between the two calls
        cache.set(key, 1, timeout=window)
        count = 1
    return count <= RATE_LIMIT


# --- Writes -------------------------------------------------------------------------


@transaction.atomic
def subscription_request(
    *,
    contact_list: ContactList,
    email: str,
    first_name: str = "",
    consent_ip: str | None = None,
    consent_user_agent: str = "",
) -> Subscription | None:
    """A form was sent for ``email``. Returns what was stored (None: nothing was), which
    the caller must never show: the answer to the person is the same in every case.

    With double opt-in, and always for someone who had unsubscribed, the subscription
    waits unconfirmed and a confirmation link is mailed. Without double opt-in, the
    person is subscribed at once."""
    email = clean_email(email)
    account = contact_list.account
    if is_suppressed(account, email):
        return None
    contact = find_contact(account, email)
    if contact is None:
        contact = _contact_for_form(account, email, first_name)
    existing = (
        Subscription.objects.select_for_update()
        .filter(contact=contact, contact_list=contact_list)
        .first()
    )
    if existing is not None and existing.status == S.SUBSCRIBED:
        return existing
    needs_confirmation = contact_list.double_opt_in or (
        existing is not None and existing.status == S.UNSUBSCRIBED
    )
    if needs_confirmation and existing is not None and _recently_mailed(existing):
        # Left as it is: a new request would void the link mailed a moment ago.
        return existing
    subscription = subscription_subscribe(
        contact=contact,
        contact_list=contact_list,
        source=Subscription.Source.FORM,
        legal_basis=Subscription.LegalBasis.CONSENT,
        consent_text=consent_wording(contact_list),
        consent_ip=_ip_or_none(consent_ip),
        consent_user_agent=consent_user_agent,
        confirmed=not needs_confirmation,
    )
    if needs_confirmation:
        # Sent by a worker, not in the request: a page that answered more slowly for a new
        # address than for a known one would tell who is on the list.
        enqueue("contacts.send_subscribe_confirmation", subscription.pk)
    else:
        # Subscribing without confirmation is the person's own act on the form.
        _touch(contact, subscription.confirmed_at)
    return subscription


@transaction.atomic
def subscription_confirm(*, subscription: Subscription) -> Subscription | None:
    """The person pressed the button on the confirmation page. Idempotent: a second
    press changes nothing. An address suppressed since the request is not subscribed
    (the caller shows the same page, so the suppression is not revealed). None: the
    subscription was deleted a moment ago."""
    locked = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("contact", "contact_list__account")
        .filter(pk=subscription.pk)
        .first()
    )
    if locked is None or locked.status != S.UNCONFIRMED:
        return locked
    contact = locked.contact
    if is_suppressed(locked.contact_list.account, contact.email):
        return locked
    now = timezone.now()
    locked.status = S.SUBSCRIBED
    locked.confirmed_at = now
    locked.updated_at = now
    locked.save(update_fields=["status", "confirmed_at", "updated_at"])
    forget_list_counts([locked.contact_list_id])
    _touch(contact, now)
    signals.subscribed.send(
        Subscription,
        account_id=locked.contact_list.account_id,
        list_id=locked.contact_list_id,
        contact_ids=[contact.pk],
    )
    return locked


def _contact_for_form(account: Account, email: str, first_name: str) -> Contact:
    """A new contact for the address; if the same address arrived a moment earlier
    through another request, that contact."""
    try:
        return contact_create(
            account=account,
            actor=None,
            email=email,
            first_name=first_name[:150],
        )
    except ValidationError:
        contact = find_contact(account, email)
        if contact is None:
            raise
        return contact


def _ip_or_none(value: str | None) -> str | None:
    """An address fit for the consent proof, or None rather than a failed save."""
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def _touch(contact: Contact, when: datetime | None) -> None:
    """Human activity: moves ``last_activity_at`` (confirmations, form subscriptions)."""
    when = when or timezone.now()
    Contact.objects.filter(pk=contact.pk).update(last_activity_at=when)
    contact.last_activity_at = when


# --- Mail ---------------------------------------------------------------------------


def sender(account: Account) -> str:
    """The account's sender when it has one, else the installation's."""
    if account.default_from_email:
        return formataddr((account.default_from_name or account.name, account.default_from_email))
    return settings.DEFAULT_FROM_EMAIL


def send_confirmation(subscription_id: int) -> None:
    """Have the confirmation link mailed. A mail server that refuses to the end is
    recorded (accounts/mail.py) and the pause is lifted: the person can send the form
    again."""
    subscription = (
        Subscription.objects.select_related("contact", "contact_list__account")
        .filter(pk=subscription_id, status=S.UNCONFIRMED)
        .first()
    )
    if subscription is None:
        return
    pause = int(CONFIRM_RESEND_PAUSE.total_seconds())
    if not cache.add(_mailed_key(subscription.pk), 1, timeout=pause):
        return
    contact_list = subscription.contact_list
    send_notice(
        "contacts/email/subscribe_confirm",
        confirmation_context(subscription),
        to=[subscription.contact.email],
        subject=f"Confirm your subscription to {contact_list.name}",
        from_email=sender(contact_list.account),
        on_failure=("contacts.confirmation_not_sent", [subscription.pk]),
    )


def confirmation_not_sent(subscription_id: int) -> None:
    """The confirmation could not be mailed: the next form sent for the address mails it
    again, without waiting out the pause."""
    cache.delete(_mailed_key(subscription_id))


def _mailed_key(subscription_id: int) -> str:
    return f"subscribe-confirm-mailed:{subscription_id}"


def _recently_mailed(subscription: Subscription) -> bool:
    return (
        subscription.status == S.UNCONFIRMED and cache.get(_mailed_key(subscription.pk)) is not None
    )


def confirmation_context(subscription: Subscription) -> dict[str, object]:
    contact_list = subscription.contact_list
    return {
        "contact_list": contact_list,
        "account": contact_list.account,
        "url": confirm_url(subscription),
        "lifetime_days": CONFIRM_LIFETIME.days,
    }
