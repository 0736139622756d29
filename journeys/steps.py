"""A journey's steps: a list of steps, each a dict with an ``id`` and a ``type``; a
condition holds two more lists, ``yes`` and ``no``. After a branch, the way goes on with
the step that follows the condition.

    [{"id": "s1a2b3", "type": "email", "campaign": 12},
     {"id": "s4c5d6", "type": "wait", "amount": 2, "unit": "days"},
     {"id": "s7e8f9", "type": "condition",
      "definition": {"match": "all", "conditions": [
          {"field": "opened", "op": "ever", "campaign": 12}]},
      "yes": [{"id": "…", "type": "email", "campaign": 13}],
      "no": [{"id": "…", "type": "email", "campaign": 14}]}]

The types:
- ``email``: send the campaign ``campaign`` (of kind "journey", owned by the step);
- ``wait``: ``amount`` of ``unit`` (minutes, hours, days, weeks); or ``until``, a time of
  day ``time`` ("09:00") on one of ``weekdays`` (0 Monday … 6 Sunday), in the account's
  time zone or, with ``zone`` "contact", the contact's (their ``time_zone`` attribute);
- ``condition``: ``definition`` in the segment language (audiences.conditions), and the
  event's properties through ``event`` conditions;
- ``tag``: ``action`` add or remove ``tag`` (an id);
- ``list``: ``action`` subscribe or unsubscribe, ``list`` (an id);
- ``attribute``: set ``name`` to ``value``;
- ``exit``: leave the journey here.

Step ids are made once and kept by every later version, so that counts and enrolled
contacts follow a step from one version to the next.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TYPES: dict[str, str] = {
    "email": "Send an email",
    "wait": "Wait",
    "condition": "If / else",
    "tag": "Add or remove a tag",
    "list": "Subscribe or unsubscribe",
    "attribute": "Set an attribute",
    "exit": "Leave the journey",
}
UNITS: dict[str, dt.timedelta] = {
    "minutes": dt.timedelta(minutes=1),
    "hours": dt.timedelta(hours=1),
    "days": dt.timedelta(days=1),
    "weeks": dt.timedelta(weeks=1),
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_STEPS = 200
MAX_WAIT = dt.timedelta(days=730)
_ID = re.compile(r"^s[0-9a-f]{6,14}$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class StepsInvalid(ValueError):
    """The steps cannot be published; ``errors`` maps a step id (or "steps") to why."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def new_id() -> str:
    return "s" + secrets.token_hex(4)


@dataclass(frozen=True)
class Node:
    step: Mapping[str, Any]
    next: str | None  # the step after it (after a condition: after both branches)
    yes: str | None = None  # a condition's first step when it holds (else ``next``)
    no: str | None = None
    depth: int = 0
    branch: str = ""  # "yes" or "no" inside a condition


def _link(
    steps: Sequence[Mapping[str, Any]],
    after: str | None,
    nodes: dict[str, Node],
    depth: int,
    branch: str,
) -> None:
    for position, step in enumerate(steps):
        following = steps[position + 1]["id"] if position + 1 < len(steps) else after
        if step["type"] == "condition":
            yes, no = step.get("yes") or [], step.get("no") or []
            nodes[step["id"]] = Node(
                step,
                following,
                yes=yes[0]["id"] if yes else following,
                no=no[0]["id"] if no else following,
                depth=depth,
                branch=branch,
            )
            _link(yes, following, nodes, depth + 1, "yes")
            _link(no, following, nodes, depth + 1, "no")
        else:
            nodes[step["id"]] = Node(step, following, depth=depth, branch=branch)


def index(steps: Sequence[Mapping[str, Any]]) -> dict[str, Node]:
    """Each step by its id, with where the way goes after it. "" is the start: its
    ``next`` is the first step."""
    nodes: dict[str, Node] = {}
    _link(steps, None, nodes, 0, "")
    nodes[""] = Node({"id": "", "type": "start"}, steps[0]["id"] if steps else None)
    return nodes


def walk(steps: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every step, depth first, in reading order."""
    for step in steps:
        yield step
        if step.get("type") == "condition":
            yield from walk(step.get("yes") or [])
            yield from walk(step.get("no") or [])


def email_campaigns(steps: Sequence[Mapping[str, Any]]) -> list[int]:
    return [int(s["campaign"]) for s in walk(steps) if s.get("type") == "email"]


# -- finding and changing steps ---------------------------------------------------------------


def find(steps: list[dict[str, Any]], step_id: str) -> tuple[list[dict[str, Any]], int] | None:
    """The list holding the step, and its position there."""
    for position, step in enumerate(steps):
        if step.get("id") == step_id:
            return steps, position
        if step.get("type") == "condition":
            for branch in ("yes", "no"):
                found = find(step.setdefault(branch, []), step_id)
                if found:
                    return found
    return None


def insert(
    steps: list[dict[str, Any]], step: dict[str, Any], *, after: str = "", branch: str = ""
) -> None:
    """Put ``step`` after the step ``after`` (first with ""), or first in the ``branch``
    ("yes" or "no") of the condition ``after``."""
    if not after:
        steps.insert(0, step)
        return
    found = find(steps, after)
    if found is None:
        steps.append(step)
        return
    holder, position = found
    if branch in ("yes", "no") and holder[position].get("type") == "condition":
        holder[position].setdefault(branch, []).insert(0, step)
    else:
        holder.insert(position + 1, step)


def remove(steps: list[dict[str, Any]], step_id: str) -> dict[str, Any] | None:
    found = find(steps, step_id)
    if found is None:
        return None
    holder, position = found
    return holder.pop(position)


def move(steps: list[dict[str, Any]], step_id: str, offset: int) -> bool:
    """Move a step up (-1) or down (1) within its list."""
    found = find(steps, step_id)
    if found is None:
        return False
    holder, position = found
    target = position + offset
    if not 0 <= target < len(holder):
        return False
    holder[position], holder[target] = holder[target], holder[position]
    return True


# -- checking ---------------------------------------------------------------------------------


def _int(value: object, low: int, high: int) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None


def clean_wait(step: Mapping[str, Any]) -> dict[str, Any]:
    """A wait step's settings, checked; ValueError says what is wrong."""
    if step.get("until"):
        until = step["until"]
        if not isinstance(until, Mapping):
            raise ValueError("“until” must give a time and weekdays.")
        time = str(until.get("time") or "")
        if not _TIME.match(time):
            raise ValueError("Give the time of day as HH:MM, from 00:00 to 23:59.")
        days = until.get("weekdays")
        if days in (None, "", []):
            days = list(range(7))
        if not isinstance(days, list) or any(_int(d, 0, 6) is None for d in days):
            raise ValueError("Weekdays are numbers from 0 (Monday) to 6 (Sunday).")
        zone = until.get("zone") or "account"
        if zone not in ("account", "contact"):
            raise ValueError("The time zone is the account's or the contact's.")
        weekdays = sorted({int(str(d)) for d in days})
        return {
            "id": step["id"],
            "type": "wait",
            "until": {"time": time, "weekdays": weekdays, "zone": zone},
        }
    unit = step.get("unit") or "days"
    if unit not in UNITS:
        raise ValueError("Wait in minutes, hours, days or weeks.")
    amount = _int(step.get("amount"), 1, 100_000)
    if amount is None or UNITS[unit] * amount > MAX_WAIT:
        raise ValueError("Wait at least 1 and at most two years.")
    return {"id": step["id"], "type": "wait", "amount": amount, "unit": unit}


def _zone(name: object) -> zoneinfo.ZoneInfo | None:
    if not isinstance(name, str) or not name or len(name) > 64:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def wait_until(
    step: Mapping[str, Any],
    now: dt.datetime,
    account_zone: str,
    contact_attributes: Mapping[str, object] | None = None,
) -> dt.datetime:
    """When a wait that starts at ``now`` is over. Days and weeks are the local calendar's:
    a two-day wait begun at 10:00 ends at 10:00 local time, summer time or not."""
    zone = _zone(account_zone) or dt.UTC
    until = step.get("until")
    if until:
        if until.get("zone") == "contact" and contact_attributes:
            zone = _zone(contact_attributes.get("time_zone")) or zone
        hour, minute = (int(part) for part in until["time"].split(":"))
        local = now.astimezone(zone)
        for ahead in range(8):
            day = local.date() + dt.timedelta(days=ahead)
            if day.weekday() not in until["weekdays"]:
                continue
            # A time that does not exist that day (the clocks went forward) is read as the
            # same wall time after the change; a repeated one (they went back) is either
            # pass of it, the first still to come. Compared in UTC: wall times of one zone
            # compare without their fold.
            walls = [
                dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone, fold=fold)
                for fold in (0, 1)
            ]
            real = [w for w in walls if w.astimezone(dt.UTC).astimezone(zone).time() == w.time()]
            passes = sorted({w.astimezone(dt.UTC) for w in real or walls[:1]})
            for moment in passes:
                if moment > now.astimezone(dt.UTC):
                    return moment
        return (local + dt.timedelta(days=7)).astimezone(dt.UTC)
    delta = UNITS[step["unit"]] * int(step["amount"])
    if step["unit"] in ("days", "weeks"):
        local = now.astimezone(zone)
        wall = local.replace(tzinfo=None) + delta
        return dt.datetime.combine(wall.date(), wall.time(), tzinfo=zone).astimezone(dt.UTC)
    return now + delta


def describe_wait(step: Mapping[str, Any]) -> str:
    until = step.get("until")
    if until:
        days = until["weekdays"]
        when = "any day" if len(days) == 7 else ", ".join(WEEKDAYS[d] for d in days)
        zone = "the contact's" if until.get("zone") == "contact" else "the account's"
        return f"Until {until['time']} ({zone} time), {when}"
    amount, unit = int(step["amount"]), step["unit"]
    return f"{amount} {unit[:-1] if amount == 1 else unit}"


def check(
    steps: object,
    *,
    check_step: Any = None,
) -> list[dict[str, Any]]:
    """The steps, with each step's settings cleaned by ``check_step(step)`` (which raises
    ValueError naming what is wrong); StepsInvalid maps each bad step to its problem."""
    if not isinstance(steps, list):
        raise StepsInvalid({"steps": "The steps must be a list."})
    errors: dict[str, str] = {}
    seen: set[str] = set()
    count = 0

    def clean(items: object, where: str) -> list[dict[str, Any]]:
        nonlocal count
        if not isinstance(items, list):
            errors[where] = "A branch must be a list of steps."
            return []
        cleaned = []
        for item in items:
            count += 1
            if not isinstance(item, Mapping):
                errors[where] = "Each step is an object with an id and a type."
                continue
            step_id = str(item.get("id") or "")
            if not _ID.match(step_id) or step_id in seen:
                step_id = new_id()
            seen.add(step_id)
            kind = item.get("type")
            if kind not in TYPES:
                errors[step_id] = (
                    f"Unknown step type “{str(kind)[:40]}”: use one of {', '.join(TYPES)}."
                )
                continue
            step: dict[str, Any] = {**item, "id": step_id}
            try:
                if kind == "wait":
                    step = clean_wait(step)
                elif check_step is not None:
                    step = check_step(step)
            except ValueError as problem:
                errors[step_id] = str(problem)
            if kind == "condition":
                step["yes"] = clean(item.get("yes") or [], step_id)
                step["no"] = clean(item.get("no") or [], step_id)
            cleaned.append(step)
        return cleaned

    result = clean(steps, "steps")
    if count > MAX_STEPS:
        errors["steps"] = f"A journey has at most {MAX_STEPS} steps."
    if errors:
        raise StepsInvalid(errors)
    return result
