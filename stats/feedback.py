"""What the mail servers said about a message, and what Missive does about it.

Both sources of feedback, the providers' webhooks (stats/webhooks.py) and the bounce
mailbox of plain SMTP sending (stats/bounces.py), turn what they received into one
``Feedback`` for one delivery and call ``feedback_record``. The rules (RFC 3463 status
codes, the Gmail/Yahoo bulk-sender rules) are applied here and nowhere else:

- a hard bounce (5.1.x, 5.2.1, or the provider's "invalid address" / "bounced") suppresses
  the address for the account at once and marks the delivery bounced;
- soft bounces, the mailbox's own passing trouble (4.2.x full or busy, 4.4.x its server
  out of reach, 5.2.2 mailbox full), suppress the address once three different messages
  to it failed over at least 72 hours;
- a deferral for the sender's sake (4.7.x policy or reputation, Gmail's 421 4.7.28 rate
  limit included; 4.3.x the receiving system; 4.5.x the session; a bare 421/450/451 that
  names no mailbox trouble) is retried by the sending server and shown to the customer as
  a sending problem: it is never held against the recipient;
- a policy rejection (5.7.x, the provider's "blocked" / "spam") is the sender's problem,
  not the address's: it is recorded for the customer to see, nothing is suppressed;
- a complaint suppresses the address for all of the account's marketing at once, and
  may suspend the account's sending (stats/health.py has the limits);
- an unsubscribe reported by a provider unsubscribes like the message's own link.

Guarantees: the event and everything it causes are written in one transaction; a provider
event delivered twice is stored and acted on once (its id and its own timestamp are
unique in the event table); every rule is idempotent besides.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from accounts.models import Account
from accounts.services import audit_log
from campaigns import public
from campaigns.engagement import record_engagement
from campaigns.lifecycle import By
from campaigns.models import Campaign, Delivery, Link
from campaigns.services import campaign_pause
from campaigns.states import State
from contacts.models import Suppression
from contacts.services import suppression_add
from events import machines
from events.models import Event
from events.services import record_event
from stats import health

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    DELIVERED = "delivered"
    HARD_BOUNCE = "hard"  # the address does not exist or is disabled
    SOFT_BOUNCE = "soft"  # the mailbox cannot take it for now: full, busy, out of reach
    DEFERRED = "deferred"  # put off for the sender's sake: server busy, throttled, protocol
    POLICY = "policy"  # refused (or put off) for the sender's reputation or content
    REJECTED = "rejected"  # refused by the sending provider for another reason
    FAILED = "failed"  # not sent for a reason that is not the recipient's
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    OPEN = "open"
    CLICK = "click"


@dataclass(frozen=True)
class Feedback:
    """One thing that happened to one message, as a provider or a mail server said it."""

    outcome: Outcome
    source: str  # the provider ("Postmark") or "bounce mailbox"
    occurred_at: datetime | None = None  # the source's own timestamp
    dedup_key: str | None = None  # the source's id of this report
    status: str = ""  # the RFC 3463 status code, when known
    diagnostic: str = ""  # what the server said
    deferred: bool = False  # a delay: the message may still arrive
    machine: bool = False  # the source itself says a machine did it (a proxy open)
    user_agent: str | None = None  # None: the source does not report it
    ip: str = ""
    url: str = ""


# -- classification --------------------------------------------------------------------------

# An RFC 3463 enhanced status code: class.subject.detail, not part of a longer dotted number.
_ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


def enhanced_status(*texts: str | None) -> str:
    """The first failure status code (4.x.x or 5.x.x) in ``texts``, else the first
    success code, else ""."""
    success = ""
    for text in texts:
        for match in _ENHANCED_STATUS.finditer(text or ""):
            code = ".".join(match.groups())
            if match.group(1) in "45":
                return code
            success = success or code
    return success


def outcome_of_status(status: str) -> Outcome | None:
    """What an RFC 3463 code decides on its own; None when it leaves it to the context."""
    parts = status.split(".")
    if len(parts) != 3:
        return None
    klass, subject, detail = parts
    if klass == "4":
        # Only the mailbox's own trouble says anything about the address; the rest is
        # the receiving server putting the sender off, which says nothing about it.
        if subject in ("2", "4"):  # mailbox full or busy; its server out of reach
            return Outcome.SOFT_BOUNCE
        if subject == "7":  # policy, reputation, rate limits (Gmail's 4.7.28)
            return Outcome.POLICY
        return Outcome.DEFERRED  # the receiving system (4.3), the session (4.5), other
    if klass != "5":
        return None
    if subject == "1" or (subject == "2" and detail == "1"):  # bad address, mailbox disabled
        return Outcome.HARD_BOUNCE
    if subject == "2" and detail == "2":  # mailbox full
        return Outcome.SOFT_BOUNCE
    if subject == "7":  # security or policy
        return Outcome.POLICY
    return None


# For servers that explain without a usable code (non-standard bounces). Policy first:
# "rejected as spam" is about the message, whatever else the sentence says.
_POLICY_WORDS = re.compile(
    r"spam|block ?list|black ?list|blocked|reputation|policy|dmarc|\bspf\b|dkim|"
    r"not authori[sz]ed|access denied|listed (?:at|on|in)",
    re.IGNORECASE,
)
# The mailbox's passing trouble, or its server out of reach (4.2.x, 4.4.x).
_SOFT_WORDS = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|insufficient storage|"
    r"timed? ?out|connection refused|no route to host|unable to find mx",
    re.IGNORECASE,
)
# The receiving server putting the sender off: busy, throttling, greylisting.
_DEFERRAL_WORDS = re.compile(
    r"temporar|try again|try later|greylist|graylist|too many|throttl|rate.?limit|"
    r"insufficient system storage|service (?:not |un)available",
    re.IGNORECASE,
)
# A plain SMTP reply code of a temporary failure, with no enhanced code after it.
_BASIC_TEMPORARY = re.compile(r"^\s*(?:smtp;\s*)?4\d\d(?:[\s-]|$)", re.IGNORECASE)
_HARD_WORDS = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|"
    r"(?:mailbox|address|account|recipient|user)(?: address)? (?:is )?(?:unavailable|not found|"
    r"does(?: not|n't) exist|disabled|inactive|invalid|unknown)|"
    r"does(?: not|n't) exist|invalid (?:recipient|mailbox|address)|unrouteable address|"
    r"host or domain name not found|domain (?:name )?not found|no mail(?: |-)?host|"
    r"not a valid (?:mailbox|recipient|address)",
    re.IGNORECASE,
)


def outcome_of_text(text: str) -> Outcome | None:
    """What a server's explanation says, for bounces without a decisive status code."""
    if _POLICY_WORDS.search(text):
        return Outcome.POLICY
    if _SOFT_WORDS.search(text):
        return Outcome.SOFT_BOUNCE
    if _HARD_WORDS.search(text):
        return Outcome.HARD_BOUNCE
    if _DEFERRAL_WORDS.search(text):
        return Outcome.DEFERRED
    return None


def outcome_of_temporary(status: str, text: str, *, unexplained: Outcome) -> Outcome:
    """Whose trouble a temporary failure is: SOFT_BOUNCE only when the code or the words
    name the mailbox (full, busy, its server out of reach), POLICY or DEFERRED when they
    name the sender, and so does a bare 4xx reply (421, 450, 451 with no enhanced code).
    ``unexplained`` when nothing is said at all: DEFERRED for a deferral (the receiving
    server put the sender off), SOFT_BOUNCE for a message given up on (three of them,
    days apart, suppress)."""
    decided = outcome_of_status(status or enhanced_status(text)) or outcome_of_text(text)
    if decided == Outcome.HARD_BOUNCE:
        # "Mailbox unavailable" in a reply that says "later" is RFC 5321's stock text
        # for 450, busy and blocked alike: it names nothing.
        decided = None
    if decided is None and _BASIC_TEMPORARY.match(text):
        decided = Outcome.DEFERRED
    return decided or unexplained


# -- recording -------------------------------------------------------------------------------

_EVENT_TYPES = {
    Outcome.DELIVERED: Event.Type.DELIVERED,
    Outcome.HARD_BOUNCE: Event.Type.BOUNCE,
    Outcome.SOFT_BOUNCE: Event.Type.BOUNCE,
    Outcome.POLICY: Event.Type.REJECTED,
    Outcome.DEFERRED: Event.Type.FAILED,  # given up on after being put off for days
    Outcome.REJECTED: Event.Type.REJECTED,
    Outcome.FAILED: Event.Type.FAILED,
    Outcome.COMPLAINT: Event.Type.COMPLAINT,
    Outcome.OPEN: Event.Type.OPEN,
    Outcome.CLICK: Event.Type.CLICK,
}
# A temporary failure (soft, policy or deferred, with ``deferred`` set) is a deferral event.
_TEMPORARY = (Outcome.SOFT_BOUNCE, Outcome.POLICY, Outcome.DEFERRED)
# Every event written here says in ``detail``: ``kind`` (an Outcome: hard, soft, deferred,
# policy, rejected, failed, complaint, delivered), ``source`` (the provider, or "bounce
# mailbox") and, when known, ``status`` (RFC 3463), ``diagnostic`` (the server's words)
# and ``deferred``. Reports tell hard from soft bounces, policy rejections and the
# sender's deferrals (sending problems: deferred and policy) by ``kind``. Only soft ones
# count against an address.
SOFT_KINDS = (Outcome.SOFT_BOUNCE.value,)


def _insert_event(
    delivery: Delivery,
    *,
    type: str,
    occurred_at: datetime,
    detail: dict[str, object],
    dedup_key: str | None,
) -> bool:
    """One event; False when a report with the same key and time is already stored."""
    return record_event(
        type,
        account_id=delivery.campaign.account_id,
        campaign_id=delivery.campaign_id,
        delivery_id=delivery.pk,
        occurred_at=occurred_at,
        detail=detail,
        dedup_key=dedup_key,
    )


def _detail(feedback: Feedback) -> dict[str, object]:
    detail: dict[str, object] = {"kind": feedback.outcome.value, "source": feedback.source}
    if feedback.status:
        detail["status"] = feedback.status
    if feedback.diagnostic:
        detail["diagnostic"] = feedback.diagnostic.strip()[:500]
    if feedback.deferred:
        detail["deferred"] = True
    return detail


def feedback_record(*, delivery: Delivery, feedback: Feedback) -> bool:
    """Record what happened to ``delivery`` and apply the rules. ``delivery`` comes with
    its campaign, account and contact (select_related). False when the same report was
    already recorded, or is not kept (an open the account does not track)."""
    if feedback.outcome == Outcome.UNSUBSCRIBE:
        return _unsubscribe(delivery, feedback)
    at = feedback.occurred_at or timezone.now()
    if feedback.outcome == Outcome.SOFT_BOUNCE:
        feedback = _whose_trouble(feedback)
    with transaction.atomic():
        if feedback.outcome in (Outcome.OPEN, Outcome.CLICK):
            return _engagement(delivery, feedback, at)
        event_type = _EVENT_TYPES[feedback.outcome]
        if feedback.outcome in _TEMPORARY and feedback.deferred:
            event_type = Event.Type.DEFERRED
        if not _insert_event(
            delivery,
            type=event_type,
            occurred_at=at,
            detail=_detail(feedback),
            dedup_key=feedback.dedup_key,
        ):
            return False
        if feedback.outcome == Outcome.HARD_BOUNCE:
            _suppress(delivery, Suppression.Reason.HARD_BOUNCE, f"Hard bounce ({feedback.source})")
            _mark(delivery, Delivery.Status.BOUNCED)
        elif feedback.outcome == Outcome.SOFT_BOUNCE:
            if not feedback.deferred:
                _mark(delivery, Delivery.Status.BOUNCED)
            _count_soft_bounces(delivery)
        elif feedback.outcome == Outcome.COMPLAINT:
            _suppress(delivery, Suppression.Reason.COMPLAINT, f"Complaint ({feedback.source})")
            _mark(delivery, Delivery.Status.COMPLAINED)
            complaints_check(delivery.campaign.account)
    return True


# A permanent refusal as the SMTP transport records it on the delivery: "550 5.1.1 …".
_SMTP_REFUSAL = re.compile(r"^5\d\d\b")


def send_refusals_record(refusals: list[tuple[int, str]]) -> int:
    """Refusals a mail server gave while the message was being handed over: the
    deliveries are failed already, with the server's words. Such a refusal is a bounce,
    under the same rules as one reported later: a refused address (5.1.x, 5.2.1) is
    suppressed at once, a full mailbox (5.2.2) counts as a soft bounce; a policy refusal
    (5.7.x) or anything else stays the sending failure it is, never held against the
    address. Returns how many were recorded as bounces."""
    recorded = 0
    for delivery_id, reply in refusals:
        if not _SMTP_REFUSAL.match(reply):
            continue
        status = enhanced_status(reply)
        outcome = outcome_of_status(status) or outcome_of_text(reply)
        if outcome not in (Outcome.HARD_BOUNCE, Outcome.SOFT_BOUNCE):
            continue
        delivery = (
            Delivery.objects.select_related("campaign__account", "contact")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            continue
        feedback = Feedback(
            outcome=outcome,
            source="SMTP",
            status=status,
            diagnostic=reply,
            dedup_key=f"smtp-refusal:{delivery_id}",
        )
        recorded += feedback_record(delivery=delivery, feedback=feedback)
    return recorded


def _whose_trouble(feedback: Feedback) -> Feedback:
    """A soft bounce as its source saw it, settled by its code and words: whichever way it
    came (a provider's deferral, a DSN, a provider's own "soft bounce"), only the
    mailbox's trouble is held against the address. The source's word stands when the
    server said nothing more."""
    status = feedback.status or enhanced_status(feedback.diagnostic)
    outcome = outcome_of_temporary(status, feedback.diagnostic, unexplained=feedback.outcome)
    return replace(feedback, outcome=outcome, status=status)


def _mark(delivery: Delivery, status: str) -> None:
    # Only a message that went out changes: a failed or skipped one keeps its reason.
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENT).update(status=status)


def _suppress(delivery: Delivery, reason: str, note: str) -> None:
    contact = delivery.contact
    if contact is None:  # erased: a suppression of the address was left then
        return
    try:
        suppression_add(
            account=delivery.campaign.account, email=contact.email, reason=reason, note=note
        )
    except ValidationError:
        logger.warning("Delivery %s: cannot suppress its contact's address", delivery.pk)


def _count_soft_bounces(delivery: Delivery) -> None:
    """Suppress the address once enough different messages to it bounced softly, far
    enough apart: one message retried for days is one failure, not three."""
    contact = delivery.contact
    if contact is None:
        return
    account = delivery.campaign.account
    since = timezone.now() - health.SOFT_BOUNCE_WINDOW
    per_message = list(
        Event.objects.for_account(account)
        .filter(
            delivery_id__in=Delivery.objects.filter(contact=contact).values("pk"),
            type__in=[Event.Type.BOUNCE, Event.Type.DEFERRED],
            detail__kind__in=SOFT_KINDS,
            occurred_at__gte=since,
        )
        .order_by()
        .values("delivery_id")
        .annotate(first=Min("occurred_at"), last=Max("occurred_at"))
    )
    if len(per_message) < health.SOFT_BOUNCE_LIMIT:
        return
    span = max(row["last"] for row in per_message) - min(row["first"] for row in per_message)
    if span >= health.SOFT_BOUNCE_SPAN:
        hours = int(health.SOFT_BOUNCE_SPAN.total_seconds() // 3600)
        _suppress(
            delivery,
            Suppression.Reason.HARD_BOUNCE,
            f"{len(per_message)} soft bounces over {hours} hours or more",
        )


def _unsubscribe(delivery: Delivery, feedback: Feedback) -> bool:
    who = public.recipient(delivery.pk)
    if who is None:
        return False
    return public.unsubscribe(who, how=f"provider: {feedback.source}") > 0


def _engagement(delivery: Delivery, feedback: Feedback, at: datetime) -> bool:
    """An open or a click the provider tracked. Missive tracks both itself, so the
    provider's count only where the campaign does not, and only for accounts that track
    people at all."""
    campaign = delivery.campaign
    if campaign.account.tracking != Account.Tracking.PER_RECIPIENT:
        return False
    is_open = feedback.outcome == Outcome.OPEN
    tracked_by_missive = campaign.track_opens if is_open else campaign.track_clicks
    if tracked_by_missive:
        return False
    if is_open:
        reason = machines.open_reason(
            feedback.user_agent, feedback.ip or None, delivery.sent_at, at
        )
        link_id = None
    else:
        reason = machines.click_reason(
            feedback.user_agent, feedback.ip or None, delivery.sent_at, at
        )
        link = Link.objects.filter(campaign=campaign, url=feedback.url).first()
        link_id = link.pk if link else None
    if reason is None and feedback.machine and not machines.opened_by_reader(feedback.user_agent):
        reason = machines.PROVIDER
    contact = delivery.contact
    return record_engagement(
        _EVENT_TYPES[feedback.outcome],
        account_id=campaign.account_id,
        campaign_id=campaign.pk,
        delivery_id=delivery.pk,
        # Someone who objected to tracking is counted, never named (as campaigns.public).
        personal=contact is None or contact.tracking_objected_at is None,
        machine=reason is not None,
        at=at,
        link_id=link_id,
        detail={"source": feedback.source, **machines.reason_detail(reason)},
        dedup_key=feedback.dedup_key,
    )


# -- the account's complaint rate --------------------------------------------------------------


def complaints_check(account: Account) -> bool:
    """Suspend the account's sending if its complaint rate is over the limit. True when
    this call suspended it."""
    if account.sending_suspended_at:
        return False
    state = health.complaint_health(account)
    if not state.over_limit:
        return False
    return sending_suspend(
        account=account,
        reason=(
            f"{state.complaints} spam complaints for {state.sent} messages over the last "
            f"30 days ({state.rate:.2%}); the limit is {health.COMPLAINT_SUSPEND_RATE:.1%}."
        ),
        detail={"rate": round(state.rate, 6), "complaints": state.complaints, "sent": state.sent},
    )


@transaction.atomic
def sending_suspend(*, account: Account, reason: str, detail: dict[str, object]) -> bool:
    """Stop the account's sending: refuse new starts (campaigns.services checks the flag)
    and pause what is being sent. Only Missive's operators lift it, in the admin."""
    locked = Account.objects.select_for_update().get(pk=account.pk)
    if locked.sending_suspended_at:
        return False
    locked.sending_suspended_at = timezone.now()
    locked.sending_suspended_reason = reason
    locked.save(update_fields=["sending_suspended_at", "sending_suspended_reason"])
    account.sending_suspended_at = locked.sending_suspended_at
    account.sending_suspended_reason = reason
    audit_log(
        account=locked,
        actor=None,
        action="account.sending_suspended",
        acting="",  # (given, so that no key of ``detail`` can stand for it)
        **detail,
    )
    for campaign in Campaign.objects.for_account(locked).filter(status=State.SENDING):
        try:
            campaign_pause(campaign=campaign, actor=None, by=By.SUSPENSION)
        except ValidationError:  # it finished or was paused meanwhile
            continue
    logger.warning("Account %s: sending suspended: %s", locked.pk, reason)
    return True
