"""The writes of journeys: make, change, publish, start, pause, resume, close, delete;
steps edited in the draft; contacts put in or taken out by hand; events from the API.
Each one checks, writes, audits, in one transaction; pages, the API and the tasks call
these and nothing else."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import Account, User
from accounts.services import audit_log
from audiences import selectors as audience_selectors
from audiences import services as audience_services
from audiences.conditions import Invalid
from audiences.models import Segment
from campaigns import services as campaigns
from campaigns.models import Campaign, Link
from campaigns.selectors import message_problems
from campaigns.states import Action, State
from contacts import tagging
from contacts.models import AttributeDefinition, Contact, ContactList, Tag
from contacts.services import clean_attribute
from journeys import steps as stepping
from journeys import triggers
from journeys.engine import EVENT_OPS, MOVING, Entrant, enroll, events_recorded, list_ids
from journeys.models import ContactEvent, Enrollment, Journey, JourneyVersion
from journeys.starters import BY_KEY

EVENT_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
S = Journey.Status
T = Journey.Trigger
E = Enrollment.Status
EDITABLE = ("name", "trigger", "trigger_config", "entry", "goal", "exit_on_unsubscribe")


# -- checking ---------------------------------------------------------------------------------


def _owned(model: Any, account: Account, value: object, what: str) -> int:
    try:
        pk = int(str(value))
    except (TypeError, ValueError):
        raise ValidationError(f"Choose {what}.") from None
    if not model.objects.for_account(account).filter(pk=pk).exists():
        raise ValidationError(f"There is no such {what} in this account.")
    return pk


def clean_trigger(account: Account, trigger: str, config: object) -> dict[str, Any]:
    """The trigger's settings, checked against the account; ValidationError names what is
    missing or wrong."""
    if trigger not in T.values:
        raise ValidationError(f"Unknown trigger “{str(trigger)[:40]}”.")
    given: Mapping[str, Any] = config if isinstance(config, Mapping) else {}
    if trigger == T.SUBSCRIBED:
        return {"list": _owned(ContactList, account, given.get("list"), "a list")}
    if trigger == T.TAG_ADDED:
        return {"tag": _owned(Tag, account, given.get("tag"), "a tag")}
    if trigger == T.SEGMENT:
        return {"segment": _owned(Segment, account, given.get("segment"), "a segment")}
    if trigger == T.DATE:
        name = str(given.get("attribute") or "")
        definition = AttributeDefinition.objects.for_account(account).filter(name=name).first()
        if definition is None or definition.type != AttributeDefinition.Type.DATE:
            raise ValidationError("Choose a date attribute (declare one in Contacts → Attributes).")
        try:
            days = int(str(given.get("days") or 0))
        except ValueError:
            raise ValidationError("The number of days is a whole number.") from None
        if not -366 <= days <= 366:
            raise ValidationError("Days before or after the date: at most 366.")
        yearly = given.get("yearly", True) not in (False, "false", "0", "", "no")
        return {"attribute": name, "days": days, "yearly": yearly}
    if trigger == T.EVENT:
        name = str(given.get("event") or "").strip()
        if not EVENT_NAME.match(name):
            raise ValidationError(
                "Name the event: letters, digits, “_”, “.” or “-”, up to 100 (order_placed)."
            )
        return {"event": name}
    campaign = _owned(Campaign, account, given.get("campaign"), "a campaign")
    link = given.get("link") or None
    if link is not None:
        try:
            link = int(str(link))
        except ValueError:
            raise ValidationError("Choose one of the campaign's links.") from None
        if not Link.objects.filter(pk=link, campaign_id=campaign).exists():
            raise ValidationError("Choose one of the campaign's links.")
    return {"campaign": campaign, "link": link}


def clean_goal(account: Account, goal: object) -> dict[str, Any] | None:
    if not goal:
        return None
    if not isinstance(goal, Mapping):
        raise ValidationError("A goal is an event or a segment.")
    if goal.get("event"):
        name = str(goal["event"]).strip()
        if not EVENT_NAME.match(name):
            raise ValidationError("Name the goal's event: letters, digits, “_”, “.” or “-”.")
        return {"event": name}
    if goal.get("segment"):
        return {"segment": _owned(Segment, account, goal["segment"], "a segment")}
    return None


def _step_owned(model: Any, account: Account, value: object, what: str) -> int:
    """``_owned`` for a step's checker, whose refusals are ValueErrors (steps.check maps
    them to the step at fault)."""
    try:
        return _owned(model, account, value, what)
    except ValidationError as error:
        raise ValueError(" ".join(error.messages)) from None


def _step_checker(account: Account) -> Any:
    def check(step: dict[str, Any]) -> dict[str, Any]:
        kind = step["type"]
        base = {"id": step["id"], "type": kind}
        if kind == "email":
            campaign = step.get("campaign")
            if (
                not Campaign.objects.for_account(account)
                .filter(
                    pk=int(str(campaign or 0) or 0) if str(campaign or "").isdigit() else 0,
                    kind=Campaign.Kind.JOURNEY,
                )
                .exists()
            ):
                raise ValueError("This email step has no message: add the step again.")
            return {**base, "campaign": int(str(campaign))}
        if kind == "condition":
            definition = step.get("definition") or {"match": "all", "conditions": []}
            if definition.get("conditions"):
                try:
                    definition, _ = audience_selectors.checked(account, definition)
                except Invalid as invalid:
                    raise ValueError(" ".join(invalid.errors.values())) from None
            tests = []
            for test in step.get("event") or []:
                if not isinstance(test, Mapping) or test.get("op") not in EVENT_OPS:
                    raise ValueError("Each test of the event names a property and an operator.")
                name = str(test.get("property") or "")
                if not EVENT_NAME.match(name):
                    raise ValueError("Name the event's property to test.")
                tests.append({"property": name, "op": test["op"], "value": test.get("value", "")})
            if not definition.get("conditions") and not tests:
                raise ValueError("Give the condition at least one test.")
            return {**base, "definition": definition, "event": tests}
        if kind == "tag":
            action = step.get("action") or "add"
            if action not in ("add", "remove"):
                raise ValueError("A tag is added or removed.")
            tag = _step_owned(Tag, account, step.get("tag"), "tag")
            return {**base, "action": action, "tag": tag}
        if kind == "list":
            action = step.get("action") or "subscribe"
            if action not in ("subscribe", "unsubscribe"):
                raise ValueError("Subscribe to a list, or unsubscribe from it.")
            return {
                **base,
                "action": action,
                "list": _step_owned(ContactList, account, step.get("list"), "list"),
            }
        if kind == "attribute":
            name = str(step.get("name") or "")
            definition = AttributeDefinition.objects.for_account(account).filter(name=name).first()
            if definition is None:
                raise ValueError("Choose an attribute to set.")
            try:
                value = clean_attribute(definition, step.get("value"))
            except ValidationError as error:
                raise ValueError(" ".join(error.messages)) from None
            return {**base, "name": name, "value": value}
        return base  # exit

    return check


def check_steps(account: Account, steps: object) -> list[dict[str, Any]]:
    """The steps, checked against the account; StepsInvalid maps each bad step to why."""
    return stepping.check(steps, check_step=_step_checker(account))


# -- making and changing ----------------------------------------------------------------------


def _audit(journey: Journey, actor: User | None, action: str, **detail: Any) -> None:
    audit_log(
        account=journey.account,
        actor=actor,
        action=action,
        journey=journey.pk,
        name=journey.name,
        **detail,
    )


def _email_step(journey: Journey, actor: User | None, name: str, **fields: Any) -> dict[str, Any]:
    campaign = campaigns.journey_email_create(
        account=journey.account,
        actor=actor,
        name=f"{journey.name} · {name}"[:200],
        **fields,
    )
    return {"id": stepping.new_id(), "type": "email", "campaign": campaign.pk}


@transaction.atomic
def journey_create(
    *,
    account: Account,
    actor: User | None,
    name: str,
    starter: str = "",
    trigger: str = T.SUBSCRIBED,
    trigger_config: Mapping[str, Any] | None = None,
    entry: str = Journey.Entry.ONCE,
) -> Journey:
    """A draft journey, empty or from a starter (its emails made as the account's
    messages, its trigger's list, tag or segment to choose before it starts)."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the journey a name."})
    source = BY_KEY.get(starter)
    journey = Journey(
        account=account,
        name=name[:200],
        trigger=source.trigger if source else trigger,
        trigger_config=dict(source.trigger_config if source else trigger_config or {}),
        entry=source.entry if source else entry,
        goal=source.goal if source else None,
        created_by=actor,
    )
    journey.full_clean(exclude=["version", "lists", "draft"])
    journey.save()
    if source is not None:
        journey.draft = _from_starter(journey, actor, source)
        journey.save(update_fields=["draft"])
    _audit(journey, actor, "journey.created", starter=starter or "")
    return journey


def _from_starter(journey: Journey, actor: User | None, source: Any) -> list[dict[str, Any]]:
    account = journey.account
    made = [
        _email_step(journey, actor, email.name, subject=email.subject, blocks=email.blocks())
        for email in source.emails
    ]
    if source.trigger == T.SEGMENT and not journey.trigger_config.get("segment"):
        segment = audience_services.segment_create(
            account=account,
            actor=actor,
            name=_free_segment_name(account, "Inactive for 90 days"),
            definition={
                "match": "all",
                "conditions": [
                    {"field": "opened", "op": "not_in_last_days", "value": 90},
                    {"field": "created_at", "op": "more_than_days_ago", "value": 90},
                ],
            },
        )
        journey.trigger_config = {"segment": segment.pk}
        journey.save(update_fields=["trigger_config"])

    def build(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        built = []
        for item in items:
            step = {k: v for k, v in item.items() if k not in ("email", "opened_step", "tag_name")}
            step["id"] = stepping.new_id()
            if item["type"] == "email":
                step = {**made[item["email"]], "id": step["id"]}
            if "opened_step" in item:
                step["definition"] = {
                    "match": "all",
                    "conditions": [
                        {
                            "field": "opened",
                            "op": "ever",
                            "campaign": made[item["opened_step"]]["campaign"],
                        }
                    ],
                }
            if "tag_name" in item:
                tag, _ = tagging.tag_get_or_create(
                    account=account, actor=actor, name=item["tag_name"]
                )
                step["tag"] = tag.pk
            if item["type"] == "condition":
                step["yes"], step["no"] = build(item.get("yes", [])), build(item.get("no", []))
            built.append(step)
        return built

    return build(source.steps)


def _free_segment_name(account: Account, name: str) -> str:
    taken = {n.lower() for n in Segment.objects.for_account(account).values_list("name", flat=True)}
    candidate, n = name, 2
    while candidate.lower() in taken:
        candidate, n = f"{name} ({n})", n + 1
    return candidate


@transaction.atomic
def journey_update(
    *,
    journey: Journey,
    actor: User | None,
    lists: Sequence[ContactList] | None = None,
    **fields: object,
) -> Journey:
    """Change the journey's settings: its name, trigger, entry rule, goal, lists."""
    journey = _locked(journey)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be changed."))
    if journey.status == S.ENDED:
        raise ValidationError("The journey has ended: copy it to make another.")
    account = journey.account
    if "name" in fields:
        name = str(fields["name"]).strip()
        if not name:
            raise ValidationError({"name": "Give the journey a name."})
        journey.name = name[:200]
    trigger = str(fields.get("trigger", journey.trigger))
    if trigger != journey.trigger and journey.status != S.DRAFT:
        raise ValidationError(
            {"trigger": "A journey that started keeps its trigger: copy it to change that."}
        )
    if "trigger" in fields or "trigger_config" in fields:
        try:
            journey.trigger_config = clean_trigger(
                account, trigger, fields.get("trigger_config", journey.trigger_config)
            )
        except ValidationError as error:
            raise ValidationError({"trigger_config": error.messages}) from None
        journey.trigger = trigger
    if "entry" in fields:
        if fields["entry"] not in Journey.Entry.values:
            raise ValidationError({"entry": "Choose once ever, once at a time or every time."})
        if fields["entry"] != journey.entry and journey.status != S.DRAFT:
            raise ValidationError(
                {"entry": "The entry rule of a journey that started cannot change."}
            )
        journey.entry = str(fields["entry"])
    if "goal" in fields:
        try:
            journey.goal = clean_goal(account, fields["goal"])
        except ValidationError as error:
            raise ValidationError({"goal": error.messages}) from None
    if "exit_on_unsubscribe" in fields:
        journey.exit_on_unsubscribe = bool(fields["exit_on_unsubscribe"])
    journey.updated_at = timezone.now()
    journey.save()
    if lists is not None:
        journey.lists.set([cl for cl in lists if cl.account_id == account.pk])
        if journey.status in (S.LIVE, S.PAUSED, S.CLOSING):
            _email_lists(journey)
    _audit(journey, actor, "journey.updated")
    return journey


def _locked(journey: Journey) -> Journey:
    return Journey.objects.select_for_update().select_related("account").get(pk=journey.pk)


def _email_lists(journey: Journey) -> None:
    """A journey's emails go to the journey's lists (for their unsubscribe links and
    the sending claim's check)."""
    chosen = list(ContactList.objects.filter(pk__in=list_ids(journey)))
    for campaign in Campaign.objects.filter(pk__in=_all_email_ids(journey)):
        campaign.lists.set(chosen)


def _all_email_ids(journey: Journey) -> set[int]:
    found = set(stepping.email_campaigns(journey.draft or []))
    for steps in journey.versions.values_list("steps", flat=True):
        found.update(stepping.email_campaigns(steps))
    return found


# -- the draft's steps ------------------------------------------------------------------------


def _editable_draft(journey: Journey) -> Journey:
    journey = _locked(journey)
    if journey.status == S.ENDED:
        raise ValidationError("The journey has ended: its steps no longer change.")
    return journey


@transaction.atomic
def step_add(
    *,
    journey: Journey,
    actor: User | None,
    type: str,
    after: str = "",
    branch: str = "",
) -> dict[str, Any]:
    """Add a step of ``type`` to the draft after the step ``after`` (first with ""), or
    first in a condition's ``branch``. An email step gets its message, to write next."""
    journey = _editable_draft(journey)
    if type not in stepping.TYPES:
        raise ValidationError(f"Unknown step type “{str(type)[:40]}”.")
    steps = list(journey.draft or [])
    if type == "email":
        count = len(stepping.email_campaigns(steps)) + 1
        step = _email_step(journey, actor, f"Email {count}", starter="blocks-letter")
    elif type == "wait":
        step = {"id": stepping.new_id(), "type": "wait", "amount": 1, "unit": "days"}
    elif type == "condition":
        step = {
            "id": stepping.new_id(),
            "type": "condition",
            "definition": {"match": "all", "conditions": []},
            "event": [],
            "yes": [],
            "no": [],
        }
    elif type == "tag":
        step = {"id": stepping.new_id(), "type": "tag", "action": "add", "tag": None}
    elif type == "list":
        step = {"id": stepping.new_id(), "type": "list", "action": "subscribe", "list": None}
    elif type == "attribute":
        step = {"id": stepping.new_id(), "type": "attribute", "name": "", "value": ""}
    else:
        step = {"id": stepping.new_id(), "type": "exit"}
    stepping.insert(steps, step, after=after, branch=branch)
    _save_draft(journey, steps)
    return step


@transaction.atomic
def step_change(
    *, journey: Journey, actor: User | None, step_id: str, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Change one step's settings in the draft, checked at once: ValidationError names
    what is wrong and nothing changes."""
    journey = _editable_draft(journey)
    steps = list(journey.draft or [])
    found = stepping.find(steps, step_id)
    if found is None:
        raise ValidationError("That step is not in the journey any more.")
    holder, position = found
    current = holder[position]
    changed = {
        **current,
        **{k: v for k, v in settings.items() if k not in ("id", "type", "yes", "no", "campaign")},
    }
    if current["type"] == "wait":
        changed.pop("until" if "amount" in settings else "__", None)
        if settings.get("until"):
            changed.pop("amount", None)
            changed.pop("unit", None)
    try:
        if current["type"] == "wait":
            cleaned = stepping.clean_wait(changed)
        else:
            cleaned = _step_checker(journey.account)(changed)
    except ValueError as problem:
        raise ValidationError(str(problem)) from None
    if current["type"] == "condition":
        cleaned["yes"], cleaned["no"] = current.get("yes", []), current.get("no", [])
    holder[position] = cleaned
    _save_draft(journey, steps)
    return cleaned


@transaction.atomic
def step_move(*, journey: Journey, actor: User | None, step_id: str, offset: int) -> None:
    journey = _editable_draft(journey)
    steps = list(journey.draft or [])
    if stepping.move(steps, step_id, 1 if offset > 0 else -1):
        _save_draft(journey, steps)


@transaction.atomic
def step_remove(*, journey: Journey, actor: User | None, step_id: str) -> None:
    """Take a step (a condition with both its branches) out of the draft. A message no
    version uses any more is deleted with it."""
    journey = _editable_draft(journey)
    steps = list(journey.draft or [])
    removed = stepping.remove(steps, step_id)
    if removed is None:
        return
    _save_draft(journey, steps)
    published: set[int] = set()
    for version_steps in journey.versions.values_list("steps", flat=True):
        published.update(stepping.email_campaigns(version_steps))
    for campaign_id in stepping.email_campaigns([removed]):
        if campaign_id not in published:
            Campaign.objects.filter(pk=campaign_id, status=State.DRAFT).delete()


def _save_draft(journey: Journey, steps: list[dict[str, Any]]) -> None:
    journey.draft = steps
    journey.updated_at = timezone.now()
    journey.save(update_fields=["draft", "updated_at"])


def draft_changed(journey: Journey) -> bool:
    """Whether the draft differs from the version contacts are in."""
    if journey.version is None:
        return True
    return journey.draft != journey.version.steps


# -- publishing, starting, pausing ------------------------------------------------------------


def start_problems(journey: Journey) -> list[str]:
    """What stands between the journey and starting (or publishing) it, each a sentence."""
    problems = []
    try:
        clean_trigger(journey.account, journey.trigger, journey.trigger_config)
    except ValidationError as error:
        problems.append("Trigger: " + " ".join(error.messages))
    steps = journey.draft or []
    if not steps:
        problems.append("Add at least one step.")
    try:
        check_steps(journey.account, steps)
    except stepping.StepsInvalid as invalid:
        problems.extend(f"Step: {message}" for message in invalid.errors.values())
    for campaign in Campaign.objects.filter(pk__in=stepping.email_campaigns(steps)):
        problems.extend(f"“{campaign.name}”: {p}" for p in message_problems(campaign))
    if not journey.account.is_active:
        problems.append("The account is closed: nothing can be sent.")
    return problems


@dataclass(frozen=True)
class MovePlan:
    """What publishing the draft would do to those inside older versions."""

    movable: int  # at a step the new version still has: they can move
    staying: int  # at a step it no longer has: they finish their version


def move_plan(journey: Journey) -> MovePlan:
    ids = {"", *(s["id"] for s in stepping.walk(journey.draft or []))}
    inside = Enrollment.objects.filter(journey=journey, status=E.ACTIVE)
    if journey.version_id:
        inside = inside.exclude(version_id=journey.version_id)
    counts = inside.aggregate(movable=Count("pk", filter=Q(step__in=ids)), total=Count("pk"))
    # Those in the current version move too, when the draft replaces it.
    current = Enrollment.objects.filter(
        journey=journey, status=E.ACTIVE, version_id=journey.version_id
    )
    here = current.aggregate(movable=Count("pk", filter=Q(step__in=ids)), total=Count("pk"))
    movable = (counts["movable"] or 0) + (here["movable"] or 0)
    total = (counts["total"] or 0) + (here["total"] or 0)
    return MovePlan(movable=movable, staying=total - movable)


@transaction.atomic
def journey_publish(*, journey: Journey, actor: User | None, move: bool = False) -> JourneyVersion:
    """Make the draft the version new contacts enter. Those inside finish the version they
    entered, or with ``move`` go on in the new one from the same step (those at a step it
    no longer has finish theirs)."""
    journey = _locked(journey)
    if journey.status == S.ENDED:
        raise ValidationError("The journey has ended.")
    problems = start_problems(journey)
    if problems:
        raise ValidationError(problems)
    steps = check_steps(journey.account, journey.draft or [])
    number = (
        journey.versions.order_by("-number").values_list("number", flat=True).first() or 0
    ) + 1
    version = JourneyVersion.objects.create(
        journey=journey, number=number, steps=steps, created_by=actor
    )
    previous = journey.version_id
    journey.version = version
    journey.draft = steps
    journey.updated_at = timezone.now()
    journey.save(update_fields=["version", "draft", "updated_at"])
    moved = 0
    if move and previous is not None:
        ids = ["", *(s["id"] for s in stepping.walk(steps))]
        moved = (
            Enrollment.objects.filter(journey=journey, status=E.ACTIVE, step__in=ids)
            .exclude(version=version)
            .update(version=version)
        )
    if journey.status in (S.LIVE, S.CLOSING):
        _switch_emails(journey, Action.START, actor)
    elif journey.status == S.PAUSED:
        _switch_emails(journey, Action.START, actor)
        _switch_emails(journey, Action.PAUSE, actor)
    _audit(journey, actor, "journey.published", version=number, moved=moved)
    return version


def _switch_emails(journey: Journey, action: str, actor: User | None) -> None:
    chosen = list(ContactList.objects.filter(pk__in=list_ids(journey)))
    for campaign in Campaign.objects.filter(pk__in=_all_email_ids(journey)).order_by("pk"):
        if action == Action.START and campaign.status in (State.CANCELLED, State.FAILED):
            continue
        if action != Action.START and campaign.status == State.DRAFT:
            continue
        if action == Action.CANCEL and campaign.status == State.CANCELLED:
            continue
        campaigns.journey_email_switch(campaign=campaign, action=action, actor=actor, lists=chosen)


@transaction.atomic
def journey_start(*, journey: Journey, actor: User | None) -> Journey:
    """Go live: the draft becomes the first version (if it changed), its emails start,
    and the trigger is read from now on."""
    journey = _locked(journey)
    if journey.status != S.DRAFT:
        raise ValidationError(f"The journey is {journey.get_status_display().lower()}.")
    problems = start_problems(journey)
    if problems:
        raise ValidationError(problems)
    if draft_changed(journey):
        journey_publish(journey=journey, actor=actor)
        journey.refresh_from_db()
    now = timezone.now()
    journey.status = S.LIVE
    journey.started_at = now
    triggers.begin(journey, now)
    journey.save(update_fields=["status", "started_at", "scanned_at"])
    _switch_emails(journey, Action.START, actor)
    _audit(journey, actor, "journey.started")
    return journey


@transaction.atomic
def journey_pause(*, journey: Journey, actor: User | None) -> Journey:
    """Hold everyone where they are: no one enters, no step runs, no email of it goes."""
    journey = _locked(journey)
    if journey.status not in MOVING:
        raise ValidationError("Only a live journey can be paused.")
    journey.status = S.PAUSED
    journey.save(update_fields=["status"])
    _switch_emails(journey, Action.PAUSE, actor)
    _audit(journey, actor, "journey.paused")
    return journey


@transaction.atomic
def journey_resume(*, journey: Journey, actor: User | None) -> Journey:
    """Live again: the waits that ended during the pause run now; the trigger is read
    from where it was left (who subscribed during the pause enters)."""
    journey = _locked(journey)
    if journey.status != S.PAUSED:
        raise ValidationError("Only a paused journey can be resumed.")
    if not journey.account.is_active:
        raise ValidationError("The account is closed: nothing can be sent.")
    journey.status = S.LIVE
    journey.save(update_fields=["status"])
    _switch_emails(journey, Action.RESUME, actor)
    _audit(journey, actor, "journey.resumed")
    return journey


INSIDE_CHOICES = {
    "finish": "Let those inside finish; no one new enters",
    "remove": "Take everyone out now",
}


@transaction.atomic
def journey_close(*, journey: Journey, actor: User | None, inside: str) -> Journey:
    """End the journey: with "finish", no one new enters and it ends when the last one
    inside is through; with "remove", everyone inside leaves now and it ends."""
    journey = _locked(journey)
    if inside not in INSIDE_CHOICES:
        raise ValidationError("Say what happens to the contacts inside.")
    if journey.status in (S.DRAFT, S.ENDED):
        raise ValidationError("Only a journey that started can be ended.")
    if inside == "remove":
        removed = _remove_all(journey, actor)
        _end(journey, actor, removed=removed)
    else:
        journey.status = S.CLOSING
        journey.save(update_fields=["status"])
        _switch_emails(journey, Action.START, actor)  # resumed, if it was paused
        _audit(journey, actor, "journey.updated", closed_to_new=True)
        finish_if_empty(journey.pk)
    return journey


def _remove_all(journey: Journey, actor: User | None) -> int:
    who = actor.email if actor else "Missive"
    return Enrollment.objects.filter(journey=journey, status=E.ACTIVE).update(
        status=E.EXITED,
        outcome=f"Taken out when the journey ended ({who}).",
        finished_at=timezone.now(),
        due_at=None,
    )


def _end(journey: Journey, actor: User | None, **detail: object) -> None:
    journey.status = S.ENDED
    journey.save(update_fields=["status"])
    _switch_emails(journey, Action.CANCEL, actor)
    _audit(journey, actor, "journey.ended", **detail)


def finish_if_empty(journey_id: int) -> bool:
    """End a journey closed to new contacts once no one is inside."""
    with transaction.atomic():
        journey = (
            Journey.objects.select_for_update()
            .select_related("account")
            .filter(pk=journey_id)
            .first()
        )
        if journey is None or journey.status != S.CLOSING:
            return False
        if Enrollment.objects.filter(journey=journey, status=E.ACTIVE).exists():
            return False
        _end(journey, None)
    return True


@transaction.atomic
def journey_delete(*, journey: Journey, actor: User | None, inside: str = "") -> None:
    """Delete the journey and its history of who went through. With contacts inside, the
    caller must say "remove" (they leave now, nothing more is sent); its emails' reports
    stay with their campaigns."""
    journey = _locked(journey)
    active = Enrollment.objects.filter(journey=journey, status=E.ACTIVE).count()
    if active and inside != "remove":
        raise ValidationError(
            f"{active} contact{'s are' if active != 1 else ' is'} inside: say to take them out, "
            "or end the journey and let them finish first."
        )
    if journey.status != S.ENDED and journey.status != S.DRAFT:
        _remove_all(journey, actor)
        _switch_emails(journey, Action.CANCEL, actor)
    for campaign in Campaign.objects.filter(pk__in=_all_email_ids(journey), status=State.DRAFT):
        campaign.delete()
    _audit(journey, actor, "journey.deleted", removed=active)
    Enrollment.objects.filter(journey=journey).delete()
    journey.delete()


# -- contacts in and out by hand --------------------------------------------------------------


@transaction.atomic
def contacts_enroll(
    *, journey: Journey, actor: User | None, contacts: Sequence[Contact]
) -> list[int]:
    """Put contacts in the live journey by hand, by its entry rule. Returns the new
    enrollments' ids (empty for those the rule keeps out)."""
    if journey.status != S.LIVE:
        raise ValidationError("Contacts enter only a live journey.")
    stamp = f"hand:{timezone.now().timestamp():.6f}"
    made = enroll(
        journey, [Entrant(c.pk, stamp) for c in contacts if c.account_id == journey.account_id]
    )
    if made:
        _audit(journey, actor, "journey.enrolled", count=len(made))
    return made


@transaction.atomic
def enrollment_remove(*, enrollment: Enrollment, actor: User | None) -> Enrollment:
    """Take one contact out of the journey now: nothing more of it is sent to them (an
    email already queued still goes, as a campaign's would)."""
    locked = (
        Enrollment.objects.select_for_update()
        .select_related("journey__account")
        .get(pk=enrollment.pk)
    )
    if locked.status != E.ACTIVE:
        return locked
    who = actor.email if actor else "the API"
    locked.status = E.EXITED
    locked.outcome = f"Taken out by {who}."
    locked.finished_at = timezone.now()
    locked.due_at = None
    locked.save(update_fields=["status", "outcome", "finished_at", "due_at"])
    _audit(locked.journey, actor, "journey.removed", count=1, contact=locked.contact_id)
    return locked


# -- events from the API ----------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    event: ContactEvent
    created: bool  # False: the same Idempotency-Key was recorded before
    enrolled: int


MAX_PROPERTIES_BYTES = 16_384


def clean_properties(properties: object) -> dict[str, Any]:
    if properties in (None, ""):
        return {}
    if not isinstance(properties, Mapping):
        raise ValidationError({"properties": "Properties are an object of names and values."})
    if len(json.dumps(properties, default=str)) > MAX_PROPERTIES_BYTES:
        raise ValidationError(
            {"properties": f"Properties take at most {MAX_PROPERTIES_BYTES} bytes."}
        )
    for key in properties:
        if not EVENT_NAME.match(str(key)) or "." in str(key) or "-" in str(key):
            raise ValidationError(
                {"properties": f"“{str(key)[:40]}” is not a property name: letters, digits and _."}
            )
    return dict(properties)


def event_record(
    *,
    account: Account,
    contact: Contact,
    name: str,
    properties: object = None,
    occurred_at: dt.datetime | None = None,
    idempotency_key: str | None = None,
) -> Recorded:
    """Record an event of a contact, start the journeys it triggers and end those whose
    goal it is; the same ``idempotency_key`` again answers the first event and does
    nothing else."""
    name = name.strip()
    if not EVENT_NAME.match(name):
        raise ValidationError(
            {"name": "Name the event: letters, digits, “_”, “.” or “-”, up to 100."}
        )
    cleaned = clean_properties(properties)
    if contact.account_id != account.pk:
        raise ValidationError({"contact": "No such contact."})
    key = (idempotency_key or "").strip()[:200] or None
    if key is not None:
        found = ContactEvent.objects.for_account(account).filter(idempotency_key=key).first()
        if found is not None:
            return Recorded(event=found, created=False, enrolled=0)
    try:
        with transaction.atomic():
            event = ContactEvent.objects.create(
                account=account,
                contact=contact,
                name=name,
                properties=cleaned,
                occurred_at=occurred_at or timezone.now(),
                idempotency_key=key,
            )
            enrolled = 0
            for journey in Journey.objects.for_account(account).filter(
                status=S.LIVE, trigger=T.EVENT, trigger_config__event=name
            ):
                enrolled += len(
                    enroll(journey, [Entrant(contact.pk, f"event:{event.pk}", cleaned)])
                )
            events_recorded(account, [event])
    except IntegrityError:
        # The same key posted at the same moment: the other request recorded it.
        found = ContactEvent.objects.for_account(account).filter(idempotency_key=key).first()
        if found is None:
            raise
        return Recorded(event=found, created=False, enrolled=0)
    return Recorded(event=event, created=True, enrolled=enrolled)
