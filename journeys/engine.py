"""The enrollment ledger, moved on: who enters, and each step run once for each of them.

- ``enroll`` is the one way in, whatever the trigger (a subscription, a tag, a segment, a
  date, an event from the API, a click, a person's choice): one ``INSERT … ON CONFLICT
  DO NOTHING``, so the same trigger read twice enrolls once, and the entry rule (once
  ever, once at a time, every time) is a unique index, not a check that two workers
  could both pass.
- ``advance`` takes a batch of a journey's due enrollments with ``FOR UPDATE SKIP
  LOCKED`` and runs their steps in the same transaction as every row those steps write:
  the email deliveries (through ``campaigns.sending.add_deliveries``), tags, lists,
  attributes, the new positions and the step counts. Nothing leaves the database here,
  so the row lock is the lease: a worker killed mid-batch rolls the whole batch back and
  the next worker takes it whole, and a step is never skipped nor run twice. Sending
  the emails is the campaign pipeline's work, with its own claim, lease and sweeper: a
  journey's message is repeated at most as a campaign's would be.
- An enrollment rests at the start, at a wait (until ``due_at``), or at a step that
  could not run yet (``due_at`` later); every other step runs on without rest. Whoever
  is subscribed to none of the journey's lists (when it says so), or met its goal,
  leaves before the next step.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from accounts.tasking import enqueue
from audiences import selectors as audiences
from audiences.conditions import Invalid
from campaigns.models import Campaign
from campaigns.sending import add_deliveries
from contacts import services as contacts
from contacts import tagging
from contacts.models import AttributeDefinition, Contact, ContactList, Subscription, Tag
from journeys import steps as stepping
from journeys.models import ContactEvent, Enrollment, Journey, JourneyVersion

logger = logging.getLogger(__name__)

E = Enrollment.Status
# A journey whose enrollments move on: live, or closed to new contacts.
MOVING = (Journey.Status.LIVE, Journey.Status.CLOSING)
# How long a step that could not run (a deleted list, a condition that cannot be read)
# waits before it is tried again.
HOLD = dt.timedelta(hours=1)


def list_ids(journey: Journey) -> list[int]:
    """The lists whose subscribers the journey's emails may go to: those chosen, else the
    list that starts it (a welcome series is its list's), else every list of the
    account."""
    chosen = list(journey.lists.values_list("pk", flat=True))
    if chosen:
        return chosen
    if journey.trigger == Journey.Trigger.SUBSCRIBED and journey.trigger_config.get("list"):
        return [int(journey.trigger_config["list"])]
    return list(ContactList.objects.for_account(journey.account).values_list("pk", flat=True))


# -- entering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entrant:
    contact_id: int
    # What made them enter, unique per trigger occurrence (ignored for "once ever").
    key: str
    context: Mapping[str, object] | None = None


_ENROLL_SQL = """
INSERT INTO journeys_enrollment
    (journey_id, version_id, contact_id, entry_key, single, status, step, due_at,
     context, history, entered_at, outcome)
SELECT %(journey)s, %(version)s, v.contact, v.key, %(single)s, %(active)s, '', %(now)s,
    coalesce(v.context::jsonb, '{}'::jsonb), '[]'::jsonb, %(now)s, ''
FROM unnest(%(contacts)s::bigint[], %(keys)s::text[], %(contexts)s::text[])
    AS v(contact, key, context)
JOIN contacts_contact AS c ON c.id = v.contact AND c.account_id = %(account)s
WHERE NOT %(subscribed_only)s OR EXISTS (
    SELECT 1 FROM contacts_subscription AS s
    WHERE s.contact_id = c.id AND s.status = %(subscribed)s
      AND s.contact_list_id = ANY(%(lists)s))
ON CONFLICT DO NOTHING
RETURNING id
"""


def enroll(
    journey: Journey, entrants: Iterable[Entrant], *, now: dt.datetime | None = None
) -> list[int]:
    """Put ``entrants`` (the account's contacts only) in the live ``journey``, by its entry
    rule; when it says so, only those subscribed to one of its lists. Returns the ids of
    the enrollments made now; the advance task is asked for them once this commits."""
    if journey.status != Journey.Status.LIVE or journey.version_id is None:
        return []
    if not journey.account.is_active:
        return []
    rows = list(entrants)
    if not rows:
        return []
    once = journey.entry == Journey.Entry.ONCE
    with connection.cursor() as cursor:
        cursor.execute(
            _ENROLL_SQL,
            {
                "journey": journey.pk,
                "version": journey.version_id,
                "single": journey.entry != Journey.Entry.EVERY_TIME,
                "active": E.ACTIVE.value,
                "now": now or timezone.now(),
                "contacts": [r.contact_id for r in rows],
                "keys": ["once" if once else r.key[:200] for r in rows],
                "contexts": [json.dumps(dict(r.context)) if r.context else None for r in rows],
                "account": journey.account_id,
                "subscribed_only": journey.exit_on_unsubscribe,
                "subscribed": Subscription.Status.SUBSCRIBED.value,
                "lists": list_ids(journey),
            },
        )
        made = [row[0] for row in cursor.fetchall()]
    if made:
        enqueue("journeys.advance", journey.pk)
    return made


# -- moving on --------------------------------------------------------------------------------

_CLAIM_SQL = """
SELECT e.id, e.version_id, e.contact_id, e.step, e.context, e.entered_at
FROM journeys_enrollment AS e
WHERE e.journey_id = %(journey)s AND e.status = %(active)s AND e.due_at <= %(now)s
ORDER BY e.due_at, e.id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""

_CONTACTS_SQL = """
SELECT c.id, c.email, c.attributes,
    EXISTS (
        SELECT 1 FROM contacts_subscription AS s
        WHERE s.contact_id = c.id AND s.status = %(subscribed)s
          AND s.contact_list_id = ANY(%(lists)s)) AS subscribed,
    EXISTS (
        SELECT 1 FROM contacts_suppression AS x
        WHERE x.email_sha256 = encode(sha256(convert_to(c.email, 'UTF8')), 'hex')
          AND (x.account_id = %(account)s OR x.account_id IS NULL)) AS suppressed
FROM contacts_contact AS c
WHERE c.id = ANY(%(ids)s)
"""

_SAVE_SQL = """
UPDATE journeys_enrollment AS e
SET step = v.step, status = v.status, due_at = v.due, finished_at = v.finished,
    outcome = v.outcome, history = e.history || v.history::jsonb
FROM unnest(%(ids)s::bigint[], %(steps)s::text[], %(statuses)s::text[],
            %(dues)s::timestamptz[], %(finished)s::timestamptz[], %(outcomes)s::text[],
            %(histories)s::text[])
    AS v(id, step, status, due, finished, outcome, history)
WHERE e.id = v.id
"""

_TALLY_SQL = """
INSERT INTO journeys_steptally (journey_id, step, reached)
SELECT %(journey)s, v.step, v.reached
FROM unnest(%(steps)s::text[], %(counts)s::bigint[]) AS v(step, reached)
ON CONFLICT (journey_id, step)
DO UPDATE SET reached = journeys_steptally.reached + EXCLUDED.reached
"""

_GOAL_EVENT_SQL = """
SELECT v.id FROM unnest(%(ids)s::bigint[], %(contacts)s::bigint[], %(entered)s::timestamptz[])
    AS v(id, contact, entered)
WHERE EXISTS (
    SELECT 1 FROM journeys_contactevent AS ev
    WHERE ev.contact_id = v.contact AND ev.account_id = %(account)s
      AND ev.name = %(name)s AND ev.occurred_at >= v.entered)
"""


@dataclass
class _Moving:
    """An enrollment while its batch moves it."""

    id: int
    version: int
    contact: int
    step: str
    context: dict[str, Any]
    entered_at: dt.datetime
    status: str = E.ACTIVE
    due: dt.datetime | None = None
    finished: dt.datetime | None = None
    outcome: str = ""
    history: list[list[str]] = field(default_factory=list)

    def finish(self, status: str, outcome: str, now: dt.datetime) -> None:
        self.status, self.outcome, self.finished, self.due = status, outcome, now, None


@dataclass(frozen=True)
class AdvanceReport:
    claimed: int
    queued: int  # emails queued for sending
    more: bool  # due enrollments remain


@dataclass
class _Batch:
    journey: Journey
    now: dt.datetime
    nodes: dict[int, dict[str, stepping.Node]]
    people: dict[int, tuple[str, dict[str, object], bool, bool]]
    tallies: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    deliveries: dict[int, list[tuple[int, int, Mapping[str, object] | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    campaigns: set[int] = field(default_factory=set)


def _attributes(value: object) -> dict[str, object]:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def advance(
    journey_id: int, *, limit: int | None = None, now: dt.datetime | None = None
) -> AdvanceReport:
    """Move one batch of the journey's due enrollments as far as their steps go now."""
    limit = limit or settings.MISSIVE_JOURNEY_BATCH
    now = now or timezone.now()
    queued = 0
    with transaction.atomic():
        journey = (
            Journey.objects.select_related("account")
            .filter(pk=journey_id, status__in=MOVING)
            .first()
        )
        if journey is None or not journey.account.is_active:
            return AdvanceReport(claimed=0, queued=0, more=False)
        with connection.cursor() as cursor:
            cursor.execute(
                _CLAIM_SQL,
                {"journey": journey.pk, "active": E.ACTIVE.value, "now": now, "limit": limit},
            )
            claimed = [
                _Moving(
                    id=i,
                    version=v,
                    contact=c,
                    step=s,
                    context=_attributes(ctx),
                    entered_at=entered,
                )
                for i, v, c, s, ctx, entered in cursor.fetchall()
            ]
        if not claimed:
            return AdvanceReport(claimed=0, queued=0, more=False)
        batch = _Batch(
            journey=journey,
            now=now,
            nodes=_versions({m.version for m in claimed}),
            people=_people(journey, [m.contact for m in claimed]),
        )
        moving = _leave_or_stay(batch, claimed)
        _run(batch, moving)
        _save(journey, claimed, batch.tallies)
        for campaign_id, rows in batch.deliveries.items():
            added = add_deliveries(campaign_id, rows)
            if added:
                queued += added
                enqueue("campaigns.send_batch", campaign_id)
    more = len(claimed) >= limit or due_exists(journey_id, now)
    return AdvanceReport(claimed=len(claimed), queued=queued, more=more)


def due_exists(journey_id: int, now: dt.datetime | None = None) -> bool:
    return Enrollment.objects.filter(
        journey_id=journey_id, status=E.ACTIVE, due_at__lte=now or timezone.now()
    ).exists()


def _versions(ids: set[int]) -> dict[int, dict[str, stepping.Node]]:
    return {
        version.pk: stepping.index(version.steps)
        for version in JourneyVersion.objects.filter(pk__in=ids)
    }


def _people(
    journey: Journey, contact_ids: list[int]
) -> dict[int, tuple[str, dict[str, object], bool, bool]]:
    """Each contact's address, attributes, whether they are subscribed to one of the
    journey's lists and whether they are suppressed."""
    with connection.cursor() as cursor:
        cursor.execute(
            _CONTACTS_SQL,
            {
                "subscribed": Subscription.Status.SUBSCRIBED.value,
                "lists": list_ids(journey),
                "account": journey.account_id,
                "ids": contact_ids,
            },
        )
        return {
            row[0]: (row[1], _attributes(row[2]), bool(row[3]), bool(row[4]))
            for row in cursor.fetchall()
        }


def _goal_met(batch: _Batch, moving: list[_Moving]) -> set[int]:
    goal = batch.journey.goal or {}
    if not moving or not goal:
        return set()
    if goal.get("event"):
        with connection.cursor() as cursor:
            cursor.execute(
                _GOAL_EVENT_SQL,
                {
                    "ids": [m.id for m in moving],
                    "contacts": [m.contact for m in moving],
                    "entered": [m.entered_at for m in moving],
                    "account": batch.journey.account_id,
                    "name": str(goal["event"]),
                },
            )
            return {row[0] for row in cursor.fetchall()}
    if goal.get("segment"):
        segment = batch.journey.account.segments.filter(pk=goal["segment"]).first()
        if segment is None:
            return set()
        try:
            matching = set(
                audiences.matching(batch.journey.account, segment.definition, now=batch.now)
                .filter(pk__in=[m.contact for m in moving])
                .values_list("pk", flat=True)
            )
        except Invalid:
            return set()
        return {m.id for m in moving if m.contact in matching}
    return set()


def _leave_or_stay(batch: _Batch, claimed: list[_Moving]) -> list[_Moving]:
    """Who leaves before their next step: erased, unsubscribed or suppressed, or whose
    goal is met. The others, each with the step to run next."""
    staying = []
    for m in claimed:
        person = batch.people.get(m.contact)
        if person is None:
            m.finish(E.EXITED, "The contact was deleted.", batch.now)
        elif person[3]:
            m.finish(E.EXITED, "Suppressed.", batch.now)
        elif batch.journey.exit_on_unsubscribe and not person[2]:
            m.finish(E.EXITED, "Unsubscribed from the journey's lists.", batch.now)
        elif m.version not in batch.nodes or m.step not in batch.nodes[m.version]:
            m.finish(E.EXITED, "Their step no longer exists.", batch.now)
        else:
            staying.append(m)
    met = _goal_met(batch, staying)
    for m in staying:
        if m.id in met:
            m.finish(E.COMPLETED, "Goal met.", batch.now)
    return [m for m in staying if m.status == E.ACTIVE]


def _run(batch: _Batch, moving: list[_Moving]) -> None:
    """Run steps for each enrollment until it rests (a wait, a held step) or ends."""
    pending: dict[tuple[int, str], list[_Moving]] = defaultdict(list)

    def go(m: _Moving, target: str | None) -> None:
        if target is None:
            m.finish(E.COMPLETED, "Reached the end.", batch.now)
        else:
            pending[(m.version, target)].append(m)

    for m in moving:
        node = batch.nodes[m.version][m.step]
        if m.step == "" or node.step.get("type") == "wait":
            go(m, node.next)  # entered, or their wait is over
        else:
            pending[(m.version, m.step)].append(m)  # held before: run it now
    for _round in range(2 * stepping.MAX_STEPS + 2):
        if not pending:
            return
        groups, pending = pending, defaultdict(list)
        for (version, step_id), group in groups.items():
            node = batch.nodes[version][step_id]
            for m in group:
                m.step = step_id
            outcome = _step(batch, node, group)
            for m, target in outcome:
                if target is _REST:
                    continue
                go(m, target)
    raise RuntimeError("A journey's steps went round without end.")  # pragma: no cover


_REST: Any = object()  # a step's answer for an enrollment that rests where it is


def _arrive(batch: _Batch, step_id: str, group: list[_Moving]) -> None:
    batch.tallies[step_id] += len(group)
    stamp = batch.now.isoformat()
    for m in group:
        m.history.append([step_id, stamp])


def _hold(batch: _Batch, group: list[_Moving], reason: str) -> list[tuple[_Moving, Any]]:
    logger.warning("Journey %s: %s", batch.journey.pk, reason)
    for m in group:
        m.due = batch.now + HOLD
    return [(m, _REST) for m in group]


def _step(batch: _Batch, node: stepping.Node, group: list[_Moving]) -> list[tuple[_Moving, Any]]:
    """Run one step for a group of enrollments; each with where it goes next."""
    step = node.step
    kind = step.get("type")
    account = batch.journey.account
    ids = [m.contact for m in group]
    if kind == "wait":
        _arrive(batch, step["id"], group)
        for m in group:
            m.due = stepping.wait_until(
                step, batch.now, account.time_zone, batch.people[m.contact][1]
            )
        return [(m, _REST) for m in group]
    if kind == "email":
        campaign_id = int(step["campaign"])
        if campaign_id not in batch.campaigns:
            if not Campaign.objects.filter(
                pk=campaign_id, account=account, kind=Campaign.Kind.JOURNEY
            ).exists():
                return _hold(batch, group, f"the email of step {step['id']} is gone")
            batch.campaigns.add(campaign_id)
        _arrive(batch, step["id"], group)
        batch.deliveries[campaign_id].extend((m.contact, m.id, m.context or None) for m in group)
        return [(m, node.next) for m in group]
    if kind == "condition":
        try:
            holds = _condition(batch, step, group)
        except Invalid:
            return _hold(batch, group, f"the condition of step {step['id']} cannot be read")
        _arrive(batch, step["id"], group)
        return [(m, node.yes if m.id in holds else node.no) for m in group]
    if kind == "exit":
        _arrive(batch, step["id"], group)
        for m in group:
            m.finish(E.EXITED, "Left at an exit step.", batch.now)
        return [(m, _REST) for m in group]
    try:
        _act(account, step, ids)
    except (ValidationError, LookupError) as problem:
        return _hold(batch, group, f"step {step['id']} cannot run: {problem}")
    _arrive(batch, step["id"], group)
    return [(m, node.next) for m in group]


def _act(account: Account, step: Mapping[str, Any], contact_ids: list[int]) -> None:
    """A step that changes the contacts: a tag, a list, an attribute."""
    kind = step["type"]
    selection = Contact.objects.for_account(account).filter(pk__in=contact_ids)
    how = "journey"
    if kind == "tag":
        tag = Tag.objects.for_account(account).get(pk=step["tag"])
        change = tagging.tag_contacts if step.get("action") != "remove" else tagging.untag_contacts
        change(account=account, actor=None, tag=tag, contacts=selection, how=how)
    elif kind == "list":
        contact_list = ContactList.objects.for_account(account).get(pk=step["list"])
        if step.get("action") == "unsubscribe":
            contacts.unsubscribe(
                account=account,
                actor=None,
                contact_ids=contact_ids,
                list_ids=[contact_list.pk],
                how=how,
            )
        else:
            for contact in selection:
                try:
                    contacts.subscription_subscribe(
                        contact=contact,
                        contact_list=contact_list,
                        source=Subscription.Source.MANUAL,
                        legal_basis=str(step.get("legal_basis") or Subscription.LegalBasis.CONSENT),
                        consent_text="Subscribed by a journey step.",
                    )
                except ValidationError:
                    continue  # suppressed, or unsubscribed from it: never put back
    elif kind == "attribute":
        definition = AttributeDefinition.objects.for_account(account).get(name=step["name"])
        contacts.contacts_set_attribute(
            account=account,
            actor=None,
            contact_ids=contact_ids,
            definition=definition,
            value=step.get("value"),
            how=how,
        )


def _condition(batch: _Batch, step: Mapping[str, Any], group: list[_Moving]) -> set[int]:
    """The enrollments for which the condition holds: its segment definition (when it has
    conditions) and its tests of the event's properties."""
    holding = {m.id for m in group}
    definition = step.get("definition") or {}
    if definition.get("conditions"):
        matching = set(
            audiences.matching(batch.journey.account, definition, now=batch.now)
            .filter(pk__in=[m.contact for m in group])
            .values_list("pk", flat=True)
        )
        holding = {m.id for m in group if m.contact in matching}
    tests = step.get("event") or []
    if tests:
        holding = {m.id for m in group if m.id in holding and event_matches(tests, m.context)}
    return holding


EVENT_OPS = {
    "exists": "is present",
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "gt": "is more than",
    "lt": "is less than",
}


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def event_matches(tests: Sequence[Mapping[str, Any]], properties: Mapping[str, Any]) -> bool:
    """Whether the event's ``properties`` pass every test ({"property", "op", "value"})."""
    for test in tests:
        value = properties.get(str(test.get("property")))
        op, wanted = test.get("op"), test.get("value")
        if op == "exists":
            ok = value is not None
        elif op in ("gt", "lt"):
            have, limit = _number(value), _number(wanted)
            ok = (
                have is not None
                and limit is not None
                and (have > limit if op == "gt" else have < limit)
            )
        elif op == "contains":
            ok = value is not None and str(wanted).lower() in str(value).lower()
        else:
            same = value is not None and str(value).lower() == str(wanted).lower()
            ok = same if op == "equals" else not same
        if not ok:
            return False
    return True


def _save(journey: Journey, claimed: list[_Moving], tallies: Mapping[str, int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _SAVE_SQL,
            {
                "ids": [m.id for m in claimed],
                "steps": [m.step for m in claimed],
                "statuses": [str(m.status) for m in claimed],
                "dues": [m.due if m.status == E.ACTIVE else None for m in claimed],
                "finished": [m.finished for m in claimed],
                "outcomes": [m.outcome for m in claimed],
                "histories": [json.dumps(m.history) for m in claimed],
            },
        )
        counted = [(step, n) for step, n in tallies.items() if n]
        if counted:
            cursor.execute(
                _TALLY_SQL,
                {
                    "journey": journey.pk,
                    "steps": [s for s, _ in counted],
                    "counts": [n for _, n in counted],
                },
            )


# -- the goal, as soon as an event says it is met --------------------------------------------


def events_recorded(account: Account, events: Sequence[ContactEvent]) -> int:
    """End, goal met, the enrollments whose goal is one of these events, entered before
    it happened. Returns how many ended. (A row an advance holds is waited for, then
    ended only if still in the journey.)"""
    live = Journey.objects.for_account(account).filter(status=Journey.Status.LIVE)
    by_name: dict[str, list[int]] = defaultdict(list)
    for journey_id, goal in live.values_list("pk", "goal"):
        if isinstance(goal, dict) and goal.get("event"):
            by_name[str(goal["event"])].append(journey_id)
    ended = 0
    now = timezone.now()
    for event in events:
        journeys = by_name.get(event.name)
        if not journeys:
            continue
        ended += Enrollment.objects.filter(
            journey_id__in=journeys,
            contact_id=event.contact_id,
            status=E.ACTIVE,
            entered_at__lte=event.occurred_at,
        ).update(status=E.COMPLETED, outcome="Goal met.", finished_at=now, due_at=None)
    return ended
