"""What the journeys and events API reads and writes. Input serializers check shapes and
JSON types, and refuse fields they do not know (a misspelt ``idempotency_key`` must not
be dropped in silence); the rules (a trigger's list is the account's, the steps can be
published, the entry rule) live in journeys.services."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from drf_spectacular.extensions import (
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.fields import StrictJSONMixin
from accounts.models import validate_single_line
from accounts.query import BIGINT_MAX
from audiences.api import DEFINITION_SCHEMA
from campaigns.api.serializers import AccountObjectField, AwareDateTimeField
from contacts.api.serializers import AddressField
from contacts.models import ContactList
from journeys import selectors, services
from journeys import steps as stepping
from journeys.engine import EVENT_OPS
from journeys.models import Enrollment, Journey
from journeys.services import INSIDE_CHOICES, MAX_PROPERTIES_BYTES
from journeys.starters import STARTERS

MAX_CONTACTS = 1000
# An event's name as journeys.services reads it, and its properties' names (no dot nor
# dash: they are read as {{ event.NAME }} in messages).
EVENT_NAME = services.EVENT_NAME.pattern
PROPERTY_NAME = r"^[A-Za-z0-9_]{1,100}$"
# Visible ASCII: what a header carries unchanged, and what a client's key is made of.
IDEMPOTENCY_KEY = r"^[!-~]{1,200}$"
STEP_ID = r"^s[0-9a-f]{6,14}$"
_STEP_ID = re.compile(STEP_ID)
_PROPERTY_NAME = re.compile(PROPERTY_NAME)


# -- refusing what is not known ----------------------------------------------------------------


# For the serializers of request bodies: a field the serializer does not take is refused,
# by name. (A comment, not a docstring: drf-spectacular would show it on every schema.)
class ClosedSerializer(StrictJSONMixin, serializers.Serializer):
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = {field.field_name for field in self._writable_fields}
            unknown = sorted(str(name) for name in data if name not in known)
            if unknown:
                raise serializers.ValidationError(
                    {
                        name[:100]: [f"Unknown field: this request takes {_names(known)}."]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


def _names(names: set[str | None]) -> str:
    return ", ".join(sorted(str(n) for n in names if n)) or "no field"


class ClosedSerializerSchema(OpenApiSerializerExtension):
    """Says in the schema that a request body takes no other field."""

    target_class = ClosedSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


# -- states, by their own names in the schema --------------------------------------------------


def named_enum(
    enum_name: str, choices: list[tuple[str, str]]
) -> Callable[..., serializers.ChoiceField]:
    """A choice field whose values are the enum ``enum_name`` in the schema: left to
    drf-spectacular, the names of these (``status``, ``type``, ``reason``) would clash with
    those of other resources."""

    class NamedChoiceField(serializers.ChoiceField):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(choices=choices, **kwargs)

    class NamedChoiceSchema(OpenApiSerializerFieldExtension):
        target_class = NamedChoiceField

        def get_name(self) -> str:
            return enum_name

        def map_serializer_field(self, auto_schema: object, direction: str) -> dict:
            return {"type": "string", "enum": [value for value, _label in choices]}

    return NamedChoiceField


JourneyStatusField = named_enum("JourneyStatusEnum", Journey.Status.choices)
EnrollmentStatusField = named_enum("EnrollmentStatusEnum", Enrollment.Status.choices)
StepTypeField = named_enum("StepTypeEnum", list(stepping.TYPES.items()))
StarterField = named_enum("JourneyStarterEnum", [(s.key, s.name) for s in STARTERS])
RefusalField = named_enum(
    "EnrollRefusalEnum",
    [("entry_rule", "The entry rule"), ("not_subscribed", "Not subscribed")],
)


# -- JSON documents: triggers, goals, steps, properties ----------------------------------------

ID = {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX}
TRIGGER_CONFIG_SCHEMA = {
    "description": "What the trigger names, by trigger: `subscribed` {list}, `tag_added` "
    "{tag}, `segment` {segment}, `date` {attribute (a date attribute), days (after the "
    "date; negative: before, -366 to 366), yearly}, `event` {event (its name)}, `clicked` "
    "{campaign, link (one of its links, or null for any)}. Left out, the trigger is chosen "
    "later: the journey cannot start until it is.",
    "oneOf": [
        {
            "type": "object",
            "required": ["list"],
            "additionalProperties": False,
            "properties": {"list": ID},
        },
        {
            "type": "object",
            "required": ["tag"],
            "additionalProperties": False,
            "properties": {"tag": ID},
        },
        {
            "type": "object",
            "required": ["segment"],
            "additionalProperties": False,
            "properties": {"segment": ID},
        },
        {
            "type": "object",
            "required": ["attribute"],
            "additionalProperties": False,
            "properties": {
                "attribute": {"type": "string", "minLength": 1, "maxLength": 100},
                "days": {"type": "integer", "minimum": -366, "maximum": 366},
                "yearly": {"type": "boolean"},
            },
        },
        {
            "type": "object",
            "required": ["event"],
            "additionalProperties": False,
            "properties": {"event": {"type": "string", "pattern": EVENT_NAME}},
        },
        {
            "type": "object",
            "required": ["campaign"],
            "additionalProperties": False,
            "properties": {"campaign": ID, "link": {**ID, "nullable": True}},
        },
    ],
    "example": {"list": 12},
}
GOAL_SCHEMA = {
    "description": "Ends the journey early for whoever meets it: an event of theirs "
    "recorded after they entered, or being in a segment. null: no goal.",
    "nullable": True,
    "oneOf": [
        {
            "type": "object",
            "required": ["event"],
            "additionalProperties": False,
            "properties": {"event": {"type": "string", "pattern": EVENT_NAME}},
        },
        {
            "type": "object",
            "required": ["segment"],
            "additionalProperties": False,
            "properties": {"segment": ID},
        },
    ],
    "example": {"event": "order_placed"},
}

# The settings each type of step takes, beside its id and type.
SETTINGS: dict[str, tuple[str, ...]] = {
    "email": ("campaign",),
    "wait": ("amount", "unit", "until"),
    "condition": ("definition", "event", "yes", "no"),
    "tag": ("action", "tag"),
    "list": ("action", "list"),
    "attribute": ("name", "value"),
    "exit": (),
}
# What PATCH …/steps/{step_id}/ may change (an email step's message is its campaign's; a
# condition's branches are steps of their own).
CHANGEABLE = (
    "amount",
    "unit",
    "until",
    "definition",
    "event",
    "action",
    "tag",
    "list",
    "name",
    "value",
)
SCALAR = {"nullable": True, "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]}
EVENT_TEST_SCHEMA = {
    "type": "object",
    "required": ["property", "op"],
    "additionalProperties": False,
    "properties": {
        "property": {"type": "string", "pattern": PROPERTY_NAME},
        "op": {"type": "string", "enum": list(EVENT_OPS)},
        "value": SCALAR,
    },
}
UNTIL_SCHEMA = {
    "type": "object",
    "required": ["time"],
    "additionalProperties": False,
    "properties": {
        "time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
        "weekdays": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 6}},
        "zone": {"type": "string", "enum": ["account", "contact"]},
    },
}
STEP_SCHEMA = {
    "type": "object",
    "required": ["type"],
    "description": "A step: its `id` (made by Missive and kept by every later version; "
    "leave it out for a new step), its `type`, and that type's settings. `email`: "
    "`campaign`, the id of one of this journey's emails (made by adding an email step; "
    "write it through `/api/v1/campaigns/{id}/`). `wait`: `amount` and `unit`, or `until` "
    "a time of day (`time` HH:MM, `weekdays` 0 Monday to 6 Sunday, `zone` account or "
    "contact). `condition`: `definition` in the segment language, and `event` tests of "
    "the event's properties; `yes` and `no`, the steps of each branch (the way goes on "
    "after the condition). `tag`: `action` add or remove, `tag` (an id). `list`: `action` "
    "subscribe or unsubscribe, `list` (an id). `attribute`: set `name` to `value`. "
    "`exit`: leave the journey.",
    "properties": {
        "id": {"type": "string", "pattern": STEP_ID},
        # A pattern, not an enum: drf-spectacular would take an enum out as a component
        # named after the property, and "type" is taken.
        "type": {"type": "string", "pattern": f"^({'|'.join(stepping.TYPES)})$"},
        "campaign": ID,
        "amount": {"type": "integer", "minimum": 1, "maximum": 100_000},
        "unit": {"type": "string", "enum": list(stepping.UNITS)},
        "until": UNTIL_SCHEMA,
        "definition": DEFINITION_SCHEMA,
        "event": {"type": "array", "items": EVENT_TEST_SCHEMA},
        "yes": {"type": "array", "items": {"type": "object"}},
        "no": {"type": "array", "items": {"type": "object"}},
        "action": {"type": "string", "enum": ["add", "remove", "subscribe", "unsubscribe"]},
        "tag": {**ID, "nullable": True},
        "list": {**ID, "nullable": True},
        "name": {"type": "string", "maxLength": 100},
        "value": SCALAR,
    },
    "example": {"id": "s1a2b3c4", "type": "wait", "amount": 2, "unit": "days"},
}
STEPS_SCHEMA = {
    "type": "array",
    "maxItems": stepping.MAX_STEPS,
    "items": STEP_SCHEMA,
    "example": [
        {"type": "wait", "amount": 1, "unit": "days"},
        {"type": "exit"},
    ],
}
PROPERTY_VALUE = {
    "nullable": True,
    "oneOf": [
        {"type": "string", "pattern": r"^[^\x00]*$"},
        {"type": "number"},
        {"type": "boolean"},
        {
            "type": "array",
            "maxItems": 100,
            "items": {
                "nullable": True,
                "oneOf": [
                    {"type": "string", "pattern": r"^[^\x00]*$"},
                    {"type": "number"},
                    {"type": "boolean"},
                ],
            },
        },
    ],
}
PROPERTIES_SCHEMA = {
    "type": "object",
    "description": "What happened, by name (letters, digits and `_`): text, numbers, "
    "booleans, null, or lists of them (up to 100 each); at most "
    f"{MAX_PROPERTIES_BYTES} bytes as JSON. Messages show them as `{{{{ event.NAME }}}}`; "
    "conditions test them.",
    "additionalProperties": PROPERTY_VALUE,
    "example": {"order_id": "A-1042", "total": 59.9, "items": ["mug", "tea"]},
}


def _scalar_error(value: object) -> str | None:
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "Numbers must be finite."
    if isinstance(value, str):
        return "Text may not hold a NUL character." if "\x00" in value else None
    return "Expected text, a number, a boolean or null."


def _text_error(value: object, what: str = "a string") -> str | None:
    if not isinstance(value, str):
        return f"Expected {what}."
    return "Text may not hold a NUL character." if "\x00" in value else None


def _id_error(value: object, *, nullable: bool = False) -> str | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= BIGINT_MAX:
        return "Expected an id (a positive integer)."
    return None


def _nul_free(value: object) -> bool:
    """Whether no text in a JSON value holds a NUL character (PostgreSQL's jsonb refuses
    one) and no number is infinite."""
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(_nul_free(k) and _nul_free(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_nul_free(v) for v in value)
    return True


def _setting_error(kind: str, name: str, value: object) -> str | None:
    """Why ``value`` cannot be the setting ``name`` of a step of type ``kind``, by its JSON
    type (the services judge the rest)."""
    if name not in SETTINGS[kind]:
        allowed = ", ".join(SETTINGS[kind]) or "no setting"
        return f"Not a setting of a {kind} step (it takes {allowed})."
    if name == "campaign":
        return _id_error(value)
    if name in ("tag", "list"):
        return _id_error(value, nullable=True)
    if name == "amount":
        if isinstance(value, bool) or not isinstance(value, int):
            return "Expected an integer."
        return None
    if name in ("unit", "action", "name"):
        return _text_error(value)
    if name == "until":
        if value is None:
            return None
        if not isinstance(value, Mapping) or not _nul_free(value):
            return "Expected an object: time, weekdays and zone."
        unknown = set(value) - {"time", "weekdays", "zone"}
        if unknown:
            return f"“until” takes time, weekdays and zone, not {sorted(unknown)[0][:40]}."
        if "time" in value and _text_error(value["time"]):
            return "Give the time of day as HH:MM."
        if "zone" in value and _text_error(value["zone"]):
            return "The zone is account or contact."
        weekdays = value.get("weekdays") or []
        if not isinstance(weekdays, list) or any(
            isinstance(d, bool) or not isinstance(d, int) for d in weekdays
        ):
            return "Weekdays are a list of numbers from 0 (Monday) to 6 (Sunday)."
        return None
    if name == "definition":
        if not isinstance(value, Mapping) or not _nul_free(value):
            return "Expected an object: match and conditions."
        return None
    if name == "event":
        if not isinstance(value, list):
            return "Expected a list of tests of the event's properties."
        for test in value:
            if not isinstance(test, Mapping) or set(test) - {"property", "op", "value"}:
                return "Each test is an object of property, op and value."
            if _text_error(test.get("property")) or _text_error(test.get("op")):
                return "Each test names a property and an operator."
            if _scalar_error(test.get("value")):
                return "A test's value is text, a number, a boolean or null."
        return None
    if name in ("yes", "no"):
        return None if isinstance(value, list) else "Expected a list of steps."
    return _scalar_error(value)  # an attribute's value


def steps_shape_errors(steps: object, path: str = "steps") -> dict[str, str]:
    """Each part of a steps document whose JSON shape is wrong, by path (``steps.2.yes.0
    .amount``): what journeys.services.check_steps can then read without surprise."""
    errors: dict[str, str] = {}
    if not isinstance(steps, list):
        return {path: "Expected a list of steps."}
    for position, step in enumerate(steps):
        here = f"{path}.{position}"
        if not isinstance(step, Mapping):
            errors[here] = "Each step is an object with a type."
            continue
        kind = step.get("type")
        if not isinstance(kind, str) or kind not in stepping.TYPES:
            errors[f"{here}.type"] = f"Use one of {', '.join(stepping.TYPES)}."
            continue
        if "id" in step:
            step_id = step["id"]
            if not isinstance(step_id, str) or not _STEP_ID.match(step_id):
                errors[f"{here}.id"] = (
                    "Leave the id out for a new step, or give the one Missive made."
                )
        for name, value in step.items():
            if name in ("id", "type"):
                continue
            problem = _setting_error(kind, str(name), value)
            if problem:
                errors[f"{here}.{str(name)[:100]}"] = problem
        if kind == "condition":
            for branch in ("yes", "no"):
                if isinstance(step.get(branch), list):
                    errors.update(steps_shape_errors(step[branch], f"{here}.{branch}"))
    return errors


@extend_schema_field(STEPS_SCHEMA)
class StepsField(serializers.JSONField):
    """A steps document (journeys/steps.py): its shape is checked by the serializer that
    holds it (each error under its path), its rules by the services."""


class StepSerializer(serializers.Serializer):
    """One step, as the draft holds it (STEP_SCHEMA)."""


class StepSchema(OpenApiSerializerExtension):
    target_class = StepSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict:
        return STEP_SCHEMA


@extend_schema_field(TRIGGER_CONFIG_SCHEMA)
class TriggerConfigField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict) or not _nul_free(data):
            raise serializers.ValidationError("Expected an object naming what the trigger reads.")
        return super().to_internal_value(data)


@extend_schema_field(GOAL_SCHEMA)
class GoalField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        # null is allow_null's to take, before this is asked.
        if not isinstance(data, dict) or not _nul_free(data):
            raise serializers.ValidationError("Expected an object: an event or a segment.")
        if len(data) != 1 or set(data) - {"event", "segment"}:
            raise serializers.ValidationError("A goal is one of: an event, a segment.")
        return super().to_internal_value(data)


@extend_schema_field(PROPERTIES_SCHEMA)
class PropertiesField(serializers.JSONField):
    """An event's properties: the names and the kinds of values the schema states; their
    size is the services' to judge."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object of names and values.")
        for name, value in data.items():
            if not isinstance(name, str) or not _PROPERTY_NAME.match(name):
                raise serializers.ValidationError(
                    f"“{str(name)[:40]}” is not a property name: letters, digits and _."
                )
            items = value if isinstance(value, list) else [value]
            if isinstance(value, list) and len(value) > 100:
                raise serializers.ValidationError(f"“{name}”: at most 100 values in a list.")
            for item in items:
                problem = _scalar_error(item)
                if problem:
                    raise serializers.ValidationError(f"“{name}”: {problem}")
        return super().to_internal_value(data)


# -- journeys ---------------------------------------------------------------------------------


S = Journey.Status
# What may be done to a journey in each state: the services check again, with the row
# locked; this answers the common case with 409 and tells clients what they may do.
ACTIONS: dict[str, tuple[str, ...]] = {
    "edit": (S.DRAFT, S.LIVE, S.PAUSED, S.CLOSING),
    "publish": (S.DRAFT, S.LIVE, S.PAUSED, S.CLOSING),
    "start": (S.DRAFT,),
    "pause": (S.LIVE, S.CLOSING),
    "resume": (S.PAUSED,),
    "close": (S.LIVE, S.PAUSED, S.CLOSING),
    "enroll": (S.LIVE,),
    "delete": tuple(S.values),
}


def allowed_actions(journey: Journey) -> list[str]:
    return [action for action, states in ACTIONS.items() if journey.status in states]


class JourneySerializer(serializers.Serializer):
    """A journey, as listed."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    status = JourneyStatusField()
    trigger = serializers.ChoiceField(choices=Journey.Trigger.choices)
    trigger_config = serializers.SerializerMethodField()
    entry = serializers.ChoiceField(
        choices=Journey.Entry.choices,
        help_text="Who may enter again: `once` ever, `one_at_a_time`, or `every_time` the "
        "trigger fires.",
    )
    version = serializers.SerializerMethodField(
        help_text="The number of the version new contacts enter; null until published."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(
        {
            "type": "object",
            "description": TRIGGER_CONFIG_SCHEMA["description"],
            "example": TRIGGER_CONFIG_SCHEMA["example"],
        }
    )
    def get_trigger_config(self, journey: Journey) -> dict[str, Any]:
        return dict(journey.trigger_config or {})

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_version(self, journey: Journey) -> int | None:
        return journey.version.number if journey.version_id and journey.version else None


class EmailFiguresSerializer(serializers.Serializer):
    sent = serializers.IntegerField()
    opened = serializers.IntegerField(help_text="People, not machines.")
    clicked = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()


class StepFiguresSerializer(serializers.Serializer):
    reached = serializers.IntegerField(help_text="Enrollments that reached it, all versions.")
    waiting = serializers.IntegerField(help_text="Resting there now.")
    passed = serializers.IntegerField()
    email = EmailFiguresSerializer(allow_null=True, help_text="For an email step.")


class TotalsSerializer(serializers.Serializer):
    inside = serializers.IntegerField(help_text="In the journey now.")
    completed = serializers.IntegerField()
    exited = serializers.IntegerField(help_text="Left before the end.")
    entered = serializers.IntegerField(help_text="Every enrollment, kept or finished.")


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "description": GOAL_SCHEMA["description"],
        "example": GOAL_SCHEMA["example"],
    }
)
class GoalOutField(serializers.JSONField):
    """A goal as stored: {"event": name}, {"segment": id} or null."""


class JourneyDetailSerializer(JourneySerializer):
    """A journey with its settings, steps and figures."""

    goal = GoalOutField(allow_null=True)
    exit_on_unsubscribe = serializers.BooleanField(
        help_text="Whoever is subscribed to none of the journey's lists leaves it."
    )
    lists = serializers.SerializerMethodField(
        help_text="Ids of the lists its emails go to (every list of the account when none)."
    )
    steps = serializers.SerializerMethodField(
        help_text="The draft: the steps being edited, published as a version."
    )
    published_steps = serializers.SerializerMethodField(
        help_text="The steps of the version new contacts enter; null if none."
    )
    draft_changed = serializers.SerializerMethodField(
        help_text="Whether the draft differs from the published steps."
    )
    totals = serializers.SerializerMethodField()
    figures = serializers.SerializerMethodField(
        help_text="Each step's counts, by step id (the draft's steps and the published ones)."
    )
    problems = serializers.SerializerMethodField(
        help_text="What stands between the journey and starting or publishing it."
    )
    actions = serializers.SerializerMethodField(
        help_text="What may be done in its state: " + ", ".join(f"`{a}`" for a in ACTIONS) + "."
    )

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_lists(self, journey: Journey) -> list[int]:
        return sorted(journey.lists.values_list("pk", flat=True))

    @extend_schema_field(STEPS_SCHEMA)
    def get_steps(self, journey: Journey) -> list[dict[str, Any]]:
        return list(journey.draft or [])

    @extend_schema_field({**STEPS_SCHEMA, "nullable": True})
    def get_published_steps(self, journey: Journey) -> list[dict[str, Any]] | None:
        return list(journey.version.steps) if journey.version_id and journey.version else None

    @extend_schema_field(serializers.BooleanField())
    def get_draft_changed(self, journey: Journey) -> bool:
        return services.draft_changed(journey)

    @extend_schema_field(TotalsSerializer)
    def get_totals(self, journey: Journey) -> dict[str, Any]:
        return TotalsSerializer(selectors.totals(journey)).data

    @extend_schema_field(serializers.DictField(child=StepFiguresSerializer()))
    def get_figures(self, journey: Journey) -> dict[str, Any]:
        published = journey.version.steps if journey.version_id and journey.version else []
        figures = selectors.step_figures(journey, [*published, *(journey.draft or [])])
        return {
            step_id: StepFiguresSerializer(
                {
                    "reached": f.reached,
                    "waiting": f.waiting,
                    "passed": f.passed,
                    "email": f.email,
                }
            ).data
            for step_id, f in figures.items()
        }

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_problems(self, journey: Journey) -> list[str]:
        return services.start_problems(journey)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_actions(self, journey: Journey) -> list[str]:
        return allowed_actions(journey)


class JourneyFilterSerializer(serializers.Serializer):
    status = JourneyStatusField(required=False, help_text="Only journeys in this state.")


class JourneyCreateSerializer(ClosedSerializer):
    name = serializers.CharField(max_length=200, validators=[validate_single_line])
    starter = StarterField(
        required=False,
        help_text="Start from this starter's trigger, entry rule, steps and emails; choose "
        "its list, tag or segment afterwards with PATCH. Not with `trigger`, "
        "`trigger_config` or `entry`.",
    )
    trigger = serializers.ChoiceField(
        choices=Journey.Trigger.choices,
        default=Journey.Trigger.SUBSCRIBED,
        help_text="What makes a contact enter.",
    )
    trigger_config = TriggerConfigField(required=False)
    entry = serializers.ChoiceField(
        choices=Journey.Entry.choices,
        default=Journey.Entry.ONCE,
        help_text="`once` ever, `one_at_a_time`, or `every_time` the trigger fires.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("starter"):
            given = [f for f in ("trigger", "trigger_config", "entry") if f in self.initial_data]
            if given:
                raise serializers.ValidationError(
                    dict.fromkeys(given, "A starter brings its own: leave this out.")
                )
        return data


class JourneyCreateSchema(OpenApiSerializerExtension):
    """Says in the schema what ``validate`` refuses: a starter with a trigger or entry."""

    target_class = JourneyCreateSerializer
    priority = 1  # before ClosedSerializerSchema, which it extends

    def map_serializer(self, auto_schema: Any, direction: str) -> dict:
        schema = ClosedSerializerSchema(self.target).map_serializer(auto_schema, direction)
        if direction == "request":
            schema["allOf"] = [
                {"not": {"required": ["starter", field]}}
                for field in ("trigger", "trigger_config", "entry")
            ]
        return schema


class JourneyUpdateSerializer(ClosedSerializer):
    name = serializers.CharField(max_length=200, required=False, validators=[validate_single_line])
    trigger = serializers.ChoiceField(
        choices=Journey.Trigger.choices,
        required=False,
        help_text="Only while a draft. With a new trigger, give its `trigger_config`.",
    )
    trigger_config = TriggerConfigField(required=False)
    entry = serializers.ChoiceField(
        choices=Journey.Entry.choices, required=False, help_text="Only while a draft."
    )
    goal = GoalField(required=False, allow_null=True)
    exit_on_unsubscribe = serializers.BooleanField(required=False)
    lists = AccountObjectField(
        queryset=ContactList.objects.none(),
        many=True,
        required=False,
        error_messages={"does_not_exist": "No list with id {pk_value}."},
        help_text="Ids of the lists its emails may go to (none: every list of the account).",
    )


class StepsSerializer(ClosedSerializer):
    steps = StepsField(help_text="The whole draft, replacing the one stored.")

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        errors = steps_shape_errors(data["steps"])
        if errors:
            raise serializers.ValidationError({path: [m] for path, m in errors.items()})
        return data


class StepAddSerializer(ClosedSerializer):
    type = StepTypeField()
    after = serializers.RegexField(
        r"^(s[0-9a-f]{6,14})?$",
        required=False,
        default="",
        allow_blank=True,
        trim_whitespace=False,
        help_text="The id of the step to put it after; left out or blank: first.",
    )
    branch = serializers.ChoiceField(
        choices=[("yes", "yes"), ("no", "no")],
        required=False,
        help_text="With `after` a condition: first in this branch of it.",
    )


class StepSettingsSerializer(ClosedSerializer):
    """The settings to change, by the step's type: the others are kept."""

    amount = serializers.IntegerField(required=False, min_value=1, max_value=100_000)
    unit = serializers.ChoiceField(choices=list(stepping.UNITS), required=False)
    until = serializers.JSONField(required=False, allow_null=True)
    definition = serializers.JSONField(required=False)
    event = serializers.JSONField(required=False)
    action = serializers.ChoiceField(
        choices=["add", "remove", "subscribe", "unsubscribe"], required=False
    )
    tag = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=BIGINT_MAX
    )
    list = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=BIGINT_MAX
    )
    name = serializers.CharField(required=False, max_length=100, allow_blank=True)
    value = serializers.JSONField(required=False, allow_null=True)


class StepSettingsSchema(OpenApiSerializerExtension):
    """The settings' JSON shapes, as STEP_SCHEMA states them."""

    target_class = StepSettingsSerializer
    priority = 1  # before ClosedSerializerSchema, which it extends

    def map_serializer(self, auto_schema: Any, direction: str) -> dict:
        properties = {
            name: STEP_SCHEMA["properties"][name]  # type: ignore[index]
            for name in CHANGEABLE
        }
        return {"type": "object", "additionalProperties": False, "properties": properties}


class JourneyPublishSerializer(ClosedSerializer):
    move = serializers.BooleanField(
        default=False,
        help_text="Move those inside to the new version, from the step they are at (those "
        "at a step it no longer has finish theirs). false: they finish the one they entered.",
    )


class PublishPreviewSerializer(serializers.Serializer):
    movable = serializers.IntegerField(help_text="Inside, at a step the draft still has.")
    staying = serializers.IntegerField(help_text="Inside, at a step the draft no longer has.")
    draft_changed = serializers.BooleanField()
    problems = serializers.ListField(
        child=serializers.CharField(), help_text="Why it cannot be published now, if it cannot."
    )


class PublishedSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="The number of the new version.")
    moved = serializers.IntegerField(help_text="Enrollments moved to it.")
    staying = serializers.IntegerField(help_text="Enrollments left in older versions.")


class CloseSerializer(ClosedSerializer):
    inside = serializers.ChoiceField(
        choices=list(INSIDE_CHOICES.items()),
        help_text="`finish`: no one new enters, it ends when the last one inside is through; "
        "`remove`: everyone inside leaves now and it ends.",
    )


class DeleteParamsSerializer(serializers.Serializer):
    inside = serializers.ChoiceField(
        choices=[("remove", INSIDE_CHOICES["remove"])],
        required=False,
        help_text="`remove`: take out the contacts inside. Required while there are some.",
    )


# -- enrollments ------------------------------------------------------------------------------


class EnrollmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    journey = serializers.IntegerField(source="journey_id")
    contact_id = serializers.IntegerField()
    email = serializers.EmailField(source="contact.email")
    status = EnrollmentStatusField()
    step = serializers.CharField(help_text="The id of the step they are at; blank at the start.")
    step_type = serializers.SerializerMethodField(
        help_text="That step's type in their version; `start` before the first."
    )
    version = serializers.IntegerField(source="version.number")
    entered_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField(
        allow_null=True, help_text="When their next step runs, while inside."
    )
    finished_at = serializers.DateTimeField(allow_null=True)
    outcome = serializers.CharField(help_text="Why it ended, once it has.")
    context = serializers.DictField(  # type: ignore[assignment]  # a declared field: DRF takes it off the class
        help_text="The properties of the event that made them enter."
    )

    @extend_schema_field(serializers.CharField())
    def get_step_type(self, enrollment: Enrollment) -> str:
        return step_type(enrollment.version.steps, enrollment.step)


def step_type(steps: list[dict[str, Any]], step_id: str) -> str:
    if not step_id:
        return "start"
    for step in stepping.walk(steps):
        if step.get("id") == step_id:
            return str(step.get("type", ""))
    return ""


class HistorySerializer(serializers.Serializer):
    step = serializers.CharField()
    step_type = serializers.CharField()
    at = serializers.DateTimeField()


class EnrollmentDetailSerializer(EnrollmentSerializer):
    history = serializers.SerializerMethodField(help_text="The steps reached, in order.")

    @extend_schema_field(HistorySerializer(many=True))
    def get_history(self, enrollment: Enrollment) -> list[dict[str, Any]]:
        steps = enrollment.version.steps
        return [
            {"step": step, "step_type": step_type(steps, step), "at": at}
            for step, at in (enrollment.history or [])
        ]


class EnrollmentFilterSerializer(serializers.Serializer):
    status = EnrollmentStatusField(required=False, help_text="Only enrollments in this state.")
    contact = serializers.IntegerField(
        required=False, min_value=1, max_value=BIGINT_MAX, help_text="Only this contact's (id)."
    )
    email = AddressField(
        required=False, allow_blank=True, help_text="Only the contact's with this address."
    )


class EnrollSerializer(ClosedSerializer):
    contact_id = serializers.IntegerField(
        required=False, min_value=1, max_value=BIGINT_MAX, help_text="A contact's id."
    )
    email = AddressField(required=False, max_length=254, help_text="A contact's address.")
    contact_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
        required=False,
        max_length=MAX_CONTACTS,
        help_text=f"Contacts' ids (up to {MAX_CONTACTS} in all).",
    )
    emails = serializers.ListField(
        child=AddressField(max_length=254),
        required=False,
        max_length=MAX_CONTACTS,
        help_text="Contacts' addresses.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        count = (
            int("contact_id" in data)
            + int("email" in data)
            + len(data.get("contact_ids", []))
            + len(data.get("emails", []))
        )
        if count == 0:
            raise serializers.ValidationError(
                "Name the contacts: contact_id, email, contact_ids or emails."
            )
        if count > MAX_CONTACTS:
            raise serializers.ValidationError(f"At most {MAX_CONTACTS} contacts at a time.")
        return data


class EnrollSchema(OpenApiSerializerExtension):
    target_class = EnrollSerializer
    priority = 1  # before ClosedSerializerSchema, which it extends

    def map_serializer(self, auto_schema: Any, direction: str) -> dict:
        schema = ClosedSerializerSchema(self.target).map_serializer(auto_schema, direction)
        if direction == "request":
            schema["anyOf"] = [
                {"required": ["contact_id"]},
                {"required": ["email"]},
                {"required": ["contact_ids"], "properties": {"contact_ids": {"minItems": 1}}},
                {"required": ["emails"], "properties": {"emails": {"minItems": 1}}},
            ]
        return schema


class EnrolledContactSerializer(serializers.Serializer):
    contact_id = serializers.IntegerField()
    email = serializers.EmailField()
    enrollment = serializers.IntegerField(help_text="The new enrollment's id.")


class RefusedContactSerializer(serializers.Serializer):
    contact_id = serializers.IntegerField()
    email = serializers.EmailField()
    reason = RefusalField(
        help_text="`entry_rule`: the journey's entry rule keeps them out (they entered "
        "before, or are inside now); `not_subscribed`: subscribed to none of its lists.",
    )
    detail = serializers.CharField()


class EnrolledSerializer(serializers.Serializer):
    enrolled = EnrolledContactSerializer(many=True)
    not_enrolled = RefusedContactSerializer(many=True)


# -- events -----------------------------------------------------------------------------------


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    contact_id = serializers.IntegerField()
    email = serializers.EmailField(source="contact.email")
    name = serializers.CharField()
    properties = PropertiesField()
    occurred_at = serializers.DateTimeField()
    idempotency_key = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField(help_text="When Missive recorded it.")


class EventRecordedSerializer(EventSerializer):
    enrolled = serializers.SerializerMethodField(
        help_text="Entries into the journeys it started (0 when the key was seen before)."
    )

    @extend_schema_field(serializers.IntegerField())
    def get_enrolled(self, event: Any) -> int:
        return int(self.context["enrolled"])


class EventCreateSerializer(ClosedSerializer):
    email = AddressField(
        required=False, max_length=254, help_text="The contact's address (or `contact_id`)."
    )
    contact_id = serializers.IntegerField(
        required=False, min_value=1, max_value=BIGINT_MAX, help_text="The contact's id."
    )
    name = serializers.RegexField(
        EVENT_NAME,
        trim_whitespace=False,
        help_text="What happened: letters, digits, `_`, `.` or `-` (order_placed).",
    )
    properties = PropertiesField(required=False, default=dict)
    occurred_at = AwareDateTimeField(
        required=False,
        help_text="ISO 8601 with its offset; left out, now. A goal counts events that "
        "occurred after the contact entered.",
    )
    idempotency_key = serializers.RegexField(
        IDEMPOTENCY_KEY,
        required=False,
        trim_whitespace=False,
        help_text="As the `Idempotency-Key` header, for clients that cannot set headers.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if ("email" in data) == ("contact_id" in data):
            raise serializers.ValidationError("Name the contact: by email or by contact_id.")
        return data


class EventCreateSchema(OpenApiSerializerExtension):
    target_class = EventCreateSerializer
    priority = 1  # before ClosedSerializerSchema, which it extends

    def map_serializer(self, auto_schema: Any, direction: str) -> dict:
        schema = ClosedSerializerSchema(self.target).map_serializer(auto_schema, direction)
        if direction == "request":
            schema["oneOf"] = [{"required": ["email"]}, {"required": ["contact_id"]}]
        return schema


class EventFilterSerializer(serializers.Serializer):
    contact = serializers.IntegerField(
        required=False, min_value=1, max_value=BIGINT_MAX, help_text="Only this contact's (id)."
    )
    email = AddressField(
        required=False, allow_blank=True, help_text="Only the contact's with this address."
    )
    name = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="Only events of this name."
    )
