"""The journey pages' forms. They read what was typed into the shape the services take
(journeys.services checks it against the account and says what is wrong); a form only
refuses what it can tell alone: a missing value, a number out of range."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from django import forms

from accounts.models import Account, validate_single_line
from audiences.models import Segment
from campaigns.models import Campaign, Link
from contacts.models import AttributeDefinition, ContactList, Tag
from journeys import steps as stepping
from journeys.engine import EVENT_OPS
from journeys.models import Journey
from journeys.services import INSIDE_CHOICES
from journeys.starters import STARTERS

T = Journey.Trigger
EMPTY = "empty"


class Form(forms.Form):
    """A form whose labels end with no colon, as the rest of the pages write them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class NewJourneyForm(Form):
    name = forms.CharField(
        max_length=200,
        validators=[validate_single_line],
        widget=forms.TextInput(attrs={"placeholder": "Welcome series"}),
    )
    starter = forms.ChoiceField(
        label="Start from",
        choices=[(s.key, s.name) for s in STARTERS] + [(EMPTY, "An empty journey")],
        initial=STARTERS[0].key,
        widget=forms.RadioSelect,
    )


class _LinkChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.campaign.name}: {obj.url[:80]}"


class JourneySettingsForm(Form):
    """A journey's settings; the trigger's own fields show for the chosen trigger."""

    name = forms.CharField(max_length=200, validators=[validate_single_line])
    trigger = forms.ChoiceField(label="Starts when a contact…", choices=T.choices)
    trigger_list = forms.ModelChoiceField(
        queryset=ContactList.objects.none(),
        required=False,
        label="List they subscribe to",
        empty_label="Choose a list",
        help_text="Confirmed subscriptions from now on: imports do not start it.",
    )
    trigger_tag = forms.ModelChoiceField(
        queryset=Tag.objects.none(), required=False, label="Tag they get", empty_label="Choose"
    )
    trigger_segment = forms.ModelChoiceField(
        queryset=Segment.objects.none(),
        required=False,
        label="Segment they enter",
        empty_label="Choose a segment",
        help_text="Those already in it when the journey starts do not enter.",
    )
    trigger_attribute = forms.ChoiceField(
        required=False,
        label="Date attribute",
        help_text="Declare date attributes on the Attributes page of Lists.",
    )
    trigger_days = forms.IntegerField(
        required=False,
        min_value=-366,
        max_value=366,
        initial=0,
        label="Days after the date",
        help_text="0: on the day; negative: before it.",
    )
    trigger_yearly = forms.BooleanField(required=False, initial=True, label="Every year")
    trigger_event = forms.CharField(
        required=False,
        max_length=100,
        label="Event name",
        help_text="As sent to POST /api/v1/events, for example order_placed.",
    )
    trigger_campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(),
        required=False,
        label="Campaign clicked",
        empty_label="Choose a campaign",
    )
    trigger_link = _LinkChoice(
        queryset=Link.objects.none(),
        required=False,
        label="Link clicked (optional)",
        empty_label="Any of its links",
    )
    entry = forms.ChoiceField(
        label="Who may enter", choices=Journey.Entry.choices, widget=forms.RadioSelect
    )
    goal = forms.ChoiceField(
        label="Goal",
        required=False,
        choices=[
            ("", "No goal: each contact goes to the end"),
            ("event", "Done when an event arrives"),
            ("segment", "Done once in a segment"),
        ],
        help_text="The event ends their journey at once; the segment, before their next step.",
    )
    goal_event = forms.CharField(required=False, max_length=100, label="Goal event")
    goal_segment = forms.ModelChoiceField(
        queryset=Segment.objects.none(),
        required=False,
        label="Goal segment",
        empty_label="Choose a segment",
    )
    exit_on_unsubscribe = forms.BooleanField(
        required=False,
        label="Leave when unsubscribed",
        help_text="Whoever is subscribed to none of the lists below any more leaves it.",
    )
    lists = forms.ModelMultipleChoiceField(
        queryset=ContactList.objects.none(),
        required=False,
        label="Lists its emails go to",
        widget=forms.CheckboxSelectMultiple,
        help_text="People subscribed to one of these; every list of the account when none "
        "is ticked.",
    )

    # Which field holds each trigger's main choice: its errors are shown beside it.
    TRIGGER_FIELDS = {
        T.SUBSCRIBED: "trigger_list",
        T.TAG_ADDED: "trigger_tag",
        T.SEGMENT: "trigger_segment",
        T.DATE: "trigger_attribute",
        T.EVENT: "trigger_event",
        T.CLICKED: "trigger_campaign",
    }

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, journey: Journey, **kwargs: Any
    ) -> None:
        self.journey = journey
        account = journey.account
        super().__init__(data, initial=self._initial(journey), **kwargs)
        self._choices(account)
        started = journey.status != Journey.Status.DRAFT
        if started:
            # A journey that started keeps its trigger and entry rule (the services say so).
            for name in ("trigger", "entry"):
                self.fields[name].disabled = True
                self.fields[name].help_text = "Fixed once the journey started."
        if journey.status == Journey.Status.ENDED:
            for form_field in self.fields.values():
                form_field.disabled = True

    def _choices(self, account: Account) -> None:
        lists = ContactList.objects.for_account(account)
        segments = Segment.objects.for_account(account)
        campaigns = Campaign.objects.for_account(account).filter(kind=Campaign.Kind.CAMPAIGN)
        self._set("trigger_list", lists)
        self._set("lists", lists)
        self._set("trigger_tag", Tag.objects.for_account(account))
        self._set("trigger_segment", segments)
        self._set("goal_segment", segments)
        self._set("trigger_campaign", campaigns.order_by("-pk"))
        self._set(
            "trigger_link",
            Link.objects.for_account(account)
            .filter(campaign__kind=Campaign.Kind.CAMPAIGN)
            .select_related("campaign")
            .order_by("-campaign_id", "position"),
        )
        dates = AttributeDefinition.objects.for_account(account).filter(
            type=AttributeDefinition.Type.DATE
        )
        attribute = cast(forms.ChoiceField, self.fields["trigger_attribute"])
        attribute.choices = [("", "Choose a date attribute")] + [(d.name, str(d)) for d in dates]

    def _set(self, name: str, queryset: Any) -> None:
        cast(forms.ModelChoiceField, self.fields[name]).queryset = queryset

    @staticmethod
    def _initial(journey: Journey) -> dict[str, Any]:
        config = journey.trigger_config or {}
        goal = journey.goal or {}
        initial: dict[str, Any] = {
            "name": journey.name,
            "trigger": journey.trigger,
            "entry": journey.entry,
            "exit_on_unsubscribe": journey.exit_on_unsubscribe,
            "lists": list(journey.lists.all()) if journey.pk else [],
            "goal": "event" if goal.get("event") else "segment" if goal.get("segment") else "",
            "goal_event": goal.get("event", ""),
            "goal_segment": goal.get("segment"),
            "trigger_yearly": config.get("yearly", True),
            "trigger_days": config.get("days", 0),
        }
        keys = {
            "list": "trigger_list",
            "tag": "trigger_tag",
            "segment": "trigger_segment",
            "attribute": "trigger_attribute",
            "event": "trigger_event",
            "campaign": "trigger_campaign",
            "link": "trigger_link",
        }
        for key, name in keys.items():
            if config.get(key) not in (None, ""):
                initial[name] = config[key]
        return initial

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("goal") == "event" and not data.get("goal_event", "").strip():
            self.add_error("goal_event", "Name the event that ends the journey.")
        if data.get("goal") == "segment" and not data.get("goal_segment"):
            self.add_error("goal_segment", "Choose the segment that ends the journey.")
        return data

    def trigger_config(self) -> dict[str, Any]:
        """The chosen trigger's settings; {} when its main choice is left empty."""
        data = self.cleaned_data
        trigger = data["trigger"]
        if trigger == T.SUBSCRIBED:
            return {"list": data["trigger_list"].pk} if data.get("trigger_list") else {}
        if trigger == T.TAG_ADDED:
            return {"tag": data["trigger_tag"].pk} if data.get("trigger_tag") else {}
        if trigger == T.SEGMENT:
            return {"segment": data["trigger_segment"].pk} if data.get("trigger_segment") else {}
        if trigger == T.DATE:
            if not data.get("trigger_attribute"):
                return {}
            return {
                "attribute": data["trigger_attribute"],
                "days": data.get("trigger_days") or 0,
                "yearly": bool(data.get("trigger_yearly")),
            }
        if trigger == T.EVENT:
            event = (data.get("trigger_event") or "").strip()
            return {"event": event} if event else {}
        if not data.get("trigger_campaign"):
            return {}
        link = data.get("trigger_link")
        return {"campaign": data["trigger_campaign"].pk, "link": link.pk if link else None}

    def changes(self) -> tuple[dict[str, Any], list[ContactList]]:
        """What to hand journey_update: the fields, and the lists apart. The trigger is
        handed over only when it or its settings changed, so that a journey whose list
        is still to choose can be renamed meanwhile."""
        data = self.cleaned_data
        fields: dict[str, Any] = {
            "name": data["name"],
            "entry": data["entry"],
            "exit_on_unsubscribe": data["exit_on_unsubscribe"],
            "goal": (
                {"event": data["goal_event"].strip()}
                if data.get("goal") == "event"
                else {"segment": data["goal_segment"].pk}
                if data.get("goal") == "segment"
                else None
            ),
        }
        trigger = data["trigger"]
        config = self.trigger_config()
        if trigger != self.journey.trigger or (config and config != self.journey.trigger_config):
            fields["trigger"] = trigger
            fields["trigger_config"] = config
        return fields, list(data["lists"])

    def field_for(self, key: str) -> str | None:
        """The form field beside which a service's error about ``key`` is shown."""
        if key == "trigger_config":
            return self.TRIGGER_FIELDS.get(self.cleaned_data.get("trigger", ""), "trigger")
        if key == "goal":
            return "goal_segment" if self.cleaned_data.get("goal") == "segment" else "goal_event"
        return key if key in self.fields else None


# -- steps ------------------------------------------------------------------------------------


class StepForm(Form):
    """A step's settings, read against its account; each kind's ``settings()`` gives what
    step_change takes."""

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        step: Mapping[str, Any],
        account: Account,
        **kwargs: Any,
    ) -> None:
        self.step = step
        self.account = account
        super().__init__(data, prefix=str(step.get("id", "")), **kwargs)


WEEKDAY_CHOICES = [(str(n), name) for n, name in enumerate(stepping.WEEKDAYS)]


class WaitForm(StepForm):
    mode = forms.ChoiceField(
        label="Wait",
        choices=[("for", "For a time"), ("until", "Until a set time")],
        widget=forms.RadioSelect,
    )
    amount = forms.IntegerField(required=False, min_value=1, max_value=100_000, label="How long")
    unit = forms.ChoiceField(
        required=False, label="Unit", choices=[(u, u) for u in stepping.UNITS], initial="days"
    )
    time = forms.RegexField(
        required=False,
        regex=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        label="Time of day",
        widget=forms.TimeInput(attrs={"type": "time"}),
        error_messages={"invalid": "Give the time as HH:MM, from 00:00 to 23:59."},
    )
    weekdays = forms.MultipleChoiceField(
        required=False,
        label="On",
        choices=WEEKDAY_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any day.",
    )
    zone = forms.ChoiceField(
        required=False,
        label="In the time zone of",
        choices=[("account", "the account"), ("contact", "the contact (their time_zone)")],
    )

    def __init__(self, data: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        until = self.step.get("until")
        if isinstance(until, Mapping):
            days = until.get("weekdays") or []
            self.initial = {
                "mode": "until",
                "time": until.get("time", ""),
                "weekdays": [] if len(days) == 7 else [str(d) for d in days],
                "zone": until.get("zone", "account"),
                "unit": "days",
            }
        else:
            self.initial = {
                "mode": "for",
                "amount": self.step.get("amount", 1),
                "unit": self.step.get("unit", "days"),
            }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == "for" and not data.get("amount"):
            self.add_error("amount", "Say how long to wait.")
        if data.get("mode") == "until" and not data.get("time"):
            self.add_error("time", "Give the time of day to wait for.")
        return data

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data["mode"] == "until":
            return {
                "until": {
                    "time": data["time"],
                    "weekdays": [int(d) for d in data["weekdays"]],
                    "zone": data.get("zone") or "account",
                }
            }
        return {"amount": data["amount"], "unit": data.get("unit") or "days"}


TESTS = [
    ("opened", "Opened the email of a step"),
    ("clicked", "Clicked a link in the email of a step"),
    ("tag", "Has a tag"),
    ("event", "A property of the event that made them enter"),
]


class ConditionForm(StepForm):
    """The common tests of a condition, one at a time. A condition made otherwise (through
    the API, with several tests) is said in words above the form; saving replaces it."""

    test = forms.ChoiceField(label="Test", choices=TESTS, widget=forms.RadioSelect)
    email = forms.TypedChoiceField(required=False, coerce=int, label="The email of step")
    tag = forms.ModelChoiceField(
        queryset=Tag.objects.none(), required=False, label="Tag tested", empty_label="Choose"
    )
    property = forms.RegexField(
        required=False,
        regex=r"^[A-Za-z0-9_]{1,100}$",
        label="Event property",
        error_messages={"invalid": "A property name: letters, digits and _ (order_total)."},
    )
    op = forms.ChoiceField(required=False, label="Comparison", choices=list(EVENT_OPS.items()))
    value = forms.CharField(required=False, max_length=500, label="Value compared")

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        emails: Sequence[tuple[int, str]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(data, **kwargs)
        cast(forms.TypedChoiceField, self.fields["email"]).choices = [("", "Choose"), *emails]
        cast(forms.ModelChoiceField, self.fields["tag"]).queryset = Tag.objects.for_account(
            self.account
        )
        self.initial, self.simple = self._read(self.step)

    @staticmethod
    def _read(step: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """The form's values for the step, and whether the form can say all of it."""
        definition = step.get("definition") or {}
        conditions = definition.get("conditions") or [] if isinstance(definition, Mapping) else []
        tests = step.get("event") or []
        if not conditions and not tests:
            return {"test": "opened"}, True
        if len(conditions) + len(tests) != 1:
            return {"test": "opened"}, False
        if tests:
            test = tests[0]
            return {
                "test": "event",
                "property": test.get("property", ""),
                "op": test.get("op", "equals"),
                "value": test.get("value", ""),
            }, True
        condition = conditions[0]
        field = condition.get("field") if isinstance(condition, Mapping) else None
        if field in ("opened", "clicked") and condition.get("op") == "ever":
            if "link" in condition or not condition.get("campaign"):
                return {"test": field}, False
            return {"test": field, "email": condition["campaign"]}, True
        if field == "tag" and condition.get("op") == "has":
            return {"test": "tag", "tag": condition.get("value")}, True
        return {"test": "opened"}, False

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        test = data.get("test")
        if test in ("opened", "clicked") and not data.get("email"):
            self.add_error("email", "Choose the email step to test.")
        if test == "tag" and not data.get("tag"):
            self.add_error("tag", "Choose the tag to test.")
        if test == "event" and not data.get("property"):
            self.add_error("property", "Name the event's property to test.")
        if test == "event" and not data.get("op"):
            self.add_error("op", "Choose how to compare it.")
        return data

    def settings(self) -> dict[str, Any]:
        data = self.cleaned_data
        test = data["test"]
        nothing: dict[str, Any] = {"match": "all", "conditions": []}
        if test == "event":
            return {
                "definition": nothing,
                "event": [{"property": data["property"], "op": data["op"], "value": data["value"]}],
            }
        if test == "tag":
            condition = {"field": "tag", "op": "has", "value": data["tag"].pk}
        else:
            condition = {"field": test, "op": "ever", "campaign": data["email"]}
        return {"definition": {"match": "all", "conditions": [condition]}, "event": []}


class TagStepForm(StepForm):
    action = forms.ChoiceField(
        label="Action", choices=[("add", "Add the tag"), ("remove", "Remove the tag")]
    )
    tag = forms.ModelChoiceField(
        queryset=Tag.objects.none(),
        required=False,
        label="Tag to add or remove",
        empty_label="Choose",
    )
    new_tag = forms.CharField(
        required=False,
        max_length=100,
        label="Or a new tag",
        help_text="Made in the account when you save.",
    )

    def __init__(self, data: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        cast(forms.ModelChoiceField, self.fields["tag"]).queryset = Tag.objects.for_account(
            self.account
        )
        self.initial = {"action": self.step.get("action", "add"), "tag": self.step.get("tag")}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("tag") and not (data.get("new_tag") or "").strip():
            self.add_error("tag", "Choose a tag, or name a new one.")
        return data

    def settings(self) -> dict[str, Any]:
        tag = self.cleaned_data.get("tag")
        return {"action": self.cleaned_data["action"], "tag": tag.pk if tag else None}


class ListStepForm(StepForm):
    action = forms.ChoiceField(
        label="Action",
        choices=[("subscribe", "Subscribe to the list"), ("unsubscribe", "Unsubscribe from it")],
    )
    list = forms.ModelChoiceField(
        queryset=ContactList.objects.none(),
        label="List to subscribe to or unsubscribe from",
        empty_label="Choose a list",
    )

    def __init__(self, data: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        cast(
            forms.ModelChoiceField, self.fields["list"]
        ).queryset = ContactList.objects.for_account(self.account)
        self.initial = {
            "action": self.step.get("action", "subscribe"),
            "list": self.step.get("list"),
        }

    def settings(self) -> dict[str, Any]:
        return {"action": self.cleaned_data["action"], "list": self.cleaned_data["list"].pk}


class AttributeStepForm(StepForm):
    name = forms.ChoiceField(label="Attribute to set")
    value = forms.CharField(
        required=False,
        max_length=500,
        label="New value",
        help_text="A date as YYYY-MM-DD; a yes/no as yes or no; empty clears it.",
    )

    def __init__(self, data: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        cast(forms.ChoiceField, self.fields["name"]).choices = [("", "Choose an attribute")] + [
            (d.name, str(d)) for d in AttributeDefinition.objects.for_account(self.account)
        ]
        value = self.step.get("value", "")
        self.initial = {
            "name": self.step.get("name", ""),
            "value": "" if value is None else str(value),
        }

    def settings(self) -> dict[str, Any]:
        return {"name": self.cleaned_data["name"], "value": self.cleaned_data["value"]}


AnyStepForm = WaitForm | ConditionForm | TagStepForm | ListStepForm | AttributeStepForm
STEP_FORMS: dict[str, type[AnyStepForm]] = {
    "wait": WaitForm,
    "condition": ConditionForm,
    "tag": TagStepForm,
    "list": ListStepForm,
    "attribute": AttributeStepForm,
}


# -- actions ----------------------------------------------------------------------------------


class EndForm(Form):
    inside = forms.ChoiceField(
        label="The contacts inside",
        choices=list(INSIDE_CHOICES.items()),
        widget=forms.RadioSelect,
        error_messages={"required": "Say what happens to the contacts inside."},
    )


class DeleteForm(Form):
    take_out = forms.BooleanField(
        required=False,
        label="Take the contacts inside out now (nothing more of it is sent to them)",
    )


class PublishForm(Form):
    move = forms.ChoiceField(
        label="The contacts inside",
        choices=[
            ("move", "Move them to the new version, at the same step"),
            ("keep", "Let them finish the version they are in"),
        ],
        initial="move",
        widget=forms.RadioSelect,
    )


class EnrollForm(Form):
    email = forms.CharField(
        max_length=254,
        label="Put a contact in, by email address",
        widget=forms.TextInput(attrs={"placeholder": "someone@example.com", "type": "email"}),
    )
