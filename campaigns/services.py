"""Writes for campaigns and templates. Customer HTML is sanitized and its merge tags are
checked here, on every save, so nothing unsafe is stored by the app."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formataddr
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.defaultfilters import pluralize
from django.utils import timezone

from accounts import allowances
from accounts.models import Account, User
from accounts.services import audit_log
from accounts.tasking import enqueue
from audiences import services as audiences
from audiences.models import Segment
from campaigns import ab, blocks, rendering, sanitizing
from campaigns.composing import compose
from campaigns.lifecycle import By, transition
from campaigns.messages import SignedEmail, subject_line
from campaigns.models import ABTest, Campaign, Editor, Link, Template
from campaigns.selectors import recipient_values, start_problems
from campaigns.starters import BY_KEY
from campaigns.states import Action, State, TransitionRefused, next_state
from contacts.models import AttributeDefinition, Contact, ContactList
from contacts.selectors import is_suppressed
from domains.dkim import KeyUnavailable
from domains.selectors import from_address_problem, sender_for, signer_for

# A campaign's content and its tracking settings: what a duplicate copies, and (with
# the name and the audience) what a draft's edit may change. A content field added to
# the model is added here, once.
CONTENT_FIELDS = (
    "subject",
    "preheader",
    "from_name",
    "from_email",
    "reply_to",
    "html",
    "editor",
    "blocks",
    "text",
    "text_is_custom",
    "track_opens",
    "track_clicks",
)
EDITABLE = ("name", *CONTENT_FIELDS, "segment")


def _attribute_names(account: Account) -> set[str]:
    return set(AttributeDefinition.objects.for_account(account).values_list("name", flat=True))


def check_merge_tags(account: Account, **parts: str) -> None:
    """ValidationError naming each part (subject, html, text) whose merge tags are wrong."""
    names = _attribute_names(account)
    errors = {}
    for field, text in parts.items():
        problems = rendering.check_template(text or "", attribute_names=names)
        if problems:
            errors[field] = problems
    if errors:
        raise ValidationError(errors)


def _from_blocks(fields: dict[str, object]) -> None:
    """With the blocks editor, the blocks are checked and the HTML is made from them."""
    if fields.get("editor") != Editor.BLOCKS:
        fields.pop("blocks", None)  # never stored unchecked
        return
    try:
        given = fields.get("blocks")
        document = blocks.clean_document(blocks.empty_document() if given is None else given)
    except blocks.BlocksInvalid as invalid:
        raise ValidationError(
            {"blocks": [f"{path}: {message}" for path, message in invalid.errors.items()]}
        ) from None
    fields["blocks"] = document
    fields["html"] = blocks.to_html(document)


def _prepare(account: Account, fields: dict[str, object]) -> dict[str, object]:
    """Make the HTML from the blocks, sanitize it, derive the text part unless it is the
    customer's own, and check every merge tag. Returns the fields to store."""
    segment = fields.get("segment")
    if segment is not None and getattr(segment, "account_id", None) != account.pk:
        raise ValidationError({"segment": "No such segment in this account."})
    _from_blocks(fields)
    if "html" in fields:
        fields["html"] = sanitizing.sanitize_html(str(fields["html"] or ""))
    if not fields.get("text_is_custom") and "html" in fields:
        fields["text"] = sanitizing.html_to_text(str(fields["html"]))
    check_merge_tags(
        account,
        **{k: str(fields[k]) for k in ("subject", "preheader", "html", "text") if k in fields},
    )
    return fields


def replace_links(campaign: Campaign) -> None:
    """The links to track: the campaign's, then its A/B variants' own, each once."""
    urls = sanitizing.extract_links(campaign.html)
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is not None:
        urls += ab.variant_links(test)
    Link.objects.filter(campaign=campaign).delete()
    Link.objects.bulk_create(
        Link(campaign=campaign, position=n, url=url[:2000])
        for n, url in enumerate(dict.fromkeys(url[:2000] for url in urls))
    )


@transaction.atomic
def campaign_create(
    *,
    account: Account,
    actor: User | None,
    name: str,
    starter: str = "",
    template: Template | None = None,
    lists: Sequence[ContactList] = (),
    **fields: object,
) -> Campaign:
    """A draft, from a starter, a saved template or blank, with the account's sender."""
    source = BY_KEY.get(starter)
    base: dict[str, object] = {
        "subject": source.subject if source else "",
        "html": source.html if source else "",
    }
    if source is not None and source.blocks is not None:
        base.update(editor=Editor.BLOCKS, blocks=source.blocks)
    if template is not None:
        base = {
            "subject": template.subject,
            "preheader": template.preheader,
            "html": template.html,
            "editor": template.editor,
            "blocks": template.blocks,
        }
    if fields.get("blocks") is not None and "editor" not in fields:
        fields["editor"] = Editor.BLOCKS
    values = {
        "from_name": account.default_from_name or account.name,
        "from_email": account.default_from_email,
        **base,
        **fields,
    }
    prepared = _prepare(account, {k: v for k, v in values.items() if k in EDITABLE})
    campaign = Campaign(account=account, name=name.strip(), created_by=actor, **prepared)
    campaign.full_clean(exclude=["lists"])
    campaign.save()
    campaign.lists.set([cl for cl in lists if cl.account_id == account.pk])
    replace_links(campaign)
    audit_log(account=account, actor=actor, action="campaign.created", name=campaign.name)
    return campaign


DUPLICATE_PREFIX = "Copy of "


@transaction.atomic
def campaign_duplicate(*, campaign: Campaign, actor: User | None) -> Campaign:
    """A new draft with the campaign's content, tracking settings and audience (lists
    and segment), whatever the campaign's state; nothing of its send (schedule, status,
    counts, statistics) comes along. The content is copied as stored: it was sanitized
    and checked when it was saved."""
    max_length = Campaign._meta.get_field("name").max_length or 200
    copy = Campaign(
        account=campaign.account,
        name=f"{DUPLICATE_PREFIX}{campaign.name}"[:max_length].strip(),
        created_by=actor,
        segment=campaign.segment,
        **{field: getattr(campaign, field) for field in CONTENT_FIELDS},
    )
    copy.save()
    copy.lists.set(campaign.lists.all())
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is not None:
        # The test's set-up, not its outcome.
        ABTest.objects.create(
            campaign=copy,
            variants=test.variants,
            share=test.share,
            metric=test.metric,
            wait_hours=test.wait_hours,
        )
    replace_links(copy)
    audit_log(
        account=campaign.account,
        actor=actor,
        action="campaign.duplicated",
        name=copy.name,
        source=campaign.name,
        source_id=campaign.pk,
    )
    return copy


@transaction.atomic
def campaign_update(
    *,
    campaign: Campaign,
    actor: User | None,
    lists: list[ContactList] | None = None,
    **fields: object,
) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    try:
        next_state(campaign.status, Action.EDIT, campaign.kind)
    except TransitionRefused as refused:
        raise ValidationError(str(refused)) from None
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be changed."))
    if "html" in fields and "text_is_custom" not in fields:
        fields["text_is_custom"] = campaign.text_is_custom
    editor = fields.get("editor", campaign.editor)
    if editor == Editor.BLOCKS and {"editor", "blocks", "html"} & set(fields):
        # The HTML is made from the blocks: from those given, or else the stored ones.
        fields["editor"] = editor
        fields.setdefault("blocks", campaign.blocks)
        fields.setdefault("text_is_custom", campaign.text_is_custom)
    prepared = _prepare(campaign.account, dict(fields))
    for name, value in prepared.items():
        setattr(campaign, name, value)
    campaign.updated_at = timezone.now()
    campaign.full_clean(exclude=["lists"])
    campaign.save()
    if lists is not None:
        campaign.lists.set([cl for cl in lists if cl.account_id == campaign.account_id])
    if "html" in prepared:
        replace_links(campaign)
    audit_log(
        account=campaign.account,
        actor=actor,
        action="campaign.updated",
        name=campaign.name,
        fields=sorted(prepared) + (["lists"] if lists is not None else []),
    )
    return campaign


@transaction.atomic
def campaign_publish(*, campaign: Campaign, actor: User | None, public: bool) -> Campaign:
    """Show the campaign in the account's public archive once it is sent, or take it out.
    Any state: a campaign can be published after its send."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.public_archive != public:
        campaign.public_archive = public
        campaign.save(update_fields=["public_archive"])
        audit_log(
            account=campaign.account,
            actor=actor,
            action="campaign.published" if public else "campaign.unpublished",
            name=campaign.name,
        )
    return campaign


@transaction.atomic
def campaign_delete(*, campaign: Campaign, actor: User | None) -> None:
    try:
        next_state(campaign.status, Action.DELETE, campaign.kind)
    except TransitionRefused as refused:
        raise ValidationError(str(refused)) from None
    audit_log(account=campaign.account, actor=actor, action="campaign.deleted", name=campaign.name)
    campaign.delete()


@transaction.atomic
def template_save(*, campaign: Campaign, actor: User | None, name: str) -> Template:
    """Keep a campaign's content as a template of the account (same name: replaced)."""
    template, _ = Template.objects.update_or_create(
        account=campaign.account,
        name=name.strip(),
        defaults={
            "subject": campaign.subject,
            "preheader": campaign.preheader,
            "html": campaign.html,
            "editor": campaign.editor,
            "blocks": campaign.blocks,
            "updated_at": timezone.now(),
        },
    )
    return template


@transaction.atomic
def template_delete(*, template: Template, actor: User | None) -> None:
    template.delete()


# A test goes to a handful of colleagues, never to a list: without these bounds the test
# send would be a way to mail arbitrary addresses past every check a campaign passes.
TEST_SEND_MAX_RECIPIENTS = 5
TEST_SEND_HOURLY_LIMIT = 10  # test messages per account per clock hour
SKIPPED_SUPPRESSED = "suppressed"


class TestSendRefused(PermissionDenied):
    """The account may not send at all now (closed, or sending suspended)."""


class TestSendLimitReached(Exception):
    """The account's test messages of the last hour are used up; ``retry_after`` is the
    seconds until those asked for would fit."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class TestSendResult:
    sent: int
    # Address -> why nothing went to it. Only ever "suppressed": whether the entry is the
    # account's own or the platform's "do not contact" list is not the account's to know.
    skipped: dict[str, str]


def campaign_test_send(
    *,
    campaign: Campaign,
    actor: User | None,
    recipients: list[str],
    as_contact: Contact | None = None,
) -> TestSendResult:
    """Send the campaign as it stands to up to 5 addresses, subject marked [Test], with
    the merge tags filled with ``as_contact``'s fields and attributes (one of the
    account's contacts), or with sample values.

    The same gates as a campaign: nothing leaves a closed or suspended account
    (TestSendRefused), and nothing goes to an address on the account's suppression list
    or the platform's "do not contact" list (skipped, and said so). At most
    TEST_SEND_HOURLY_LIMIT messages per account and hour (TestSendLimitReached)."""
    account = campaign.account
    try:
        _check_account_can_send(account)
    except ValidationError as refused:
        raise TestSendRefused(" ".join(refused.messages)) from None
    if as_contact is not None and as_contact.account_id != account.pk:
        raise ValidationError({"contact": "No such contact in this account."})
    if not campaign.from_email:
        raise ValidationError({"from_email": "Set a sender address before sending a test."})
    domain_problem = from_address_problem(account, campaign.from_email)
    if domain_problem:
        raise ValidationError({"from_email": domain_problem})
    sender = sender_for(
        account,
        from_email=campaign.from_email,
        from_name=campaign.from_name,
        reply_to=campaign.reply_to,
    )
    recipients = list(dict.fromkeys(recipients))
    if not 1 <= len(recipients) <= TEST_SEND_MAX_RECIPIENTS:
        raise ValidationError(f"A test goes to 1 to {TEST_SEND_MAX_RECIPIENTS} addresses.")
    skipped = {
        address: SKIPPED_SUPPRESSED for address in recipients if is_suppressed(account, address)
    }
    to_send = [address for address in recipients if address not in skipped]
    sent = 0
    if to_send:
        subject, html, text = compose(campaign).render(recipient_values(campaign, as_contact))
        try:
            allowances.take(
                "test-sends", account.pk, count=len(to_send), limit=TEST_SEND_HOURLY_LIMIT
            )
        except allowances.AllowanceExceeded as exceeded:
            minutes = math.ceil(exceeded.retry_after / 60)
            raise TestSendLimitReached(
                f"An account may send {TEST_SEND_HOURLY_LIMIT} test messages an hour; "
                f"{exceeded.left} may be sent now. Try again in {minutes} "
                f"minute{pluralize(minutes)}.",
                retry_after=exceeded.retry_after,
            ) from None
        from_header = formataddr((sender.from_name, sender.from_email))
        try:
            signer = signer_for(sender.domain)
        except KeyUnavailable as error:
            raise ValidationError({"from_email": str(error)}) from None
        with get_connection() as connection:
            messages: list[EmailMultiAlternatives] = []
            for address in to_send:
                message = SignedEmail(
                    subject=f"[Test] {subject_line(subject)}",
                    body=text,
                    from_email=from_header,
                    to=[address],
                    reply_to=[sender.reply_to] if sender.reply_to else None,
                    connection=connection,
                    headers={"X-Missive-Campaign": f"{campaign.account_id}-{campaign.pk}-test"},
                )
                message.attach_alternative(html, "text/html")
                message.signer = signer
                messages.append(message)
            sent = connection.send_messages(messages) or 0
    audit_log(
        account=account,
        actor=actor,
        action="campaign.test_sent",
        name=campaign.name,
        campaign_id=campaign.pk,
        recipients=len(recipients),
        sent=sent,
        skipped=len(skipped),
        as_contact=as_contact.pk if as_contact is not None else None,
    )
    return TestSendResult(sent=sent, skipped=skipped)


# -- sending: start, schedule, pause, resume, cancel ------------------------------------------


def _locked(campaign: Campaign, action: str) -> Campaign:
    """The campaign row, locked, when ``action`` is possible now (else ValidationError)."""
    locked = Campaign.objects.select_for_update().select_related("account").get(pk=campaign.pk)
    try:
        next_state(locked.status, action, locked.kind)
    except TransitionRefused as refused:
        raise ValidationError(str(refused)) from None
    return locked


def _check_account_can_send(account: Account) -> None:
    if not account.is_active:
        raise ValidationError("The account is closed: nothing can be sent.")
    if account.sending_suspended_at:
        raise ValidationError(
            f"Sending is suspended for this account: {account.sending_suspended_reason} "
            "Missive's operators can lift the suspension."
        )


def _check_startable(campaign: Campaign) -> None:
    _check_account_can_send(campaign.account)
    problems = start_problems(campaign)
    if problems:
        raise ValidationError(problems)


def _begin(campaign: Campaign, *, actor: User | None, by: By | None = None) -> None:
    """Move to sending and take the audience once this transaction commits."""
    transition(
        campaign,
        Action.START,
        actor=actor,
        by=by,
        started_at=timezone.now(),
        failure_reason="",
    )
    enqueue("campaigns.take_snapshot", campaign.pk)


@transaction.atomic
def campaign_start(*, campaign: Campaign, actor: User | None) -> Campaign:
    """Send now. Refused, with every reason, when the campaign is not ready."""
    campaign = _locked(campaign, Action.START)
    _check_startable(campaign)
    _begin(campaign, actor=actor)
    return campaign


@transaction.atomic
def campaign_schedule(*, campaign: Campaign, actor: User | None, when: dt.datetime) -> Campaign:
    """Send at ``when`` (aware). The same checks as sending now are made at once, and
    again when the time comes."""
    campaign = _locked(campaign, Action.SCHEDULE)
    if timezone.is_naive(when):
        raise ValidationError({"scheduled_at": "Give the time with its time zone."})
    if when <= timezone.now() + dt.timedelta(minutes=1):
        raise ValidationError({"scheduled_at": "Choose a time at least a minute from now."})
    _check_startable(campaign)
    transition(campaign, Action.SCHEDULE, actor=actor, scheduled_at=when)
    return campaign


@transaction.atomic
def campaign_unschedule(*, campaign: Campaign, actor: User | None) -> Campaign:
    campaign = _locked(campaign, Action.UNSCHEDULE)
    transition(campaign, Action.UNSCHEDULE, actor=actor, scheduled_at=None)
    return campaign


@transaction.atomic
def campaign_pause(*, campaign: Campaign, actor: User | None, by: By | None = None) -> Campaign:
    """Stop after the batches in flight; nothing already sent is sent again on resume."""
    campaign = _locked(campaign, Action.PAUSE)
    transition(campaign, Action.PAUSE, actor=actor, by=by)
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign, actor: User | None) -> Campaign:
    campaign = _locked(campaign, Action.RESUME)
    _check_account_can_send(campaign.account)
    transition(campaign, Action.RESUME, actor=actor)
    enqueue("campaigns.take_snapshot", campaign.pk)
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, actor: User | None, by: By | None = None) -> Campaign:
    """Stop for good after the batches in flight; who was not reached stays unsent."""
    campaign = _locked(campaign, Action.CANCEL)
    transition(campaign, Action.CANCEL, actor=actor, by=by, finished_at=timezone.now())
    return campaign


# -- a journey's emails --------------------------------------------------------------------------


@transaction.atomic
def journey_email_create(
    *, account: Account, actor: User | None, name: str, starter: str = "", **fields: Any
) -> Campaign:
    """The message of a journey's email step: a campaign of kind "journey", made like any
    draft (a starter, the account's sender)."""
    campaign = campaign_create(account=account, actor=actor, name=name, starter=starter, **fields)
    campaign.kind = Campaign.Kind.JOURNEY
    campaign.save(update_fields=["kind"])
    return campaign


JOURNEY_ACTIONS = (Action.START, Action.PAUSE, Action.RESUME, Action.CANCEL)


@transaction.atomic
def journey_email_switch(
    *,
    campaign: Campaign,
    action: str,
    actor: User | None,
    lists: Sequence[ContactList] = (),
) -> Campaign:
    """Start, pause, resume or end a journey's email with its journey: the one write of
    such a campaign's state. Starting takes no audience (the journey queues each
    recipient) and sends to people subscribed to ``lists``. Does nothing when the
    campaign is in that state already; ValidationError when the move is impossible."""
    if campaign.kind != Campaign.Kind.JOURNEY or action not in JOURNEY_ACTIONS:
        raise ValidationError("Only a journey's email moves with its journey.")
    locked = Campaign.objects.select_for_update().select_related("account").get(pk=campaign.pk)
    target: str = {
        str(Action.START): State.SENDING,
        str(Action.PAUSE): State.PAUSED,
        str(Action.RESUME): State.SENDING,
        str(Action.CANCEL): State.CANCELLED,
    }[action]
    if locked.status == target:
        return locked
    if action == Action.START and locked.status == State.PAUSED:
        action = Action.RESUME
    try:
        next_state(locked.status, action, locked.kind)
    except TransitionRefused as refused:
        raise ValidationError(str(refused)) from None
    changes: dict[str, object] = {}
    if action == Action.START:
        now = timezone.now()
        changes = {"started_at": now, "snapshot_at": now, "failure_reason": ""}
        locked.lists.set([cl for cl in lists if cl.account_id == locked.account_id])
    elif action == Action.CANCEL:
        changes = {"finished_at": timezone.now()}
    transition(locked, action, actor=actor, by=By.JOURNEY, **changes)
    if action == Action.RESUME:
        enqueue("campaigns.send_batch", locked.pk)
    return locked


def start_due_campaigns() -> list[int]:
    """Start every scheduled campaign whose time has come (run by beat). A campaign that
    can no longer be sent fails, with the reasons on its page."""
    started = []
    due = Campaign.objects.filter(
        status=State.SCHEDULED, scheduled_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    for campaign_id in list(due):
        with transaction.atomic():
            campaign = (
                Campaign.objects.select_for_update(skip_locked=True)
                .select_related("account")
                .filter(pk=campaign_id, status=State.SCHEDULED)
                .first()
            )
            if campaign is None:
                continue
            try:
                _check_startable(campaign)
            except ValidationError as refused:
                transition(
                    campaign,
                    Action.FAIL,
                    actor=None,
                    by=By.SCHEDULE,
                    failure_reason=" ".join(refused.messages),
                    finished_at=timezone.now(),
                )
                continue
            _begin(campaign, actor=None, by=By.SCHEDULE)
            started.append(campaign.pk)
    return started


def stop_all_sending(*, account: Account, actor: User | None) -> int:
    """Cancel every campaign of the account that is sending, paused or scheduled (the
    account is closing); batches in flight finish, no other starts. How many stopped."""
    stopped = 0
    active = Campaign.objects.for_account(account).filter(
        status__in=[State.SENDING, State.PAUSED, State.SCHEDULED]
    )
    for campaign in active.select_related("account").select_for_update(of=("self",)):
        transition(campaign, Action.CANCEL, actor=actor, by=By.CLOSURE, finished_at=timezone.now())
        stopped += 1
    return stopped


# -- follow-ups ---------------------------------------------------------------------------------

FOLLOW_UPS = ("unopened", "clicked")


def _free_segment_name(account: Account, name: str) -> str:
    name = name[:190]
    taken = set(
        Segment.objects.for_account(account)
        .filter(name__istartswith=name)
        .values_list("name", flat=True)
    )
    taken = {n.lower() for n in taken}
    if name.lower() not in taken:
        return name
    n = 2
    while f"{name} ({n})".lower() in taken:
        n += 1
    return f"{name} ({n})"


@transaction.atomic
def campaign_follow_up(
    *, campaign: Campaign, actor: User | None, audience: str, link: Link | None = None
) -> Campaign:
    """A draft with the campaign's content, to go to those who received it and did not
    open it (``unopened``), or to those who clicked ``link`` (``clicked``): people only,
    through a segment made for it and named so."""
    if campaign.started_at is None:
        raise ValidationError("A follow-up is for a campaign that was sent.")
    if audience not in FOLLOW_UPS:
        raise ValidationError({"audience": f"Choose one of: {', '.join(FOLLOW_UPS)}."})
    if audience == "unopened":
        if not campaign.track_opens:
            raise ValidationError(
                "Opens of this campaign were not tracked: nobody can be told apart as not "
                "having opened it."
            )
        label = f"Did not open “{campaign.name}”"
        conditions: list[dict[str, object]] = [
            {"field": "received", "op": "ever", "value": campaign.pk},
            {"field": "opened", "op": "never", "campaign": campaign.pk},
        ]
    else:
        if link is None or link.campaign_id != campaign.pk:
            raise ValidationError({"link": "Choose a link of this campaign."})
        label = f"Clicked link {link.position + 1} of “{campaign.name}”"
        conditions = [{"field": "clicked", "op": "ever", "campaign": campaign.pk, "link": link.pk}]
    segment = audiences.segment_create(
        account=campaign.account,
        actor=actor,
        name=_free_segment_name(campaign.account, label),
        description=f"Made for a follow-up of “{campaign.name}”.",
        definition={"match": "all", "conditions": conditions},
    )
    copied: dict[str, Any] = {
        f: getattr(campaign, f) for f in EDITABLE if f not in ("name", "segment", "text")
    }
    if campaign.text_is_custom:
        copied["text"] = campaign.text
    follow_up = campaign_create(
        account=campaign.account,
        actor=actor,
        name=f"{campaign.name} — follow-up"[:200],
        lists=list(campaign.lists.all()),
        segment=segment,
        **copied,
    )
    audit_log(
        account=campaign.account,
        actor=actor,
        action="campaign.follow_up",
        name=campaign.name,
        follow_up=follow_up.name,
        audience=segment.name,
    )
    return follow_up
