"""What the journey pages say: a trigger, a goal, a step or a condition in a sentence, and
the steps as cards numbered in reading order, each with its counts.

Names (of lists, tags, segments, campaigns) are read once per page into ``Names``; a
step whose settings are incomplete or refer to something deleted still reads as a
sentence that says what is missing, never as an error page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from accounts.models import Account
from audiences.conditions import context_for as condition_context
from audiences.conditions import fields_for
from audiences.models import Segment
from campaigns.models import Campaign, Link
from contacts.models import AttributeDefinition, ContactList, Tag
from journeys import steps as stepping
from journeys.engine import EVENT_OPS
from journeys.models import Journey
from journeys.selectors import Row, StepFigures

T = Journey.Trigger


def as_id(value: object) -> int | None:
    """An id as stored in a step or a trigger's settings, or None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _ids_in(definition: object, key: str) -> Iterable[int]:
    """The ids a segment definition names under ``key`` (its campaigns, say)."""
    if not isinstance(definition, Mapping):
        return
    for item in definition.get("conditions") or []:
        if isinstance(item, Mapping) and "conditions" in item:
            yield from _ids_in(item, key)
        elif isinstance(item, Mapping):
            found = as_id(item.get(key))
            if found is not None:
                yield found


@dataclass
class Names:
    """The names a page shows for the ids it finds in journeys and steps."""

    lists: dict[int, str] = field(default_factory=dict)
    tags: dict[int, str] = field(default_factory=dict)
    segments: dict[int, str] = field(default_factory=dict)
    campaigns: dict[int, str] = field(default_factory=dict)
    links: dict[int, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls, account: Account, *, campaigns: Iterable[int] = (), links: Iterable[int] = ()
    ) -> Names:
        campaign_ids = {pk for pk in campaigns if pk}
        link_ids = {pk for pk in links if pk}
        return cls(
            lists=dict(ContactList.objects.for_account(account).values_list("pk", "name")),
            tags=dict(Tag.objects.for_account(account).values_list("pk", "name")),
            segments=dict(Segment.objects.for_account(account).values_list("pk", "name")),
            campaigns=dict(
                Campaign.objects.for_account(account)
                .filter(pk__in=campaign_ids)
                .values_list("pk", "name")
            )
            if campaign_ids
            else {},
            links=dict(
                Link.objects.for_account(account).filter(pk__in=link_ids).values_list("pk", "url")
            )
            if link_ids
            else {},
            attributes={
                d.name: d.label or d.name for d in AttributeDefinition.objects.for_account(account)
            },
        )

    @classmethod
    def for_journeys(cls, account: Account, journeys: Sequence[Journey]) -> Names:
        campaigns, links = [], []
        for journey in journeys:
            config = journey.trigger_config or {}
            if journey.trigger == T.CLICKED:
                campaigns.append(as_id(config.get("campaign")) or 0)
                links.append(as_id(config.get("link")) or 0)
        return cls.load(account, campaigns=campaigns, links=links)


def _quoted(name: str | None, missing: str) -> str:
    return f"“{name}”" if name else missing


def trigger_summary(journey: Journey, names: Names) -> str:
    config: Mapping[str, Any] = journey.trigger_config or {}
    if journey.trigger == T.SUBSCRIBED:
        found = names.lists.get(as_id(config.get("list")) or 0)
        return f"Subscribes to {_quoted(found, 'a list (choose which)')}"
    if journey.trigger == T.TAG_ADDED:
        found = names.tags.get(as_id(config.get("tag")) or 0)
        return f"Gets the tag {_quoted(found, '(choose which)')}"
    if journey.trigger == T.SEGMENT:
        found = names.segments.get(as_id(config.get("segment")) or 0)
        return f"Enters the segment {_quoted(found, '(choose which)')}"
    if journey.trigger == T.DATE:
        attribute = str(config.get("attribute") or "")
        if not attribute:
            return "A date of theirs (choose which)"
        label = names.attributes.get(attribute, attribute)
        try:
            days = int(str(config.get("days") or 0))
        except ValueError:
            days = 0
        when = (
            "On"
            if days == 0
            else f"{abs(days)} day{'s' if abs(days) != 1 else ''} "
            + ("before" if days < 0 else "after")
        )
        often = "every year" if config.get("yearly", True) else "once"
        return f"{when} their {label}, {often}"
    if journey.trigger == T.EVENT:
        event = str(config.get("event") or "")
        return f"The event {_quoted(event, '(name it)')} arrives through the API"
    campaign = names.campaigns.get(as_id(config.get("campaign")) or 0)
    link = names.links.get(as_id(config.get("link")) or 0)
    where = _quoted(campaign, "a campaign (choose which)")
    return f"Clicks {link} in {where}" if link else f"Clicks a link in {where}"


def goal_summary(journey: Journey, names: Names) -> str:
    goal = journey.goal or {}
    if goal.get("event"):
        return f"Done when the event “{goal['event']}” arrives"
    if goal.get("segment"):
        found = names.segments.get(as_id(goal["segment"]) or 0)
        return f"Done once in the segment {_quoted(found, '(deleted)')}"
    return "No goal: each contact goes to the end"


# -- steps ------------------------------------------------------------------------------------


def _engagement(condition: Mapping[str, Any], names: Names, numbers: Mapping[int, int]) -> str:
    verb = "opened" if condition.get("field") == "opened" else "clicked"
    campaign = as_id(condition.get("campaign"))
    if campaign is None:
        what = "an email"
    elif campaign in numbers:
        what = f"the email of step {numbers[campaign]}"
    else:
        what = _quoted(names.campaigns.get(campaign), "an email that no longer exists")
    link = names.links.get(as_id(condition.get("link")) or 0)
    if link:
        what += f" (the link {link})"
    op, value = condition.get("op"), condition.get("value")
    if op == "never":
        return f"never {verb} {what}"
    if op == "in_last_days":
        return f"{verb} {what} in the last {value} days"
    if op == "not_in_last_days":
        return f"has not {verb} {what} in the last {value} days"
    return f"{verb} {what}"


def _one_condition(
    condition: Mapping[str, Any], names: Names, numbers: Mapping[int, int], specs: Mapping
) -> str:
    name = condition.get("field")
    if name in ("opened", "clicked"):
        return _engagement(condition, names, numbers)
    if name == "tag":
        tag = _quoted(names.tags.get(as_id(condition.get("value")) or 0), "(deleted)")
        return f"has the tag {tag}" if condition.get("op") == "has" else f"has not the tag {tag}"
    spec = specs.get(name)
    label = spec.label if spec else str(name)
    op = spec.ops.get(condition.get("op")) if spec else None
    words = op.label if op else str(condition.get("op") or "")
    value = condition.get("value")
    if name == "list":
        value = names.lists.get(as_id(value) or 0, value)
    if isinstance(value, list):
        value = " and ".join(str(v) for v in value)
    if value is None or value == "":
        return f"{label} {words}"
    if "…" in words:
        return f"{label} {words.replace('…', str(value))}"
    return f"{label} {words} “{value}”"


def _group(
    group: Mapping[str, Any],
    names: Names,
    numbers: Mapping[int, int],
    specs: Mapping,
    nested: bool = False,
) -> str:
    parts = []
    for item in group.get("conditions") or []:
        if isinstance(item, Mapping) and "conditions" in item:
            parts.append(_group(item, names, numbers, specs, nested=True))
        elif isinstance(item, Mapping):
            parts.append(_one_condition(item, names, numbers, specs))
    joined = (" or " if group.get("match") == "any" else " and ").join(p for p in parts if p)
    return f"({joined})" if nested and len(parts) > 1 else joined


def condition_words(
    step: Mapping[str, Any], names: Names, numbers: Mapping[int, int], specs: Mapping
) -> str:
    """The condition as a sentence: “opened the email of step 2 and has the tag VIP”."""
    parts = []
    definition = step.get("definition")
    if isinstance(definition, Mapping) and definition.get("conditions"):
        parts.append(_group(definition, names, numbers, specs))
    for test in step.get("event") or []:
        if not isinstance(test, Mapping):
            continue
        op = str(test.get("op") or "")
        words = f"the event's {test.get('property')} {EVENT_OPS.get(op, op)}"
        parts.append(words if op == "exists" else f"{words} “{test.get('value', '')}”")
    return " and ".join(parts) or "no test yet"


def step_summary(
    step: Mapping[str, Any],
    names: Names,
    numbers: Mapping[int, int],
    specs: Mapping,
    campaign: Campaign | None = None,
) -> str:
    kind = step.get("type")
    if kind == "email":
        return _quoted(campaign.name if campaign else None, "its message is missing")
    if kind == "wait":
        try:
            said = stepping.describe_wait(step)
        except (KeyError, TypeError, ValueError, IndexError):
            return "Wait (say how long)"
        return said if step.get("until") else f"Wait {said}"
    if kind == "condition":
        return f"If {condition_words(step, names, numbers, specs)}"
    if kind == "tag":
        tag = _quoted(names.tags.get(as_id(step.get("tag")) or 0), "(choose which)")
        return f"Remove the tag {tag}" if step.get("action") == "remove" else f"Add the tag {tag}"
    if kind == "list":
        found = _quoted(names.lists.get(as_id(step.get("list")) or 0), "a list (choose which)")
        if step.get("action") == "unsubscribe":
            return f"Unsubscribe from {found}"
        return f"Subscribe to {found}"
    if kind == "attribute":
        name = str(step.get("name") or "")
        if not name:
            return "Set an attribute (choose which)"
        return f"Set {names.attributes.get(name, name)} to “{step.get('value', '')}”"
    if kind == "exit":
        return "Leave the journey here"
    return f"Unknown step “{str(kind)[:40]}”"


@dataclass
class Branch:
    key: str  # "yes" or "no"
    label: str
    cards: list[Card]


@dataclass
class Card:
    """A step as the editor and the report show it."""

    row: Row
    number: int
    summary: str
    first: bool = False
    last: bool = False
    problem: str = ""
    branches: list[Branch] = field(default_factory=list)
    open: bool = False
    form: Any = None
    error: str = ""
    saved: bool = False

    @property
    def id(self) -> str:
        return str(self.row.step.get("id", ""))

    @property
    def type(self) -> str:
        return str(self.row.step.get("type", ""))

    @property
    def type_label(self) -> str:
        return stepping.TYPES.get(self.type, self.type)

    @property
    def figures(self) -> StepFigures:
        return self.row.figures

    @property
    def campaign(self) -> Campaign | None:
        return self.row.campaign

    @property
    def editable(self) -> bool:
        """Whether the step has settings of its own to change on its card."""
        return self.type in ("wait", "condition", "tag", "list", "attribute")


def numbers_of(steps: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Each step's number, in reading order (depth first), from 1."""
    return {str(step.get("id")): n for n, step in enumerate(stepping.walk(steps), start=1)}


def email_numbers(steps: Sequence[Mapping[str, Any]], numbers: Mapping[str, int]) -> dict[int, int]:
    """The step number of each email step's campaign."""
    found = {}
    for step in stepping.walk(steps):
        campaign = as_id(step.get("campaign")) if step.get("type") == "email" else None
        if campaign is not None:
            found[campaign] = numbers[str(step.get("id"))]
    return found


def cards(
    account: Account,
    steps: Sequence[Mapping[str, Any]],
    rows: Sequence[Row],
    *,
    problems: Mapping[str, str] | None = None,
) -> list[Card]:
    """The rows (journeys.selectors.rows) as cards with their numbers and sentences."""
    numbers = numbers_of(steps)
    by_campaign = email_numbers(steps, numbers)
    referenced: set[int] = set()
    links: set[int] = set()
    for step in stepping.walk(steps):
        if step.get("type") == "condition":
            referenced.update(_ids_in(step.get("definition"), "campaign"))
            links.update(_ids_in(step.get("definition"), "link"))
    names = Names.load(account, campaigns=referenced - set(by_campaign), links=links)
    specs = fields_for(condition_context(account))
    problems = problems or {}

    def build(items: Sequence[Row]) -> list[Card]:
        built = []
        for position, row in enumerate(items):
            step_id = str(row.step.get("id", ""))
            card = Card(
                row=row,
                number=numbers.get(step_id, 0),
                summary=step_summary(row.step, names, by_campaign, specs, row.campaign),
                first=position == 0,
                last=position == len(items) - 1,
                problem=problems.get(step_id, ""),
            )
            if row.step.get("type") == "condition":
                card.branches = [
                    Branch("yes", "Yes", build(row.children.get("yes", []))),
                    Branch("no", "No (else)", build(row.children.get("no", []))),
                ]
            built.append(card)
        return built

    return build(rows)


def step_names(account: Account, steps: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each step of a version as a short name, “Step 3: Wait 2 days”, by step id."""
    numbers = numbers_of(steps)
    by_campaign = email_numbers(steps, numbers)
    names = Names.load(account, campaigns=by_campaign)
    campaigns = {
        c.pk: c for c in Campaign.objects.for_account(account).filter(pk__in=list(by_campaign))
    }
    specs = fields_for(condition_context(account))
    found = {}
    for step in stepping.walk(steps):
        campaign = campaigns.get(as_id(step.get("campaign")) or 0)
        summary = step_summary(step, names, by_campaign, specs, campaign)
        if step.get("type") == "email":
            summary = f"Email {summary}"
        found[str(step.get("id"))] = f"Step {numbers[str(step.get('id'))]}: {summary}"
    return found


def flatten(items: Sequence[Card]) -> list[tuple[Card, str]]:
    """The cards in reading order, each with the branch it is in ("" at the top level)."""
    found: list[tuple[Card, str]] = []
    for card in items:
        found.append((card, card.row.branch))
        for branch in card.branches:
            found.extend(flatten(branch.cards))
    return found
