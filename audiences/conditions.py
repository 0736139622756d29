"""The closed vocabulary of segment conditions, and its compiler to SQL.

A definition is a group: ``{"match": "all" | "any", "conditions": [...]}``; each item is a
condition or a group (two levels below the top at most). A condition names a ``field``,
an ``op`` and, for most, a ``value``; some take more keys (``list``, ``campaign``,
``link``)::

    {"match": "all", "conditions": [
        {"field": "attributes.city", "op": "is", "value": "Lyon"},
        {"field": "opened", "op": "in_last_days", "value": 30},
        {"match": "any", "conditions": [
            {"field": "tag", "op": "has", "value": 12},
            {"field": "list", "op": "subscribed", "value": 3}]}]}

``clean_definition`` checks a definition against the account (its attributes, lists,
tags, campaigns) and names the part at fault (``conditions.2.value``); ``compile_sql``
turns a clean one into a boolean SQL expression over ``contacts_contact AS c``. Every
value reaches SQL as a parameter: the SQL text is made only from this module's constants
and those of the fields registered by higher apps (campaigns registers the conditions
that read deliveries). Each condition compiles to an expression that is never NULL, so
``NOT`` and ``OR`` mean what they say for contacts who lack a value.
"""

# ruff: noqa: S608 - SQL text is made from this module's constants; values are parameters
from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from accounts.models import Account
from contacts.models import AttributeDefinition, ContactList, Subscription, Tag
from domains import providers
from domains.models import MailboxDomain

MAX_CONDITIONS = 50
MAX_DEPTH = 3  # the top group, and two levels of groups inside it
MAX_TEXT = 500
MAX_DAYS = 36_500
MATCHES = ("all", "any")


class Invalid(Exception):
    """What is wrong with a definition, by the path of each part at fault."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors.items()))
        self.errors = dict(errors)


class Fault(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass
class Context:
    """What a definition is checked and evaluated against: one account, at one instant."""

    account: Account
    now: dt.datetime
    attributes: dict[str, AttributeDefinition] = field(default_factory=dict)
    # ids of the account's lists, tags, campaigns and links, read once per definition
    known: dict[str, set[int]] = field(default_factory=dict)

    @property
    def zone(self) -> dt.tzinfo:
        try:
            return zoneinfo.ZoneInfo(self.account.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return dt.UTC

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(self.zone).date()

    def day_start(self, day: dt.date) -> dt.datetime:
        """The instant the account's day ``day`` begins."""
        return dt.datetime.combine(day, dt.time(), tzinfo=self.zone)

    def ids(self, kind: str, load: Callable[[], Iterable[int]]) -> set[int]:
        if kind not in self.known:
            self.known[kind] = set(load())
        return self.known[kind]


def context_for(account: Account, now: dt.datetime | None = None) -> Context:
    attributes = {a.name: a for a in AttributeDefinition.objects.for_account(account)}
    return Context(account=account, now=now or timezone.now(), attributes=attributes)


_MARK = re.compile("\x00([0-9]+)\x00")


class Sql:
    """SQL being written. ``p(value)`` holds a value and answers a marker to put in the
    text where it goes; ``finish`` turns the markers into ``%s`` placeholders and the
    values into ``params`` in the order the text reads them, whatever order the pieces
    were written in."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.params: list[Any] = []
        self.sql = ""

    def p(self, value: Any) -> str:
        self.values.append(value)
        return f"\x00{len(self.values) - 1}\x00"

    def finish(self, text: str) -> Sql:
        self.params = [self.values[int(n)] for n in _MARK.findall(text)]
        self.sql = _MARK.sub("%s", text)
        return self


# -- values -------------------------------------------------------------------------------------

# How an operator's value is given: the builder page shows a field of this kind, and
# ``_value`` checks it.
NONE, TEXT, NUMBER, NUMBERS, DATE, DATES, DAYS, CHOICE, ID = (
    "none",
    "text",
    "number",
    "numbers",
    "date",
    "dates",
    "days",
    "choice",
    "id",
)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Fault("value", "Give some text.")
    if len(value) > MAX_TEXT:
        raise Fault("value", f"At most {MAX_TEXT} characters.")
    if "\x00" in value:
        raise Fault("value", "The text holds a NUL character, which no contact's data can.")
    return value.strip()


def _number(value: object, key: str = "value") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Fault(key, "Give a number.")
    try:
        number = float(value)
    except ValueError:
        raise Fault(key, f"{value!r} is not a number.") from None
    if not math.isfinite(number):
        raise Fault(key, "Give a finite number.")
    return number


def _date(value: object, key: str = "value") -> str:
    if not isinstance(value, str):
        raise Fault(key, "Give a date as YYYY-MM-DD.")
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise Fault(key, f"{value!r} is not a date (YYYY-MM-DD).") from None


def _pair(value: object, one: Callable[[object, str], Any]) -> list[Any]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise Fault("value", "Give two values, the lower first: [from, to].")
    low, high = one(value[0], "value"), one(value[1], "value")
    if low > high:
        raise Fault("value", "The first value must not be above the second.")
    return [low, high]


def _days(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Fault("value", "Give a whole number of days.")
    try:
        days = int(value)
    except ValueError:
        raise Fault("value", f"{value!r} is not a whole number of days.") from None
    if not 0 <= days <= MAX_DAYS:
        raise Fault("value", f"Give a number of days from 0 to {MAX_DAYS}.")
    return days


def parse_id(value: object, key: str = "value") -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Fault(key, "Give an id.")
    try:
        return int(value)
    except ValueError:
        raise Fault(key, f"{value!r} is not an id.") from None


def _value(kind: str, value: object, choices: Mapping[str, str] | None = None) -> Any:
    if kind == NONE:
        return None
    if kind == TEXT:
        return _text(value)
    if kind == NUMBER:
        return _number(value)
    if kind == NUMBERS:
        return _pair(value, _number)
    if kind == DATE:
        return _date(value)
    if kind == DATES:
        return _pair(value, _date)
    if kind == DAYS:
        return _days(value)
    if kind == CHOICE:
        assert choices is not None
        if value not in choices:
            raise Fault("value", f"Choose one of: {', '.join(choices)}.")
        return value
    return parse_id(value)


# -- fields -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    label: str
    value: str = NONE  # the kind of value it takes


class Field(ABC):
    """A thing a condition can test. ``ops`` maps each operator to its label and value
    kind; ``sql`` writes the test over ``c`` (a contacts_contact row), never NULL."""

    name: str = ""
    label: str = ""
    group: str = ""
    ops: Mapping[str, Op] = {}
    choices: Mapping[str, str] | None = None  # for CHOICE values
    # Keys a condition on this field may carry besides its value (``list``, ``campaign``,
    # ``link``), for the builder page to show.
    extras: tuple[str, ...] = ()

    def options(
        self, key: str, ctx: Context, condition: Mapping[str, Any]
    ) -> list[tuple[int, str]]:
        """The account's objects an ID value (``key`` "value") or an extra key names."""
        return []

    def clean(self, condition: Mapping[str, Any], ctx: Context) -> dict[str, Any]:
        op = condition.get("op")
        if not isinstance(op, str) or op not in self.ops:
            raise Fault("op", f"{self.label} can use: {', '.join(self.ops)}.")
        cleaned: dict[str, Any] = {"field": condition["field"], "op": op}
        value = _value(self.ops[op].value, condition.get("value"), self.choices)
        if value is not None:
            cleaned["value"] = value
        return self.clean_more(condition, cleaned, ctx)

    def clean_more(
        self, condition: Mapping[str, Any], cleaned: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        return cleaned

    @abstractmethod
    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        """The test of a clean ``condition`` over ``c``; each field writes its own."""


TEXT_OPS = {
    "is": Op("is", TEXT),
    "is_not": Op("is not", TEXT),
    "contains": Op("contains", TEXT),
    "not_contains": Op("does not contain", TEXT),
    "starts_with": Op("starts with", TEXT),
    "ends_with": Op("ends with", TEXT),
    "is_empty": Op("is empty"),
    "is_not_empty": Op("is not empty"),
}
NUMBER_OPS = {
    "eq": Op("=", NUMBER),
    "ne": Op("≠", NUMBER),
    "lt": Op("<", NUMBER),
    "lte": Op("≤", NUMBER),
    "gt": Op(">", NUMBER),
    "gte": Op("≥", NUMBER),
    "between": Op("between", NUMBERS),
    "is_empty": Op("is empty"),
    "is_not_empty": Op("is not empty"),
}
DATE_OPS = {
    "on": Op("is on", DATE),
    "before": Op("is before", DATE),
    "after": Op("is after", DATE),
    "between": Op("is between", DATES),
    "in_last_days": Op("is in the last … days", DAYS),
    "more_than_days_ago": Op("is more than … days ago", DAYS),
    "is_empty": Op("is empty"),
    "is_not_empty": Op("is not empty"),
}
DAY_OPS = {
    **DATE_OPS,
    "in_next_days": Op("is in the next … days", DAYS),
    "anniversary_within_days": Op("has its anniversary within … days", DAYS),
}
BOOLEAN_OPS = {"is_true": Op("is yes"), "is_false": Op("is no"), "is_empty": Op("is empty")}


def text_test(expression: str, op: str, value: str | None, q: Sql) -> str:
    """``expression`` is lower-cased text, '' when missing."""
    v = (value or "").lower()
    tests = {
        "is": lambda: f"{expression} = {q.p(v)}",
        "contains": lambda: f"strpos({expression}, {q.p(v)}) > 0",
        "starts_with": lambda: f"left({expression}, {q.p(len(v))}) = {q.p(v)}",
        "ends_with": lambda: f"right({expression}, {q.p(len(v))}) = {q.p(v)}",
        "is_empty": lambda: f"{expression} = ''",
    }
    negated = {"is_not": "is", "not_contains": "contains", "is_not_empty": "is_empty"}
    if op in negated:
        return f"NOT ({tests[negated[op]]()})"
    return tests[op]()


def number_test(expression: str, op: str, value: Any, q: Sql) -> str:
    """``expression`` is a float8, NULL when missing."""
    if op == "is_empty":
        return f"({expression}) IS NULL"
    if op == "is_not_empty":
        return f"({expression}) IS NOT NULL"
    if op == "between":
        return f"coalesce(({expression}) BETWEEN {q.p(value[0])} AND {q.p(value[1])}, false)"
    if op == "ne":
        return f"NOT coalesce(({expression}) = {q.p(value)}, false)"
    symbol = {"eq": "=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
    return f"coalesce(({expression}) {symbol} {q.p(value)}, false)"


def anniversary_days(today: dt.date, days: int) -> list[str]:
    """The month-days (MM-DD) from ``today`` to ``days`` later; 29 February counts on the
    28th in a year without it."""
    found: list[str] = []
    for n in range(min(days, 366) + 1):
        day = today + dt.timedelta(days=n)
        found.append(day.strftime("%m-%d"))
        if day.month == 2 and day.day == 28 and not _leap(day.year):
            found.append("02-29")
    return sorted(set(found))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def day_test(expression: str, op: str, value: Any, ctx: Context, q: Sql) -> str:
    """``expression`` is a day as YYYY-MM-DD text, NULL when missing: ISO days compare
    as text, so no cast can fail on a stored value."""
    today = ctx.today
    if op == "is_empty":
        return f"({expression}) IS NULL"
    if op == "is_not_empty":
        return f"({expression}) IS NOT NULL"
    if op == "anniversary_within_days":
        return (
            f"coalesce(substr({expression}, 6, 5) = ANY({q.p(anniversary_days(today, value))}), "
            "false)"
        )
    low: str | None
    high: str | None
    if op == "on":
        low = high = value
    elif op == "before":
        return f"coalesce(({expression}) < {q.p(value)}, false)"
    elif op == "after":
        return f"coalesce(({expression}) > {q.p(value)}, false)"
    elif op == "between":
        low, high = value
    elif op == "in_last_days":
        low, high = (today - dt.timedelta(days=value)).isoformat(), today.isoformat()
    elif op == "in_next_days":
        low, high = today.isoformat(), (today + dt.timedelta(days=value)).isoformat()
    else:  # more_than_days_ago
        limit = (today - dt.timedelta(days=value)).isoformat()
        return f"coalesce(({expression}) < {q.p(limit)}, false)"
    return f"coalesce(({expression}) BETWEEN {q.p(low)} AND {q.p(high)}, false)"


TIME_OPS = dict(DATE_OPS)


def time_test(expression: str, op: str, value: Any, ctx: Context, q: Sql) -> str:
    """``expression`` is a timestamptz, NULL when missing. Days are the account's days."""
    if op == "is_empty":
        return f"({expression}) IS NULL"
    if op == "is_not_empty":
        return f"({expression}) IS NOT NULL"
    if op in ("in_last_days", "more_than_days_ago"):
        since = ctx.now - dt.timedelta(days=value)
        symbol = ">=" if op == "in_last_days" else "<"
        return f"coalesce(({expression}) {symbol} {q.p(since)}, false)"
    day = dt.date.fromisoformat
    one = dt.timedelta(days=1)
    if op == "before":
        return f"coalesce(({expression}) < {q.p(ctx.day_start(day(value)))}, false)"
    if op == "after":
        return f"coalesce(({expression}) >= {q.p(ctx.day_start(day(value) + one))}, false)"
    low, high = (value, value) if op == "on" else value
    return (
        f"coalesce(({expression}) >= {q.p(ctx.day_start(day(low)))} "
        f"AND ({expression}) < {q.p(ctx.day_start(day(high) + one))}, false)"
    )


class ContactText(Field):
    group = "Contact"
    ops = TEXT_OPS

    def __init__(self, name: str, label: str, column: str) -> None:
        self.name, self.label, self.column = name, label, column

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        expression = f"coalesce(lower({self.column}), '')"
        return text_test(expression, condition["op"], condition.get("value"), q)


class ContactTime(Field):
    group = "Contact"
    ops = TIME_OPS

    def __init__(self, name: str, label: str, column: str) -> None:
        self.name, self.label, self.column = name, label, column

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        return time_test(self.column, condition["op"], condition.get("value"), ctx, q)


class EmailDomain(Field):
    name, label, group, ops = "email_domain", "Email domain", "Contact", TEXT_OPS

    def clean_more(
        self, condition: Mapping[str, Any], cleaned: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        if "value" in cleaned:
            try:
                cleaned["value"] = cleaned["value"].lower().encode("idna").decode("ascii")
            except UnicodeError:
                cleaned["value"] = cleaned["value"].lower()
        return cleaned

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        return text_test("split_part(c.email, '@', 2)", condition["op"], condition.get("value"), q)


class MailboxProvider(Field):
    """By the address's domain name, else by its mail exchangers as the beat classified
    them (``domains.providers``)."""

    name, label, group = "mailbox_provider", "Mailbox provider", "Contact"
    ops = {"is": Op("is", CHOICE), "is_not": Op("is not", CHOICE)}
    choices = providers.LABELS

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        domain = "split_part(c.email, '@', 2)"
        hosted = MailboxDomain._meta.db_table

        def named(provider: str) -> str:
            return (
                f"({domain} = ANY({q.p(list(providers.NAMES[provider]))}) OR "
                f"(strpos({domain}, '.') > 0 AND split_part({domain}, '.', 1) = "
                f"ANY({q.p(list(providers.BRANDS[provider]))})))"
            )

        def classified(test: str) -> str:
            # A semi-join on the classified domains: one hash of them, whatever the size.
            return f"{domain} IN (SELECT m.name FROM {hosted} AS m WHERE m.provider {test})"

        value = condition["value"]
        if value == providers.OTHER:
            known = " OR ".join(named(p) for p in providers.NAMES)
            test = f"NOT ({known} OR {classified(f'<> {q.p(providers.OTHER)}')})"
        else:
            test = f"({named(value)} OR {classified(f'= {q.p(value)}')})"
        return test if condition["op"] == "is" else f"NOT {test}"


class Attribute(Field):
    """``attributes.NAME``: a declared attribute, tested by its type."""

    group = "Attributes"

    def __init__(self, definition: AttributeDefinition) -> None:
        self.definition = definition
        self.name = f"attributes.{definition.name}"
        self.label = definition.label or definition.name
        T = AttributeDefinition.Type
        self.ops = {
            T.TEXT: TEXT_OPS,
            T.NUMBER: NUMBER_OPS,
            T.DATE: DAY_OPS,
            T.BOOLEAN: BOOLEAN_OPS,
        }[AttributeDefinition.Type(definition.type)]

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        T = AttributeDefinition.Type
        op, value = condition["op"], condition.get("value")
        key = self.definition.name
        kind = AttributeDefinition.Type(self.definition.type)
        if kind == T.TEXT:
            return text_test(f"coalesce(lower(c.attributes ->> {q.p(key)}), '')", op, value, q)
        if kind == T.NUMBER:
            number = (
                f"CASE WHEN jsonb_typeof(c.attributes -> {q.p(key)}) = 'number' "
                f"THEN (c.attributes ->> {q.p(key)})::float8 END"
            )
            return number_test(number, op, value, q)
        if kind == T.DATE:
            day = (
                f"CASE WHEN jsonb_typeof(c.attributes -> {q.p(key)}) = 'string' "
                f"AND (c.attributes ->> {q.p(key)}) ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' "
                f"THEN c.attributes ->> {q.p(key)} END"
            )
            return day_test(day, op, value, ctx, q)
        if op == "is_empty":
            return f"coalesce(jsonb_typeof(c.attributes -> {q.p(key)}), '') <> 'boolean'"
        literal = "true" if op == "is_true" else "false"
        return f"coalesce(c.attributes -> {q.p(key)} = '{literal}'::jsonb, false)"


def owned_id(
    condition: Mapping[str, Any],
    ctx: Context,
    key: str,
    kind: str,
    load: Callable[[], Iterable[int]],
) -> int:
    """The id at ``key``, when it names one of the account's ``kind`` (lists, tags,
    campaigns: ``load`` reads their ids, once per definition); else a Fault saying so."""
    found = parse_id(condition.get(key), key)
    if found not in ctx.ids(kind, load):
        raise Fault(key, f"There is no {kind[:-1]} {found} in this account (was it deleted?).")
    return found


def _list_id(condition: Mapping[str, Any], ctx: Context, key: str = "value") -> int:
    return owned_id(
        condition,
        ctx,
        key,
        "lists",
        lambda: ContactList.objects.for_account(ctx.account).values_list("pk", flat=True),
    )


def list_options(ctx: Context) -> list[tuple[int, str]]:
    return list(ContactList.objects.for_account(ctx.account).values_list("pk", "name"))


class ListMembership(Field):
    name, label, group = "list", "List", "Subscriptions"

    def options(
        self, key: str, ctx: Context, condition: Mapping[str, Any]
    ) -> list[tuple[int, str]]:
        return list_options(ctx)

    ops = {
        "subscribed": Op("is subscribed to", ID),
        "not_subscribed": Op("is not subscribed to", ID),
        "unsubscribed": Op("has unsubscribed from", ID),
        "unconfirmed": Op("has not yet confirmed", ID),
        "member": Op("is on (any status)", ID),
        "not_member": Op("is not on", ID),
    }

    def clean_more(
        self, condition: Mapping[str, Any], cleaned: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        cleaned["value"] = _list_id(cleaned, ctx)
        return cleaned

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        op = condition["op"]
        status = {
            "subscribed": Subscription.Status.SUBSCRIBED,
            "not_subscribed": Subscription.Status.SUBSCRIBED,
            "unsubscribed": Subscription.Status.UNSUBSCRIBED,
            "unconfirmed": Subscription.Status.UNCONFIRMED,
        }.get(op)
        test = (
            "EXISTS (SELECT 1 FROM contacts_subscription AS s WHERE s.contact_id = c.id "
            f"AND s.contact_list_id = {q.p(condition['value'])}"
            + (f" AND s.status = {q.p(str(status))})" if status else ")")
        )
        return f"NOT {test}" if op in ("not_subscribed", "not_member") else test


def _on_list(condition: Mapping[str, Any], q: Sql) -> str:
    return f" AND s.contact_list_id = {q.p(condition['list'])}" if "list" in condition else ""


class OnAList(Field):
    """A test of subscriptions, on the list given as ``list``, or on any."""

    group = "Subscriptions"
    extras = ("list",)

    def options(
        self, key: str, ctx: Context, condition: Mapping[str, Any]
    ) -> list[tuple[int, str]]:
        return list_options(ctx)

    def clean_more(
        self, condition: Mapping[str, Any], cleaned: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        if condition.get("list") not in (None, ""):
            cleaned["list"] = _list_id(condition, ctx, "list")
        return cleaned


class SubscriptionChoice(OnAList):
    """A subscription's source or legal basis, on a given list or on any."""

    ops = {"is": Op("is", CHOICE), "is_not": Op("is not", CHOICE)}

    def __init__(self, name: str, label: str, column: str, choices: Mapping[str, str]) -> None:
        self.name, self.label, self.column, self.choices = name, label, column, choices

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        on_list = _on_list(condition, q)
        test = (
            "EXISTS (SELECT 1 FROM contacts_subscription AS s WHERE s.contact_id = c.id"
            f"{on_list} AND s.{self.column} = {q.p(condition['value'])})"
        )
        return test if condition["op"] == "is" else f"NOT {test}"


class ConsentDate(OnAList):
    """When consent was given: some subscription (on the list, or any) whose consent date
    passes; "is empty": none has one."""

    name, label, ops = "consent_at", "Consent date", TIME_OPS

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        on_list = _on_list(condition, q)
        op = condition["op"]
        if op in ("is_empty", "is_not_empty"):
            test = (
                "EXISTS (SELECT 1 FROM contacts_subscription AS s WHERE s.contact_id = c.id"
                f"{on_list} AND s.consent_at IS NOT NULL)"
            )
            return test if op == "is_not_empty" else f"NOT {test}"
        passes = time_test("s.consent_at", op, condition.get("value"), ctx, q)
        return (
            "EXISTS (SELECT 1 FROM contacts_subscription AS s WHERE s.contact_id = c.id"
            f"{on_list} AND {passes})"
        )


class TagField(Field):
    name, label, group = "tag", "Tag", "Contact"
    ops = {"has": Op("has the tag", ID), "has_not": Op("does not have the tag", ID)}

    def options(
        self, key: str, ctx: Context, condition: Mapping[str, Any]
    ) -> list[tuple[int, str]]:
        return list(Tag.objects.for_account(ctx.account).values_list("pk", "name"))

    def clean_more(
        self, condition: Mapping[str, Any], cleaned: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        cleaned["value"] = owned_id(
            cleaned,
            ctx,
            "value",
            "tags",
            lambda: Tag.objects.for_account(ctx.account).values_list("pk", flat=True),
        )
        return cleaned

    def sql(self, condition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
        test = (
            "EXISTS (SELECT 1 FROM contacts_contacttag AS t WHERE t.contact_id = c.id "
            f"AND t.tag_id = {q.p(condition['value'])})"
        )
        return test if condition["op"] == "has" else f"NOT {test}"


_BUILT_IN: list[Field] = [
    ContactText("email", "Email address", "c.email"),
    ContactText("first_name", "First name", "c.first_name"),
    ContactText("last_name", "Last name", "c.last_name"),
    EmailDomain(),
    MailboxProvider(),
    TagField(),
    ContactTime("created_at", "Added on", "c.created_at"),
    ContactTime("updated_at", "Last updated", "c.updated_at"),
    ContactTime("last_activity", "Last activity (a person's click or form)", "c.last_activity_at"),
    ListMembership(),
    SubscriptionChoice(
        "source", "Subscription source", "source", dict(Subscription.Source.choices)
    ),
    SubscriptionChoice(
        "legal_basis", "Legal basis", "legal_basis", dict(Subscription.LegalBasis.choices)
    ),
    ConsentDate(),
]
# Fields of higher apps (campaigns: opened, clicked, received, bounces), registered when
# they load: they read tables this app must not import.
_registered: dict[str, Field] = {}


def register(spec: Field) -> None:
    _registered[spec.name] = spec


def fields_for(ctx: Context) -> dict[str, Field]:
    """Every field a condition of this account may name, in the builder's order."""
    found: dict[str, Field] = {spec.name: spec for spec in _BUILT_IN}
    found.update(_registered)
    for definition in ctx.attributes.values():
        spec = Attribute(definition)
        found[spec.name] = spec
    return found


# -- definitions --------------------------------------------------------------------------------


def is_group(node: object) -> bool:
    return isinstance(node, Mapping) and "conditions" in node


def clean_definition(definition: object, ctx: Context) -> dict[str, Any]:
    """The definition in its canonical form, or ``Invalid`` naming every part at fault."""
    errors: dict[str, str] = {}
    fields = fields_for(ctx)
    count = 0

    def group(node: object, path: str, depth: int) -> dict[str, Any]:
        nonlocal count
        where = f"{path}." if path else ""
        if not isinstance(node, Mapping):
            errors[path or "definition"] = "Expected a group: {match, conditions}."
            return {}
        unknown = set(node) - {"match", "conditions"}
        if unknown:
            errors[f"{where}{sorted(unknown)[0]}"] = "A group has only match and conditions."
        match = node.get("match", "all")
        if match not in MATCHES:
            errors[f"{where}match"] = "Use all (AND) or any (OR)."
        items = node.get("conditions")
        if not isinstance(items, list):
            errors[f"{where}conditions"] = "Expected a list of conditions."
            return {}
        cleaned = []
        for index, item in enumerate(items):
            at = f"{where}conditions.{index}"
            if is_group(item):
                if depth + 1 >= MAX_DEPTH:
                    errors[at] = f"Groups nest {MAX_DEPTH - 1} levels deep at most."
                    continue
                inner = group(item, at, depth + 1)
                if inner:
                    cleaned.append(inner)
                continue
            count += 1
            if count > MAX_CONDITIONS:
                errors[at] = f"A segment has {MAX_CONDITIONS} conditions at most."
                break
            one = condition(item, at)
            if one:
                cleaned.append(one)
        return {"match": match, "conditions": cleaned}

    def condition(node: object, path: str) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            errors[path] = "Expected a condition: {field, op, value}."
            return {}
        name = node.get("field")
        spec = fields.get(name) if isinstance(name, str) else None
        if spec is None:
            if isinstance(name, str) and name.startswith("attributes."):
                errors[f"{path}.field"] = (
                    f"There is no attribute {name.partition('.')[2]!r} in this account "
                    "(was it deleted?)."
                )
            else:
                errors[f"{path}.field"] = f"{name!r} is not a field segments know."
            return {}
        try:
            return spec.clean(node, ctx)
        except Fault as fault:
            errors[f"{path}.{fault.key}"] = fault.message
            return {}

    cleaned = group(definition, "", 0)
    if errors:
        raise Invalid(errors)
    return cleaned


def compile_sql(definition: Mapping[str, Any], ctx: Context, q: Sql) -> str:
    """A clean definition as a boolean over ``c``; an empty group matches everyone."""
    fields = fields_for(ctx)

    def node(item: Mapping[str, Any]) -> str:
        if is_group(item):
            parts = [node(inner) for inner in item["conditions"]]
            if not parts:
                return "true"
            joiner = " AND " if item["match"] == "all" else " OR "
            return "(" + joiner.join(f"({part})" for part in parts) + ")"
        return fields[item["field"]].sql(item, ctx, q)

    return node(definition)


def matching_sql(definition: Mapping[str, Any], ctx: Context, *, select: str = "c.id") -> Sql:
    """``SELECT <select> FROM contacts_contact AS c WHERE`` the account's contacts who
    match; the statement is in ``.sql``, its parameters in ``.params``."""
    q = Sql()
    account = q.p(ctx.account.pk)
    test = compile_sql(definition, ctx, q)
    return q.finish(
        f"SELECT {select} FROM contacts_contact AS c WHERE c.account_id = {account} AND {test}"
    )
