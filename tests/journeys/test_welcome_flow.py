"""The welcome series, end to end: a person subscribes through the list's hosted form,
confirms from the mail (double opt-in), and the three emails arrive at an SMTP server on
loopback on their days: at once, three days later, seven days later; nothing before the
confirmation.

A Celery worker runs in this process (``celery_worker``): the confirmation mail, the
trigger's nudge, the advance and the sending are its tasks, as in production. The test
plays beat, calling ``journeys.tick`` with time moved on (time_machine moves the worker's
clock too: it shares the process).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from urllib.parse import urlsplit

import time_machine
from django.core import mail
from django.test import Client

from campaigns.models import Delivery
from contacts.models import Subscription
from contacts.subscribing import subscribe_url
from journeys import services
from journeys import tasks as journey_tasks
from journeys.models import Enrollment, StepTally
from tests.journeys.test_scale import make_sender
from tests.workers import BACKEND_NAME, wait_until

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CONFIRM_LINK = re.compile(r"https?://[^/\s]+(/subscribe/confirm/[^/\s\"]+/)")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SUBJECTS = [
    "Welcome to Welcome Ltd",
    "Getting the most out of Welcome Ltd",
    "What would you like to hear about?",
]


def subjects(sink) -> list[str]:
    return [
        str(email.message_from_bytes(m.raw, policy=email.policy.default)["Subject"])
        for m in sink.messages
    ]


def test_a_confirmed_subscriber_gets_the_three_welcome_emails_on_their_days(
    celery_worker, smtp_sink, settings
):
    sink = smtp_sink
    settings.MISSIVE_SENDING_BACKENDS = {BACKEND_NAME: f"smtp://127.0.0.1:{sink.port}"}
    owner, account, contact_list = make_sender(
        "Welcome Ltd", "welcome.example", sending_backend=BACKEND_NAME
    )
    assert contact_list.double_opt_in

    # given the welcome starter, on the list, live
    journey = services.journey_create(
        account=account, actor=owner, name="Welcome", starter="welcome"
    )
    services.journey_update(journey=journey, actor=owner, trigger_config={"list": contact_list.pk})
    journey = services.journey_start(journey=journey, actor=owner)
    steps = journey.version.steps
    assert [s["type"] for s in steps] == ["email", "wait", "email", "wait", "email"]

    # when a person fills in the list's hosted form
    visitor = Client(HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="203.0.113.7")
    form = urlsplit(subscribe_url(contact_list)).path
    assert visitor.get(form).status_code == 200
    response = visitor.post(
        form, {"email": "nia@example.com", "first_name": "Nia", "consent": "on", "website": ""}
    )
    assert response.status_code == 200
    wait_until(lambda: mail.outbox, timeout=30, message="the confirmation mail")
    [confirmation] = mail.outbox
    assert confirmation.to == ["nia@example.com"]
    subscription = Subscription.objects.get(contact__email="nia@example.com")
    assert subscription.status == Subscription.Status.UNCONFIRMED

    # then nothing is sent before the confirmation, whatever beat does
    assert journey_tasks.tick() == {"entered": 0, "kicked": 0}
    assert not Enrollment.objects.filter(journey=journey).exists()
    assert len(sink) == 0

    # when the person confirms from the link in the mail
    found = CONFIRM_LINK.search(confirmation.body)
    assert found, confirmation.body
    page = visitor.get(found.group(1))
    token = CSRF.search(page.content.decode())
    assert token, page.content.decode()
    confirmed = visitor.post(found.group(1), {"csrfmiddlewaretoken": token.group(1)})
    assert confirmed.status_code == 200
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SUBSCRIBED
    start = subscription.confirmed_at

    # then the first email arrives at once: the confirmation nudged the trigger
    wait_until(lambda: len(sink) >= 1, timeout=30, message=lambda: f"email 1 ({len(sink)})")
    assert subjects(sink) == SUBJECTS[:1]
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.contact_id == subscription.contact_id

    # and the next ones on their days, not before
    for n, (days, got) in enumerate(((3, 2), (7, 3)), start=1):
        due = start + dt.timedelta(days=days)
        with time_machine.travel(due - dt.timedelta(minutes=1), tick=False):
            assert journey_tasks.tick()["kicked"] == 0
        assert len(sink) == n
        with time_machine.travel(due + dt.timedelta(minutes=1), tick=False):
            assert journey_tasks.tick()["kicked"] == 1
            wait_until(
                lambda got=got: len(sink) >= got,
                timeout=30,
                message=lambda got=got: f"email {got} ({len(sink)} received)",
            )
    assert subjects(sink) == SUBJECTS
    assert sink.per_recipient() == {"nia@example.com": 3}
    # (the worker records a batch's outcomes just after the server has the message)
    wait_until(
        lambda: not Delivery.objects.exclude(status=Delivery.Status.SENT).exists(),
        timeout=30,
        message="the last delivery recorded as sent",
    )

    # and the ledger says when: at the confirmation, and a minute after each wait ended
    sent = list(
        Delivery.objects.filter(contact_id=subscription.contact_id)
        .order_by("sent_at")
        .values_list("status", "sent_at")
    )
    assert [status for status, _ in sent] == [Delivery.Status.SENT] * 3
    assert start <= sent[0][1] < start + dt.timedelta(minutes=5)
    assert sent[1][1] == start + dt.timedelta(days=3, minutes=1)
    assert sent[2][1] == start + dt.timedelta(days=7, minutes=1)
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.COMPLETED
    tallies = dict(StepTally.objects.filter(journey=journey).values_list("step", "reached"))
    assert tallies == {s["id"]: 1 for s in steps}
