"""Whom a segment definition means, worked out in plain Python from the data a test
wrote: each condition as audiences/conditions.py and campaigns/audience_fields.py
describe it, written apart from their SQL so that the two can be held to one answer.

The people here are what the test recorded, not what the database stamped: a contact's
newest open is read from the opens recorded for their deliveries, not from
``last_opened_at``, so that the stamps are checked too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domains.providers import by_name, domain_of

TEXT = ("is", "is_not", "contains", "not_contains", "starts_with", "ends_with")
TEXT_OPS = (*TEXT, "is_empty", "is_not_empty")
NUMBER_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "between", "is_empty", "is_not_empty")
MOMENT_OPS = (
    "on",
    "before",
    "after",
    "between",
    "in_last_days",
    "more_than_days_ago",
    "is_empty",
    "is_not_empty",
)
DAY_OPS = (*MOMENT_OPS, "in_next_days", "anniversary_within_days")
BOOLEAN_OPS = ("is_true", "is_false", "is_empty")
ENGAGEMENT_OPS = ("ever", "never", "in_last_days", "not_in_last_days")
LIST_OPS = ("subscribed", "not_subscribed", "unsubscribed", "unconfirmed", "member", "not_member")
CHOICE_OPS = ("is", "is_not")

# Every field of the vocabulary and its operators, the attributes' by their type: what
# this evaluator knows. A field or operator added to the vocabulary fails
# test_the_evaluator_knows_the_whole_vocabulary until it is taught here.
FIELDS: dict[str, tuple[str, ...]] = {
    "email": TEXT_OPS,
    "first_name": TEXT_OPS,
    "last_name": TEXT_OPS,
    "email_domain": TEXT_OPS,
    "mailbox_provider": CHOICE_OPS,
    "tag": ("has", "has_not"),
    "created_at": MOMENT_OPS,
    "updated_at": MOMENT_OPS,
    "last_activity": MOMENT_OPS,
    "list": LIST_OPS,
    "source": CHOICE_OPS,
    "legal_basis": CHOICE_OPS,
    "consent_at": MOMENT_OPS,
    "opened": ENGAGEMENT_OPS,
    "clicked": ENGAGEMENT_OPS,
    "received": ("ever", "never"),
    "unopened_streak": ("at_least", "less_than"),
    "soft_bounced": ("ever", "in_last_days"),
}
ATTRIBUTE_OPS = {
    "text": TEXT_OPS,
    "number": NUMBER_OPS,
    "date": DAY_OPS,
    "boolean": BOOLEAN_OPS,
}
# The delivery statuses of a message the person received: it went out and did not bounce.
RECEIVED = ("sent", "complained")
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass
class Engagement:
    """An open or a click of a delivery, as recorded."""

    type: str  # "open" or "click"
    at: dt.datetime
    machine: bool = False
    # The account tracks this recipient, so the event names the delivery; otherwise it
    # cannot be told whose it was.
    personal: bool = True
    link: int | None = None

    @property
    def by_the_person(self) -> bool:
        return self.personal and not self.machine


@dataclass
class Bounce:
    at: dt.datetime
    kind: str | None  # detail.kind: "soft", "hard", "policy", or none given
    type: str = "bounce"  # or "deferred": a soft bounce the provider still retries


@dataclass
class Sent:
    """A delivery of one campaign to the person."""

    campaign: int
    status: str
    sent_at: dt.datetime | None
    engagements: list[Engagement] = field(default_factory=list)
    bounces: list[Bounce] = field(default_factory=list)

    def human(self, type: str) -> list[Engagement]:
        return [e for e in self.engagements if e.type == type and e.by_the_person]

    @property
    def opened(self) -> bool:
        return bool(self.human("open"))


@dataclass
class OnList:
    """A subscription."""

    list: int
    status: str
    source: str
    legal_basis: str
    consent_at: dt.datetime | None


@dataclass
class Person:
    email: str
    first_name: str = ""
    last_name: str = ""
    created_at: dt.datetime = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    updated_at: dt.datetime = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    # as the contact was written, before any click moved it
    activity_at: dt.datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: set[int] = field(default_factory=set)
    subscriptions: list[OnList] = field(default_factory=list)
    deliveries: list[Sent] = field(default_factory=list)
    id: int = 0  # the contact's, once written

    def newest(self, type: str) -> dt.datetime | None:
        times = [e.at for d in self.deliveries for e in d.human(type)]
        return max(times, default=None)

    @property
    def last_activity(self) -> dt.datetime | None:
        times = [t for t in (self.activity_at, self.newest("click")) if t is not None]
        return max(times, default=None)

    def delivery(self, campaign: int) -> Sent | None:
        return next((d for d in self.deliveries if d.campaign == campaign), None)


@dataclass
class Setting:
    """What a definition is read against: the account's day, its attributes' types, and
    which campaign each link belongs to."""

    now: dt.datetime
    zone: dt.tzinfo
    attribute_types: dict[str, str] = field(default_factory=dict)
    link_campaigns: dict[int, int] = field(default_factory=dict)
    hosted: dict[str, str] = field(default_factory=dict)  # domain: provider, by its MX

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.zone).date()

    def local_day(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.zone).date()


def who(definition: Mapping[str, Any], people: Iterable[Person], setting: Setting) -> set[int]:
    """The ids of the people ``definition`` matches."""
    return {person.id for person in people if matches(definition, person, setting)}


def matches(node: Mapping[str, Any], person: Person, setting: Setting) -> bool:
    if "conditions" in node:
        results = [matches(item, person, setting) for item in node["conditions"]]
        if not results:  # an empty group matches everyone, whichever its match
            return True
        return all(results) if node.get("match", "all") == "all" else any(results)
    return _condition(node, person, setting)


# -- values, as a definition may give them -------------------------------------------------


def _days(value: object) -> int:
    return int(str(value))  # an int, or its digits as text


def _id(value: object) -> int:
    return int(str(value))  # an id, or its digits as text


def _number(value: object) -> float:
    return float(str(value))  # a number, or its text


def _day(value: object) -> dt.date:
    assert isinstance(value, str)
    return dt.date.fromisoformat(value.strip())


def _text(value: object) -> str:
    assert isinstance(value, str)
    return value.strip().lower()


# -- tests by kind of value ----------------------------------------------------------------


def text_passes(actual: str, op: str, value: object) -> bool:
    """``actual`` is '' when missing; the test ignores case."""
    actual = actual.lower()
    if op == "is_empty":
        return actual == ""
    if op == "is_not_empty":
        return actual != ""
    wanted = _text(value)
    passes = {
        "is": actual == wanted,
        "is_not": actual != wanted,
        "contains": wanted in actual,
        "not_contains": wanted not in actual,
        "starts_with": actual.startswith(wanted),
        "ends_with": actual.endswith(wanted),
    }
    return passes[op]


def number_passes(actual: float | None, op: str, value: object) -> bool:
    if op == "is_empty":
        return actual is None
    if op == "is_not_empty":
        return actual is not None
    if op == "ne":  # "is not 5": also whoever has no number
        return actual is None or actual != _number(value)
    if actual is None:
        return False
    if op == "between":
        assert isinstance(value, list | tuple)
        return _number(value[0]) <= actual <= _number(value[1])
    wanted = _number(value)
    return {
        "eq": actual == wanted,
        "lt": actual < wanted,
        "lte": actual <= wanted,
        "gt": actual > wanted,
        "gte": actual >= wanted,
    }[op]


def moment_passes(actual: dt.datetime | None, op: str, value: object, setting: Setting) -> bool:
    """An instant, tested by the account's days (on, before, after, between) or by whole
    periods of 24 hours back from now."""
    if op == "is_empty":
        return actual is None
    if op == "is_not_empty":
        return actual is not None
    if actual is None:
        return False
    if op == "in_last_days":
        return actual >= setting.now - dt.timedelta(days=_days(value))
    if op == "more_than_days_ago":
        return actual < setting.now - dt.timedelta(days=_days(value))
    day = setting.local_day(actual)
    if op == "between":
        assert isinstance(value, list | tuple)
        return _day(value[0]) <= day <= _day(value[1])
    wanted = _day(value)
    return {"on": day == wanted, "before": day < wanted, "after": day > wanted}[op]


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def anniversary_within(day: dt.date, today: dt.date, days: int) -> bool:
    """Whether ``day``'s month and day come again from today to ``days`` later; someone
    born on 29 February has it on the 28th in a year without one."""
    for n in range(min(days, 800) + 1):  # past a year, every day of the year came
        then = today + dt.timedelta(days=n)
        if (then.month, then.day) == (day.month, day.day):
            return True
        leap_day_on_the_28th = (day.month, day.day) == (2, 29) and not _leap(then.year)
        if leap_day_on_the_28th and (then.month, then.day) == (2, 28):
            return True
    return False


def day_passes(actual: dt.date | None, op: str, value: object, setting: Setting) -> bool:
    """A calendar day (a date attribute), against the account's today."""
    if op == "is_empty":
        return actual is None
    if op == "is_not_empty":
        return actual is not None
    if actual is None:
        return False
    today = setting.today
    if op == "anniversary_within_days":
        return anniversary_within(actual, today, _days(value))
    if op == "in_last_days":
        return today - dt.timedelta(days=_days(value)) <= actual <= today
    if op == "in_next_days":
        return today <= actual <= today + dt.timedelta(days=_days(value))
    if op == "more_than_days_ago":
        return actual < today - dt.timedelta(days=_days(value))
    if op == "between":
        assert isinstance(value, list | tuple)
        return _day(value[0]) <= actual <= _day(value[1])
    wanted = _day(value)
    return {"on": actual == wanted, "before": actual < wanted, "after": actual > wanted}[op]


# -- attributes: a value not of the attribute's type is no value -----------------------------


def attribute_text(value: object) -> str:
    return value if isinstance(value, str) else ""


def attribute_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def attribute_day(value: object) -> dt.date | None:
    if not isinstance(value, str) or not ISO_DAY.fullmatch(value):
        return None
    return dt.date.fromisoformat(value)


def attribute_passes(name: str, op: str, value: object, person: Person, setting: Setting) -> bool:
    kind = setting.attribute_types[name]
    stored = person.attributes.get(name)
    if kind == "text":
        return text_passes(attribute_text(stored), op, value)
    if kind == "number":
        return number_passes(attribute_number(stored), op, value)
    if kind == "date":
        return day_passes(attribute_day(stored), op, value, setting)
    assert kind == "boolean"
    if op == "is_empty":
        return not isinstance(stored, bool)
    return stored is (op == "is_true")


# -- engagement ------------------------------------------------------------------------------


def engaged(condition: Mapping[str, Any], person: Person, setting: Setting) -> bool:
    """Opened or clicked, by the person themselves (never a machine): at all, or one
    campaign's message (and one of its links)."""
    type = "open" if condition["field"] == "opened" else "click"
    op = condition["op"]
    link = condition.get("link") if type == "click" else None
    campaign = setting.link_campaigns[link] if link else condition.get("campaign")
    since = (
        setting.now - dt.timedelta(days=_days(condition["value"]))
        if op in ("in_last_days", "not_in_last_days")
        else None
    )
    if campaign:
        delivery = person.delivery(int(campaign))
        times = [
            e.at
            for e in (delivery.human(type) if delivery else [])
            if link is None or e.link == int(link)
        ]
    else:
        times = [e.at for d in person.deliveries for e in d.human(type)]
    happened = any(since is None or at >= since for at in times)
    return happened if op in ("ever", "in_last_days") else not happened


def unopened_streak(person: Person) -> int:
    """How many campaigns the person received since the newest one they opened (every
    one they received, when they opened none)."""
    opened = [d.sent_at for d in person.deliveries if d.opened and d.sent_at is not None]
    last = max(opened, default=None)
    return sum(
        1
        for d in person.deliveries
        if d.status in RECEIVED
        and not d.opened
        and d.sent_at is not None
        and (last is None or d.sent_at > last)
    )


# -- conditions ------------------------------------------------------------------------------


def _subscriptions(condition: Mapping[str, Any], person: Person) -> list[OnList]:
    on = condition.get("list")
    if on in (None, ""):
        return person.subscriptions
    return [s for s in person.subscriptions if s.list == int(on)]


def _condition(condition: Mapping[str, Any], person: Person, setting: Setting) -> bool:
    name, op, value = condition["field"], condition["op"], condition.get("value")
    if name.startswith("attributes."):
        return attribute_passes(name.partition(".")[2], op, value, person, setting)
    if name in ("email", "first_name", "last_name"):
        return text_passes(getattr(person, name), op, value)
    if name == "email_domain":
        return text_passes(person.email.rpartition("@")[2], op, value)
    if name == "mailbox_provider":
        provider = by_name(person.email)
        if provider == "other":
            provider = setting.hosted.get(domain_of(person.email), "other")
        return (provider == value) == (op == "is")
    if name == "tag":
        return (_id(value) in person.tags) == (op == "has")
    if name in ("created_at", "updated_at"):
        return moment_passes(getattr(person, name), op, value, setting)
    if name == "last_activity":
        return moment_passes(person.last_activity, op, value, setting)
    if name == "list":
        on = next((s for s in person.subscriptions if s.list == _id(value)), None)
        status = on.status if on else None
        return {
            "subscribed": status == "subscribed",
            "not_subscribed": status != "subscribed",
            "unsubscribed": status == "unsubscribed",
            "unconfirmed": status == "unconfirmed",
            "member": on is not None,
            "not_member": on is None,
        }[op]
    if name in ("source", "legal_basis"):
        found = any(getattr(s, name) == value for s in _subscriptions(condition, person))
        return found == (op == "is")
    if name == "consent_at":
        times = [s.consent_at for s in _subscriptions(condition, person)]
        if op == "is_empty":
            return all(t is None for t in times)
        if op == "is_not_empty":
            return any(t is not None for t in times)
        return any(moment_passes(t, op, value, setting) for t in times)
    if name in ("opened", "clicked"):
        return engaged(condition, person, setting)
    if name == "received":
        delivery = person.delivery(_id(value))
        received = delivery is not None and delivery.status in RECEIVED
        return received == (op == "ever")
    if name == "unopened_streak":
        streak = unopened_streak(person)
        return streak >= _number(value) if op == "at_least" else streak < _number(value)
    if name == "soft_bounced":
        since = setting.now - dt.timedelta(days=_days(value)) if op == "in_last_days" else None
        return any(
            b.kind == "soft"
            and b.type in ("bounce", "deferred")
            and (since is None or b.at >= since)
            for d in person.deliveries
            for b in d.bounces
        )
    raise AssertionError(f"the evaluator does not know the field {name!r}")
