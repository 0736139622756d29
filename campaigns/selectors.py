from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Account
from audiences import selectors as audiences
from audiences.conditions import Invalid
from campaigns.composing import compose
from campaigns.messages import subject_line
from campaigns.models import Campaign, Delivery, Template
from campaigns.rendering import TemplateRefused, contact_values, sample_values
from campaigns.states import TRANSITIONS, State
from contacts.models import Contact, ContactList, Subscription
from contacts.selectors import SUPPRESSED, subscribed_flagged
from domains.selectors import from_address_problem


def campaigns(account: Account) -> QuerySet[Campaign]:
    """The account's campaigns; a journey's emails are listed with their journey."""
    return (
        Campaign.objects.for_account(account)
        .filter(kind=Campaign.Kind.CAMPAIGN)
        .prefetch_related("lists")
    )


def templates(account: Account) -> QuerySet[Template]:
    return Template.objects.for_account(account)


def recipient_values(campaign: Campaign, contact: Contact | None) -> dict[str, object]:
    """The plain values a message to ``contact`` is rendered with (sample values for a
    preview without a contact). Links are placeholders until the message is sent."""
    account = campaign.account
    values = sample_values(account_name=account.name, postal_address=account.postal_address)
    if contact is not None:
        values.update(
            contact_values(
                email=contact.email,
                first_name=contact.first_name,
                last_name=contact.last_name,
                attributes=contact.attributes,
            )
        )
    return values


def preview_contact(campaign: Campaign, contact_id: int | None) -> Contact | None:
    """The account's contact of that id, or None (the sample recipient) for no id, a
    missing one or another account's."""
    if contact_id is None:
        return None
    return Contact.objects.for_account(campaign.account).filter(pk=contact_id).first()


PREVIEW_SEARCH_LIMIT = 10


def preview_contacts(campaign: Campaign, query: str) -> list[Contact]:
    """Up to 10 contacts to preview the campaign as, whose address or name holds
    ``query``: among those it would reach (subscribed and not suppressed, on its lists
    and in its segment), or among all the account's contacts while it has no audience
    (or its segment cannot be used now)."""
    query = query.strip()
    contacts = Contact.objects.for_account(campaign.account)
    if campaign.segment_id is not None or campaign.lists.exists():
        try:
            ids = audience_subscriptions(campaign).values("contact_id")
            contacts = contacts.filter(pk__in=ids)
        except Invalid:
            # A segment that cannot be read now: the search goes over every contact.
            contacts = Contact.objects.for_account(campaign.account)
    if query:
        words = query.split()
        match = Q(email__icontains=query)
        name = Q()
        for word in words:
            name &= Q(first_name__icontains=word) | Q(last_name__icontains=word)
        contacts = contacts.filter(match | name)
    return list(contacts.order_by("email")[:PREVIEW_SEARCH_LIMIT])


@dataclass(frozen=True)
class InboxLine:
    """What a mail app's list shows of the message, as rendered for one recipient."""

    from_name: str
    from_email: str
    subject: str
    preheader: str
    problem: str = ""  # why the subject or preheader cannot be rendered ("" when they can)


def inbox_line(campaign: Campaign, contact: Contact | None) -> InboxLine:
    sender = {"from_name": campaign.from_name, "from_email": campaign.from_email}
    try:
        composed = compose(campaign)
        values = recipient_values(campaign, contact)
        subject = subject_line(composed.subject.render(values))
        preheader = composed.preheader.render(values) if composed.preheader else ""
    except TemplateRefused as refused:
        return InboxLine(**sender, subject="", preheader="", problem=str(refused))
    return InboxLine(**sender, subject=subject, preheader=subject_line(preheader))


@dataclass(frozen=True)
class Audience:
    subscribed: int  # distinct contacts subscribed to the campaign's lists (and in its segment)
    sendable: int  # of them, those on no suppression list
    problem: str = ""  # why the segment cannot be used now ("" when it can)

    @property
    def excluded(self) -> int:
        return self.subscribed - self.sendable


def audience_list_ids(campaign: Campaign) -> list[int]:
    """The lists the campaign goes to: those chosen, or, for a campaign sent to a segment
    alone, every list of the account (the segment's subscribed contacts)."""
    chosen = list(campaign.lists.values_list("pk", flat=True))
    if chosen or campaign.segment_id is None:
        return chosen
    return list(ContactList.objects.for_account(campaign.account).values_list("pk", flat=True))


def audience_subscriptions(
    campaign: Campaign, *, sendable: bool = True, now: dt.datetime | None = None
) -> QuerySet[Subscription]:
    """The subscriptions the send takes its recipients from: subscribed to the campaign's
    lists, in its segment when it has one, each flagged ``suppressed`` (``sendable``: only
    those that are not). ``Invalid`` when the segment names something that no longer
    exists."""
    found = subscribed_flagged(campaign.account, audience_list_ids(campaign))
    if sendable:
        found = found.filter(**{SUPPRESSED: False})
    if campaign.segment is not None:
        # The compiled ids themselves: a Contact queryset here would read contacts twice.
        clean, ctx = audiences.checked(campaign.account, campaign.segment.definition, now=now)
        found = found.filter(contact_id__in=audiences.matching_ids(clean, ctx))
    return found


def audience(campaign: Campaign) -> Audience:
    """Who the campaign would reach now, counted the way the send will build it."""
    try:
        subscribed = (
            audience_subscriptions(campaign, sendable=False).values("contact_id").distinct()
        ).count()
        sendable = audience_subscriptions(campaign).values("contact_id").distinct().count()
    except Invalid:
        assert campaign.segment is not None
        return Audience(subscribed=0, sendable=0, problem=audiences.problem(campaign.segment))
    return Audience(subscribed=subscribed, sendable=sendable)


def start_problems(campaign: Campaign, reach: Audience | None = None) -> list[str]:
    """What stands between the campaign and sending it, each a sentence to act on."""
    problems = message_problems(campaign)
    if not campaign.lists.exists() and campaign.segment_id is None:
        problems.append("Choose at least one list, or a segment.")
    else:
        reach = reach or audience(campaign)
        if reach.problem:
            problems.append(reach.problem)
        elif reach.sendable == 0:
            problems.append(
                "Nobody in the chosen audience can receive it (no one subscribed"
                + (" and in the segment" if campaign.segment_id else "")
                + ", or all are suppressed)."
            )
    return problems


def message_problems(campaign: Campaign) -> list[str]:
    """What stands between the message itself and sending it (its audience aside): the
    whole check of a journey's email, whose recipients come one by one."""
    problems = []
    if not campaign.subject.strip():
        problems.append("Write a subject.")
    try:
        validate_email(campaign.from_email)
    except ValidationError:
        problems.append("Give a valid sender address.")
    else:
        refused = from_address_problem(campaign.account, campaign.from_email)
        if refused:
            problems.append(refused)
    if not campaign.account.postal_address.strip():
        problems.append(
            "Add your postal address in Settings: the law requires it in every campaign."
        )
    if not campaign.html.strip():
        problems.append("Write the message.")
    return problems


# -- sending progress ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Where a send stands, from the campaign's own counters (never a count of its
    deliveries: the page polls this every two seconds, at any audience size)."""

    total: int  # recipients in the audience snapshot
    sent: int
    failed: int
    skipped: int
    remaining: int  # neither sent, failed nor skipped yet
    percent: int  # share of the audience handled, 0 to 100
    rate: float  # recipients handled per second since the send started
    seconds_left: int | None  # estimate while sending; None when it cannot be told
    finished: bool  # sent, cancelled or failed: nothing more will move


def _is_final(state: str) -> bool:
    """A state no transition leaves."""
    return not any(source == state for source, _action in TRANSITIONS)


def progress(campaign: Campaign, now: dt.datetime | None = None) -> Progress:
    total = campaign.recipients_count
    handled = campaign.sent_count + campaign.failed_count + campaign.skipped_count
    remaining = max(total - handled, 0)
    finished = _is_final(campaign.status)
    rate = 0.0
    if campaign.started_at is not None:
        until = campaign.finished_at if finished and campaign.finished_at else now or timezone.now()
        seconds = (until - campaign.started_at).total_seconds()
        rate = handled / seconds if seconds > 0 else 0.0
    seconds_left = None
    if campaign.status == State.SENDING and campaign.snapshot_at is not None and rate > 0:
        seconds_left = round(remaining / rate)
    if total:
        percent = min(100, handled * 100 // total)
    else:
        percent = 100 if campaign.status == State.SENT else 0
    return Progress(
        total=total,
        sent=campaign.sent_count,
        failed=campaign.failed_count,
        skipped=campaign.skipped_count,
        remaining=remaining,
        percent=percent,
        rate=rate,
        seconds_left=seconds_left,
        finished=finished,
    )


@dataclass(frozen=True)
class FailedDelivery:
    email: str  # empty once the person is erased
    error: str
    failed_at: dt.datetime | None


def recent_failures(campaign: Campaign, limit: int = 20) -> list[FailedDelivery]:
    """The last messages of the campaign that could not be sent, newest first."""
    if not campaign.failed_count:
        # The counter says there are none: spare a scan of the campaign's deliveries.
        return []
    rows = (
        Delivery.objects.for_account(campaign.account)
        .filter(campaign=campaign, status=Delivery.Status.FAILED)
        .order_by("-id")
        .values_list("contact__email", "error", "failed_at")[:limit]
    )
    return [
        FailedDelivery(email=email or "", error=error, failed_at=at) for email, error, at in rows
    ]
