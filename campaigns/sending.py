"""The sending pipeline (DESIGN.md §4): snapshot, claim, send, record, sweep.

- The audience is taken once, by one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` into
  the Delivery ledger: subscribed to one of the campaign's lists, on no suppression list,
  one row per contact however many lists they are on.
- Workers claim batches with ``FOR UPDATE SKIP LOCKED`` (queued → sending), so any number
  of them, on any number of machines, share a campaign without overlap. The claim reads
  each recipient's subscription and suppressions again: whoever unsubscribed or was
  suppressed since the snapshot is skipped, not sent.
- A batch is sent over one connection. Outcomes are written to the ledger every
  ``MISSIVE_SEND_FLUSH_EVERY`` messages, so a worker killed mid-batch can repeat at most
  that many messages; its claims go back to the queue when their lease expires (the
  sweeper).
- Pause, resume and cancel are read between batches. Each batch task queues the next one
  of its lane; ``MISSIVE_SEND_LANES`` lanes run per campaign.
- A From domain warming up sends no more than its cap of the day (domains.pacing): a batch
  takes its size from the cap before it claims, and gives back what it did not send.
  Once the cap is spent, the campaign's queue waits for the domain's next local midnight,
  when the sweeper starts its lanes again.
- A batch goes out provider by provider, each at the pace the provider allows now; a
  provider that defers for rate (4.7.x) is slowed down for every worker.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from psycopg import sql

from accounts.models import Account
from accounts.tasking import enqueue
from audiences.conditions import Invalid
from audiences.selectors import problem as segment_problem
from campaigns import ab, ratelimit, rendering
from campaigns.lifecycle import By, transition
from campaigns.messages import MessageFactory, Outgoing, Recipient
from campaigns.models import ABTest, Campaign, Delivery, DeliveryBody, Link
from campaigns.selectors import audience_list_ids, audience_subscriptions
from campaigns.states import Action, State
from campaigns.transports import (
    ConnectionLost,
    ProviderBusy,
    Result,
    Transport,
    transport_for,
)
from contacts.models import Contact, Subscription
from contacts.selectors import SUPPRESSED, suppressed_in_unicode_form
from domains import pacing, providers
from domains.dkim import KeyUnavailable
from domains.models import SendingDomain
from domains.selectors import from_address_problem, sender_for, warmup_cap_today
from events.models import Event
from events.services import NewEvent, record_events

logger = logging.getLogger(__name__)

D = Delivery.Status


# -- snapshot ----------------------------------------------------------------------------------


def take_snapshot(campaign_id: int) -> int:
    """Create the campaign's ledger, once. Returns the number of recipients (0 when the
    snapshot was taken before, or the campaign is not sending)."""
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update().select_related("account").filter(pk=campaign_id)
        ).first()
        if campaign is None or campaign.status != State.SENDING or campaign.snapshot_at:
            return 0
        if campaign.segment_id is not None and not campaign.lists.exists():
            # Sent to a segment alone: its lists are all the account's, from now on (the
            # claim, the unsubscribe link and List-Id read them).
            campaign.lists.set(audience_list_ids(campaign))
        try:
            audience = audience_subscriptions(campaign, sendable=False, now=timezone.now())
        except Invalid:
            assert campaign.segment is not None
            transition(
                campaign,
                Action.FAIL,
                actor=None,
                by=By.SENDER,
                failure_reason=segment_problem(campaign.segment),
                finished_at=timezone.now(),
            )
            return 0
        # One pass: every subscribed contact of the audience, flagged when suppressed; the
        # others go into the ledger, and how many were left out is what remains.
        select_sql, params = (
            audience.values("contact_id", SUPPRESSED).distinct().query.sql_with_params()
        )
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL(_SNAPSHOT_SQL).format(audience=sql.SQL(select_sql)),
                [*params, campaign.pk],
            )
            recipients, subscribed = cursor.fetchone()
        ab.split(campaign, recipients)
        campaign.snapshot_at = timezone.now()
        campaign.recipients_count = recipients
        campaign.excluded_count = max(subscribed - recipients, 0)
        campaign.save(update_fields=["snapshot_at", "recipients_count", "excluded_count"])
        if recipients == 0:
            transition(
                campaign,
                Action.FAIL,
                actor=None,
                by=By.SENDER,
                failure_reason=(
                    "Nobody could receive it any more: everyone in the audience unsubscribed "
                    "or was suppressed before sending began."
                ),
                finished_at=timezone.now(),
            )
    return recipients


_SNAPSHOT_SQL = """
WITH audience AS MATERIALIZED ({audience}),
inserted AS (
    INSERT INTO campaigns_delivery (campaign_id, contact_id)
    SELECT %s, audience.contact_id FROM audience
    WHERE NOT audience.suppressed
    ORDER BY audience.contact_id
    ON CONFLICT (campaign_id, contact_id) WHERE enrollment_id IS NULL DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM audience)
"""

# -- a journey's deliveries ----------------------------------------------------------------------

_ADD_SQL = """
WITH inserted AS (
    INSERT INTO campaigns_delivery (campaign_id, contact_id, enrollment_id, context)
    SELECT %(campaign)s, v.contact, v.enrollment, v.context::jsonb
    FROM unnest(%(contacts)s::bigint[], %(enrollments)s::bigint[], %(contexts)s::text[])
        AS v(contact, enrollment, context)
    ON CONFLICT (campaign_id, enrollment_id) WHERE enrollment_id IS NOT NULL DO NOTHING
    RETURNING 1
)
UPDATE campaigns_campaign
SET recipients_count = recipients_count + (SELECT count(*) FROM inserted)
WHERE id = %(campaign)s
RETURNING (SELECT count(*) FROM inserted)
"""


def add_deliveries(
    campaign_id: int, rows: Sequence[tuple[int, int, Mapping[str, object] | None]]
) -> int:
    """Queue a journey email (a campaign of kind "journey") for each (contact, enrollment,
    event properties) of ``rows``, once per enrollment however often it is asked: the
    journey engine's only way into the ledger. The caller's transaction holds the
    enrollments, so a step is written with its delivery or not at all. Returns how many
    were queued now."""
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            _ADD_SQL,
            {
                "campaign": campaign_id,
                "contacts": [contact for contact, _, _ in rows],
                "enrollments": [enrollment for _, enrollment, _ in rows],
                "contexts": [json.dumps(context) if context else None for _, _, context in rows],
            },
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


# -- claiming ----------------------------------------------------------------------------------

_CLAIM_SQL = """
WITH claimed AS (
    UPDATE campaigns_delivery AS d
    SET status = %(sending)s, claimed_at = now(), attempts = d.attempts + 1
    WHERE d.id IN (
        SELECT q.id FROM campaigns_delivery AS q
        WHERE q.campaign_id = %(campaign)s AND q.status = %(queued)s
          AND (q.retry_at IS NULL OR q.retry_at <= now())
        ORDER BY q.id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING d.id, d.contact_id, d.attempts, d.variant, d.context
)
SELECT claimed.id, claimed.attempts, claimed.variant, claimed.context,
    c.email, c.first_name, c.last_name, c.attributes,
    c.tracking_objected_at IS NOT NULL AS untracked,
    (c.id IS NOT NULL
     AND EXISTS (
        SELECT 1 FROM contacts_subscription AS s
        WHERE s.contact_id = c.id AND s.status = %(subscribed)s
          AND s.contact_list_id = ANY(%(lists)s))
     AND NOT EXISTS (
        SELECT 1 FROM contacts_suppression AS x
        WHERE x.email_sha256 = encode(sha256(convert_to(c.email, 'UTF8')), 'hex')
          AND (x.account_id = %(account)s OR x.account_id IS NULL))
    ) AS sendable
FROM claimed LEFT JOIN contacts_contact AS c ON c.id = claimed.contact_id
ORDER BY claimed.id
"""


# Django has psycopg hand jsonb over as text, for JSONField to decode: a raw statement
# gets the text, so the attributes it reads go through the same loader as the ORM's.
_ATTRIBUTES = Contact._meta.get_field("attributes")


def _attributes(value: object) -> dict[str, object]:
    loaded = (
        _ATTRIBUTES.from_db_value(value, _ATTRIBUTES.cached_col, connection)
        if isinstance(value, str)
        else value
    )
    return loaded if isinstance(loaded, dict) else {}


@dataclass
class Claimed:
    recipients: list[Recipient]
    attempts: dict[int, int]
    skipped: list[int]


def claim_batch(campaign: Campaign, list_ids: list[int], limit: int) -> Claimed:
    """Claim up to ``limit`` queued deliveries (committed at once, so other workers see
    the claim) and read who may still receive them."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            {
                "campaign": campaign.pk,
                "limit": limit,
                "lists": list_ids,
                "account": campaign.account_id,
                "subscribed": Subscription.Status.SUBSCRIBED.value,
                **_STATUSES,
            },
        )
        rows = cursor.fetchall()
    # The statement hashes the stored address only; an entry an older version stored
    # under the U-label form's hash is looked up here, one query for the batch, and only
    # when it has recipients with an A-label domain.
    a_labels = [email for _, _, _, _, email, *_, sendable in rows if sendable and "xn--" in email]
    legacy = suppressed_in_unicode_form(campaign.account, a_labels) if a_labels else set()
    claimed = Claimed(recipients=[], attempts={}, skipped=[])
    for (
        delivery_id,
        attempts,
        variant,
        context,
        email,
        first_name,
        last_name,
        attributes,
        untracked,
        sendable,
    ) in rows:
        claimed.attempts[delivery_id] = attempts
        if not sendable or email in legacy:
            claimed.skipped.append(delivery_id)
            continue
        claimed.recipients.append(
            Recipient(
                delivery_id=delivery_id,
                email=email,
                first_name=first_name,
                last_name=last_name,
                attributes=_attributes(attributes),
                untracked=bool(untracked),
                variant=variant,
                event=_attributes(context) if context is not None else None,
            )
        )
    return claimed


# -- recording ----------------------------------------------------------------------------------

# The ledger's states, as the statements below name them.
_STATUSES = {str(value): str(value) for value in D}

# Every outcome is written only while the row is still this worker's claim ("sending"):
# if the sweeper took a claim back (its worker looked dead), another lane owns it now and
# this lane's outcome is dropped, so nothing is counted twice.
_SENT_SQL = """
UPDATE campaigns_delivery AS d
SET status = %(sent)s, sent_at = %(now)s, message_id = v.mid, esp_message_id = v.esp,
    error = '', claimed_at = NULL
FROM unnest(%(ids)s::bigint[], %(mids)s::text[], %(esps)s::text[]) AS v(id, mid, esp)
WHERE d.id = v.id AND d.status = %(sending)s
RETURNING d.id
"""
_RETRY_SQL = """
UPDATE campaigns_delivery AS d
SET status = %(queued)s, claimed_at = NULL, retry_at = v.retry_at, error = v.error
FROM unnest(%(ids)s::bigint[], %(retry_at)s::timestamptz[], %(errors)s::text[])
    AS v(id, retry_at, error)
WHERE d.id = v.id AND d.status = %(sending)s
"""
# Back to the queue without spending an attempt: nothing was tried (every connection to
# the receiving provider was in use), so trying later is no retry.
_RELEASE_SQL = """
UPDATE campaigns_delivery
SET status = %(queued)s, claimed_at = NULL, retry_at = %(retry_at)s,
    attempts = GREATEST(attempts - 1, 0)
WHERE id = ANY(%(ids)s) AND status = %(sending)s
"""
RELEASE_DELAY = timedelta(seconds=30)
_FAILED_SQL = """
UPDATE campaigns_delivery AS d
SET status = %(failed)s, claimed_at = NULL, error = v.error, failed_at = %(now)s
FROM unnest(%(ids)s::bigint[], %(errors)s::text[]) AS v(id, error)
WHERE d.id = v.id AND d.status = %(sending)s
RETURNING d.id
"""
_SKIPPED_SQL = """
UPDATE campaigns_delivery
SET status = %(skipped)s, claimed_at = NULL,
    error = 'Unsubscribed, suppressed or erased before sending.'
WHERE id = ANY(%(ids)s) AND status = %(sending)s
"""
# The bodies as plain rows: Django's bulk_create sends them as UNNEST of text arrays,
# which psycopg quotes in Python (a regex substitution per quote in the HTML), at some
# 300 µs of CPU per message.
_BODIES_SQL = """
INSERT INTO campaigns_deliverybody (delivery_id, subject, html, text, created_at)
VALUES {rows}
ON CONFLICT (delivery_id) DO NOTHING
"""
# A batch still at work renews its lease, so a slow batch is not taken for a dead one.
_RENEW_SQL = """
UPDATE campaigns_delivery SET claimed_at = %(now)s
WHERE id = ANY(%(ids)s) AND status = %(sending)s
"""


@dataclass
class Outcomes:
    """What happened to the messages of a batch since the last flush."""

    sent: list[tuple[int, str, str]] = field(default_factory=list)  # id, message id, esp id
    bodies: list[DeliveryBody] = field(default_factory=list)
    retry: list[tuple[int, str]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    # Of the failed, those whose address the receiving server refused (a bounce).
    refused: set[int] = field(default_factory=set)
    skipped: list[int] = field(default_factory=list)
    # Not tried at all (the provider's connections were all in use): no attempt spent.
    released: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.sent)
            + len(self.retry)
            + len(self.failed)
            + len(self.skipped)
            + len(self.released)
        )

    def clear(self) -> None:
        self.sent.clear()
        self.bodies.clear()
        self.retry.clear()
        self.failed.clear()
        self.refused.clear()
        self.skipped.clear()
        self.released.clear()


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=settings.MISSIVE_SEND_RETRY_BASE * 2 ** max(attempts - 1, 0))


def _execute(cursor: CursorWrapper, statement: str, **params: Any) -> None:
    cursor.execute(statement, {**_STATUSES, **params})


def _record_sent(
    cursor: CursorWrapper, campaign: Campaign, outcomes: Outcomes, now: datetime
) -> set[int]:
    """The messages handed over: their ledger rows, bodies and "sent" events."""
    if not outcomes.sent:
        return set()
    ids, message_ids, esp_ids = zip(*outcomes.sent, strict=True)
    _execute(cursor, _SENT_SQL, now=now, ids=list(ids), mids=list(message_ids), esps=list(esp_ids))
    sent_ids = {row[0] for row in cursor.fetchall()}
    bodies = [b for b in outcomes.bodies if b.delivery_id in sent_ids]
    if bodies:
        cursor.execute(
            _BODIES_SQL.format(rows=", ".join(["(%s, %s, %s, %s, %s)"] * len(bodies))),
            [v for b in bodies for v in (b.delivery_id, b.subject, b.html, b.text, now)],
        )
    record_events(
        NewEvent(
            type=Event.Type.SENT,
            account_id=campaign.account_id,
            campaign_id=campaign.pk,
            delivery_id=i,
            occurred_at=now,
        )
        for i, _, _ in outcomes.sent
        if i in sent_ids
    )
    return sent_ids


def _record_failures(
    cursor: CursorWrapper,
    campaign: Campaign,
    outcomes: Outcomes,
    attempts: dict[int, int],
    now: datetime,
) -> set[int]:
    """Temporary failures go back to the queue for later, until they have been tried
    too often; the others fail, with a "failed" event, and a server's permanent refusal
    of an address is handed to stats as the bounce it is."""
    retry, failed = [], list(outcomes.failed)
    for delivery_id, error in outcomes.retry:
        if attempts[delivery_id] < settings.MISSIVE_SEND_MAX_ATTEMPTS:
            retry.append((delivery_id, error))
        else:
            failed.append((delivery_id, f"Gave up after {attempts[delivery_id]} attempts: {error}"))
    if retry:
        _execute(
            cursor,
            _RETRY_SQL,
            ids=[i for i, _ in retry],
            retry_at=[now + _retry_delay(attempts[i]) for i, _ in retry],
            errors=[e[:1000] for _, e in retry],
        )
    if not failed:
        return set()
    ids, errors = zip(*failed, strict=True)
    _execute(cursor, _FAILED_SQL, now=now, ids=list(ids), errors=[e[:1000] for e in errors])
    failed_ids = {row[0] for row in cursor.fetchall()}
    record_events(
        NewEvent(
            type=Event.Type.FAILED,
            account_id=campaign.account_id,
            campaign_id=campaign.pk,
            delivery_id=i,
            occurred_at=now,
            detail={"error": error[:500]},
        )
        for i, error in failed
        if i in failed_ids
    )
    # A server's permanent refusal of an address is a bounce: the feedback rules
    # (suppress a refused address, count a full mailbox) run in stats, enqueued by
    # name once this is committed. A refusal of the sender or of the message is not.
    refusals = [(i, e) for i, e in outcomes.failed if i in failed_ids and i in outcomes.refused]
    if refusals:
        enqueue("stats.record_send_refusals", refusals)
    return failed_ids


def flush(
    campaign: Campaign,
    outcomes: Outcomes,
    attempts: dict[int, int],
    *,
    renew: Sequence[int] = (),
) -> None:
    """Write a batch's outcomes to the ledger, the bodies, the events and the counters, in
    one transaction; renew the lease of the deliveries in ``renew`` (still to send)."""
    if not len(outcomes) and not renew:
        return
    now = timezone.now()
    skipped = 0
    with transaction.atomic(), connection.cursor() as cursor:
        sent_ids = _record_sent(cursor, campaign, outcomes, now)
        failed_ids = _record_failures(cursor, campaign, outcomes, attempts, now)
        if outcomes.skipped:
            _execute(cursor, _SKIPPED_SQL, ids=outcomes.skipped)
            skipped = cursor.rowcount
        if outcomes.released:
            _execute(cursor, _RELEASE_SQL, ids=outcomes.released, retry_at=now + RELEASE_DELAY)
        if renew:
            _execute(cursor, _RENEW_SQL, now=now, ids=list(renew))
        if sent_ids or failed_ids or skipped:
            Campaign.objects.filter(pk=campaign.pk).update(
                sent_count=F("sent_count") + len(sent_ids),
                failed_count=F("failed_count") + len(failed_ids),
                skipped_count=F("skipped_count") + skipped,
            )
    outcomes.clear()


# -- one batch ---------------------------------------------------------------------------------

_FACTORIES: OrderedDict[tuple[int, str, int], MessageFactory] = OrderedDict()


def factory_for(campaign: Campaign, variant: int | None = None) -> MessageFactory:
    """The message factory of the campaign, or of one variant of its A/B test (``HELD``:
    the winner's), built once per process (content cannot change while a campaign is
    sending)."""
    if variant == ab.HELD:
        variant = ABTest.objects.filter(campaign=campaign).values_list("winner", flat=True).first()
    key = (campaign.pk, campaign.updated_at.isoformat(), variant or 0)
    factory = _FACTORIES.get(key)
    if factory is None:
        positions = dict(Link.objects.filter(campaign=campaign).values_list("url", "position"))
        factory = MessageFactory(ab.content_of(campaign, variant), positions=positions)
        _FACTORIES[key] = factory
        while len(_FACTORIES) > 8:
            _FACTORIES.popitem(last=False)
    return factory


def send_rate(account: Account) -> int:
    if account.send_rate is not None:
        return account.send_rate
    return settings.MISSIVE_DEFAULT_SEND_RATE


@dataclass(frozen=True)
class BatchReport:
    claimed: int
    sent: int
    more: bool  # queued deliveries remain that are due now


def _warming_domain(campaign: Campaign) -> SendingDomain | None:
    """The campaign's From domain when it has a warm-up cap today."""
    domain = sender_for(
        campaign.account,
        from_email=campaign.from_email,
        from_name=campaign.from_name,
        reply_to=campaign.reply_to,
    ).domain
    if domain is None:
        return None
    if domain.account_id == campaign.account_id:
        domain.account = campaign.account  # its time zone, without another query
    return domain if warmup_cap_today(domain, pacing.local_today(domain)) is not None else None


def postpone(campaign_id: int, until: datetime) -> int:
    """Hold the campaign's queued deliveries until ``until``: not due before then, and
    not an attempt. Returns how many were held."""
    return (
        Delivery.objects.filter(campaign_id=campaign_id, status=D.QUEUED)
        .exclude(retry_at__gte=until)
        .update(retry_at=until)
    )


def unhold(campaign_id: int, until: datetime) -> int:
    """Make due again what ``postpone`` held until ``until``. Returns how many."""
    return Delivery.objects.filter(campaign_id=campaign_id, status=D.QUEUED, retry_at=until).update(
        retry_at=None
    )


def send_batch(campaign_id: int, *, transport: Transport | None = None) -> BatchReport:
    """Claim one batch of the campaign and send it. Does nothing unless it is sending."""
    campaign = Campaign.objects.select_related("account").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != State.SENDING or not campaign.snapshot_at:
        return BatchReport(claimed=0, sent=0, more=False)
    account = campaign.account
    if not account.is_active or account.sending_suspended_at:
        return BatchReport(claimed=0, sent=0, more=False)
    domain_problem = from_address_problem(account, campaign.from_email)
    if domain_problem:
        # The From domain lost its records or was removed while the campaign was sending:
        # its messages wait in the queue, and go once the domain is verified again (the
        # sweeper comes back to due work).
        logger.warning("Campaign %s held: %s", campaign.pk, domain_problem)
        return BatchReport(claimed=0, sent=0, more=False)
    try:
        # The keys that sign now: a rotation or a removal during a long send takes effect
        # from the next batch.
        factory_for(campaign).refresh_signer()
    except KeyUnavailable as error:
        logger.error("Campaign %s held: %s", campaign.pk, error)
        return BatchReport(claimed=0, sent=0, more=False)
    except rendering.TemplateRefused:
        pass  # failed with its reason by the batch itself
    rate = send_rate(campaign.account)
    limit = settings.MISSIVE_SEND_BATCH_SIZE
    if rate:
        # The lanes share the account's rate: a batch takes about five seconds, so an
        # unsubscribe during a slow, rate-limited send is seen before the next messages go.
        limit = max(1, min(limit, rate * 5 // settings.MISSIVE_SEND_LANES))
    warming = _warming_domain(campaign)
    if warming is None:
        return _send(campaign, limit, rate, transport)
    day = pacing.local_today(warming)
    midnight = pacing.next_local_midnight(warming, day=day)
    granted = pacing.reserve_daily(warming, limit, day=day)
    if not granted:
        held = postpone(campaign.pk, midnight)
        logger.info("Campaign %s: %s spent today's cap, %s held", campaign.pk, warming, held)
        return BatchReport(claimed=0, sent=0, more=False)
    progress = _Progress()
    try:
        report = _send(campaign, granted, rate, transport, progress)
    finally:
        # Whatever was handed to the transport counts, sent or not: a receiver saw it.
        unused = granted - progress.attempted
        pacing.release_daily(warming, unused, day=day)
    if unused and unhold(campaign.pk, midnight):
        # Another lane found the cap taken, by this batch's reservation among others, and
        # held the rest until tomorrow; what this batch did not use is today's again.
        report = BatchReport(claimed=report.claimed, sent=report.sent, more=True)
    return report


@dataclass
class _Progress:
    attempted: int = 0  # messages handed to the transport


def _send(
    campaign: Campaign,
    limit: int,
    rate: int,
    transport: Transport | None,
    progress: _Progress | None = None,
) -> BatchReport:
    claimed = claim_batch(campaign, audience_list_ids(campaign), limit)
    total = len(claimed.recipients) + len(claimed.skipped)
    if not total:
        finish_if_done(campaign.pk)
        return BatchReport(claimed=0, sent=0, more=_has_due(campaign.pk))
    outcomes = Outcomes(skipped=list(claimed.skipped))
    sent = 0
    # Provider by provider: an SMTP connection carries one provider's messages.
    provider_of = providers.of_addresses(r.email for r in claimed.recipients)
    pending = sorted(claimed.recipients, key=lambda r: provider_of[r.email])
    done = 0  # how many of ``pending`` have an outcome
    progress = progress or _Progress()
    paces: dict[str, float | None] = {}
    try:
        if pending:
            factories: dict[int | None, MessageFactory] = {}

            def factory_of(variant: int | None) -> MessageFactory:
                if variant not in factories:
                    factories[variant] = factory_for(campaign, variant)
                    factories[variant].refresh_signer()
                return factories[variant]

            transport = transport or transport_for(campaign.account)
            transport.open(provider_of[pending[0].email])
            sending = transport

            def written(recipient: Recipient) -> tuple[MessageFactory, Outgoing]:
                factory = factory_of(recipient.variant)
                message = factory.build(recipient)
                message.provider = provider_of[recipient.email]
                sending.prepare(factory, message)
                return factory, message

            following = written(pending[0])
            for position, recipient in enumerate(pending):
                provider = provider_of[recipient.email]
                if provider not in paces:
                    paces[provider] = pacing.provider_pace(provider)
                if rate:
                    ratelimit.acquire(f"account:{campaign.account_id}", rate)
                pace = paces[provider]
                if pace:
                    ratelimit.acquire(f"provider:{provider}", pace)
                factory, message = following
                if position + 1 < len(pending):
                    # The next one is written now, and signed while this one is sent.
                    following = written(pending[position + 1])
                progress.attempted += 1
                result = transport.send(factory, message)
                done += 1
                if result.outcome == Result.SENT:
                    sent += 1
                    outcomes.sent.append((recipient.delivery_id, message.message_id, result.detail))
                    outcomes.bodies.append(
                        DeliveryBody(
                            delivery_id=recipient.delivery_id,
                            subject=message.subject,
                            html=message.html,
                            text=message.text,
                        )
                    )
                elif result.outcome == Result.FAILED:
                    outcomes.failed.append((recipient.delivery_id, result.detail))
                    if result.recipient_refused:
                        outcomes.refused.add(recipient.delivery_id)
                else:
                    outcomes.retry.append((recipient.delivery_id, result.detail))
                    if pacing.is_rate_deferral(result.detail):
                        paces[provider] = pacing.note_deferral(provider)
                if len(outcomes) >= settings.MISSIVE_SEND_FLUSH_EVERY:
                    renew = [r.delivery_id for r in pending[done:]]
                    flush(campaign, outcomes, claimed.attempts, renew=renew)
    except ProviderBusy as busy:
        logger.info("Campaign %s: %s", campaign.pk, busy)
        outcomes.released.extend(r.delivery_id for r in pending[done:])
    except ConnectionLost as lost:
        logger.warning("Campaign %s: %s", campaign.pk, lost)
        outcomes.retry.extend((r.delivery_id, str(lost)) for r in pending[done:])
    except rendering.TemplateRefused as refused:
        # Only a template stored by other means than the editor can get here.
        _fail(campaign.pk, f"The message cannot be rendered: {refused}")
        outcomes.retry.extend((r.delivery_id, str(refused)) for r in pending[done:])
    finally:
        try:
            if transport is not None:
                transport.close()
        finally:
            flush(campaign, outcomes, claimed.attempts)
    finish_if_done(campaign.pk)
    return BatchReport(claimed=total, sent=sent, more=_has_due(campaign.pk))


def _locked(campaign_id: int) -> Campaign | None:
    return (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("account")
        .filter(pk=campaign_id)
        .first()
    )


def _fail(campaign_id: int, reason: str) -> None:
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign is None or campaign.status != State.SENDING:
            return
        transition(
            campaign,
            Action.FAIL,
            actor=None,
            by=By.SENDER,
            failure_reason=reason,
            finished_at=timezone.now(),
        )


def _has_due(campaign_id: int) -> bool:
    now = timezone.now()
    return (
        Delivery.objects.filter(campaign_id=campaign_id, status=D.QUEUED)
        .exclude(retry_at__gt=now)
        .exists()
    )


def finish_if_done(campaign_id: int) -> bool:
    """Mark a sending campaign sent once no delivery is queued or in flight. A journey's
    email is never done: it sends while its journey is live."""
    open_rows = Delivery.objects.filter(campaign_id=campaign_id, status__in=[D.QUEUED, D.SENDING])
    if open_rows.exists():
        return False
    with transaction.atomic():
        campaign = _locked(campaign_id)
        if campaign is None or campaign.status != State.SENDING or not campaign.snapshot_at:
            return False
        if campaign.kind == Campaign.Kind.JOURNEY or open_rows.exists():
            return False
        transition(campaign, Action.FINISH, actor=None, by=By.SENDER, finished_at=timezone.now())
    return True


# -- sweeping ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    returned: int  # claims of dead workers put back in the queue
    kicked: list[int]  # campaigns whose lanes were started again
    finished: list[int]
    unsnapshotted: list[int]  # campaigns whose snapshot must be taken again


def sweep() -> SweepReport:
    """Return expired claims to the queue; restart the lanes of sending campaigns that
    have due work and nobody working on it; close campaigns that are done."""
    lease = timedelta(seconds=settings.MISSIVE_SEND_CLAIM_TIMEOUT)
    expired_before = timezone.now() - lease
    expired = Delivery.objects.filter(status=D.SENDING, claimed_at__lt=expired_before)
    # A message whose worker died with it every time is given up, not retried for ever.
    hopeless = expired.filter(attempts__gte=settings.MISSIVE_SEND_MAX_ATTEMPTS)
    campaign_ids = hopeless.values_list("campaign_id", flat=True).distinct().order_by()
    for campaign_id in list(campaign_ids):
        with transaction.atomic():
            given_up = hopeless.filter(campaign_id=campaign_id).update(
                status=D.FAILED,
                claimed_at=None,
                failed_at=timezone.now(),
                error=f"Given up after {settings.MISSIVE_SEND_MAX_ATTEMPTS} attempts: the "
                "worker sending it stopped each time.",
            )
            Campaign.objects.filter(pk=campaign_id).update(
                failed_count=F("failed_count") + given_up
            )
    returned = expired.update(status=D.QUEUED, claimed_at=None)
    # A campaign started (or resumed) whose snapshot task never ran: the broker lost it,
    # or refused it after the start was committed. Taking the snapshot is idempotent.
    unsnapshotted = list(
        Campaign.objects.filter(
            status=State.SENDING, snapshot_at__isnull=True, started_at__lt=expired_before
        ).values_list("pk", flat=True)
    )
    sending = Campaign.objects.filter(status=State.SENDING, snapshot_at__isnull=False)
    in_flight = Delivery.objects.filter(campaign=OuterRef("pk"), status=D.SENDING)
    kicked, finished = [], []
    for campaign_id, busy in sending.annotate(busy=Exists(in_flight)).values_list("pk", "busy"):
        if finish_if_done(campaign_id):
            finished.append(campaign_id)
        elif not busy and _has_due(campaign_id):
            kicked.append(campaign_id)
    return SweepReport(
        returned=returned, kicked=kicked, finished=finished, unsnapshotted=unsnapshotted
    )
