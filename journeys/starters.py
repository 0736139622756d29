"""Journeys to start from: the trigger, the rules and the steps, with each email's words.
An email step here names its message by ``email`` (an index into ``emails``); making the
journey makes each message a campaign of kind "journey", written with blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Email:
    name: str
    subject: str
    heading: str
    body: str
    button: tuple[str, str] | None = None

    def blocks(self) -> dict[str, Any]:
        items: list[dict[str, Any]] = [
            {"type": "heading", "text": self.heading, "level": 1},
            {"type": "text", "html": self.body},
        ]
        if self.button:
            items.append({"type": "button", "label": self.button[0], "href": self.button[1]})
        items.append({"type": "footer", "text": "{{ account_name }}"})
        return {"settings": {}, "blocks": items}


@dataclass(frozen=True)
class JourneyStarter:
    key: str
    name: str
    description: str
    trigger: str
    trigger_config: dict[str, Any] = field(hash=False)
    entry: str
    steps: list[dict[str, Any]] = field(hash=False)
    emails: list[Email] = field(hash=False)
    goal: dict[str, Any] | None = field(default=None, hash=False)


def _email(index: int) -> dict[str, Any]:
    return {"type": "email", "email": index}


def _wait(amount: int, unit: str = "days") -> dict[str, Any]:
    return {"type": "wait", "amount": amount, "unit": unit}


HELLO = '<p>Hello {{ first_name|default:"there" }},</p>'

STARTERS = [
    JourneyStarter(
        key="welcome",
        name="Welcome series",
        description="Three emails over seven days for each new subscriber of a list.",
        trigger="subscribed",
        trigger_config={},
        entry="once",
        steps=[_email(0), _wait(3), _email(1), _wait(4), _email(2)],
        emails=[
            Email(
                "Welcome 1: hello",
                "Welcome to {{ account_name }}",
                "Welcome aboard",
                HELLO + "<p>Thank you for subscribing. Here is what to expect from us.</p>",
                ("Visit our website", "https://example.com/"),
            ),
            Email(
                "Welcome 2: getting started",
                "Getting the most out of {{ account_name }}",
                "Getting started",
                HELLO + "<p>Three things our readers like best, picked for you.</p>",
                ("Read the guide", "https://example.com/guide"),
            ),
            Email(
                "Welcome 3: stay in touch",
                "What would you like to hear about?",
                "Tell us what you like",
                HELLO + "<p>Choose the news you want on your preferences page.</p>",
                ("Your preferences", "{{ preferences_url }}"),
            ),
        ],
    ),
    JourneyStarter(
        key="birthday",
        name="Birthday",
        description="A greeting at 9:00 on each contact's birthday (a date attribute), "
        "in your account's time zone.",
        trigger="date",
        trigger_config={"attribute": "birthday", "days": 0, "yearly": True},
        entry="every_time",
        steps=[
            {"type": "wait", "until": {"time": "09:00", "weekdays": [], "zone": "account"}},
            _email(0),
        ],
        emails=[
            Email(
                "Birthday greeting",
                "Happy birthday, {{ first_name|default:'friend' }}!",
                "Happy birthday!",
                HELLO + "<p>Everyone at {{ account_name }} wishes you a wonderful day.</p>",
            )
        ],
    ),
    JourneyStarter(
        key="reengagement",
        name="Re-engagement",
        description="For people who opened nothing in 90 days (people only, not image "
        "proxies): one email, and a tag for those who still do not open it.",
        trigger="segment",
        trigger_config={},
        entry="one_at_a_time",
        steps=[
            _email(0),
            _wait(7),
            {
                "type": "condition",
                "definition": {"match": "all", "conditions": [{"field": "opened", "op": "ever"}]},
                "opened_step": 0,
                "yes": [],
                "no": [{"type": "tag", "action": "add", "tag_name": "inactive"}],
            },
        ],
        emails=[
            Email(
                "Re-engagement: we miss you",
                "Still interested in {{ account_name }}?",
                "We miss you",
                HELLO + "<p>It has been a while. Do you still want to hear from us?</p>",
                ("Yes, keep me posted", "https://example.com/"),
            )
        ],
    ),
    JourneyStarter(
        key="post_purchase",
        name="Post-purchase",
        description="Three days after an order_placed event sent to the API, ask how it went.",
        trigger="event",
        trigger_config={"event": "order_placed"},
        entry="every_time",
        steps=[_wait(3), _email(0)],
        emails=[
            Email(
                "Post-purchase: how was it?",
                "How is your order {{ event.order_id }}?",
                "How was it?",
                HELLO + "<p>We hope you enjoy {{ event.product|default:'your order' }}. "
                "Tell us what you think.</p>",
                ("Leave a review", "https://example.com/review"),
            )
        ],
    ),
]
BY_KEY = {starter.key: starter for starter in STARTERS}
