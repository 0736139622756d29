"""The journey engine: who enters, each step once, waits in local time, branches, exits."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from campaigns import sending
from campaigns.models import Campaign, Delivery
from campaigns.states import State
from contacts import services as contact_services
from contacts.models import Contact, Subscription
from journeys import engine, services, triggers
from journeys.models import Enrollment, Journey, StepTally
from tests.factories import make_account, make_user, verified_domain

SENDER = "hello@journeys.example"


@pytest.fixture
def shop(db):
    owner = make_user("owner@journeys.example")
    account = make_account(
        owner, "Journeys Ltd", postal_address="1 Rue des Voyages, Lyon", default_from_email=SENDER
    )
    verified_domain(account, "journeys.example")
    contact_list = contact_services.list_create(account=account, actor=owner, name="News")
    return owner, account, contact_list


def subscribe(account, contact_list, n: int) -> list[Contact]:
    contacts = []
    for i in range(n):
        contact = contact_services.contact_create(
            account=account, actor=None, email=f"p{i}@example.net", first_name=f"P{i}"
        )
        contact_services.subscription_subscribe(contact=contact, contact_list=contact_list)
        contacts.append(contact)
    return contacts


def drain(journey: Journey) -> None:
    """Move the journey's due enrollments and send what they queued, here."""
    while engine.advance(journey.pk).more:
        pass
    for campaign_id in Campaign.objects.filter(kind="journey", account=journey.account).values_list(
        "pk", flat=True
    ):
        while sending.send_batch(campaign_id).more:
            pass


def test_the_welcome_starter_sends_three_emails_on_schedule(shop, enqueued):
    owner, account, contact_list = shop
    journey = services.journey_create(account=account, actor=owner, name="Welcome", starter="welcome")
    services.journey_update(journey=journey, actor=owner, trigger_config={"list": contact_list.pk})
    services.journey_start(journey=journey, actor=owner)
    journey.refresh_from_db()
    assert journey.status == Journey.Status.LIVE
    start = timezone.now()
    [alice] = subscribe(account, contact_list, 1)
    assert triggers.scan(journey.pk) == 1
    assert triggers.scan(journey.pk) == 0  # read twice, enrolled once
    drain(journey)
    assert [m.subject for m in mail.outbox] == ["Welcome to Journeys Ltd"]
    with time_machine.travel(start + dt.timedelta(days=2, hours=23), tick=False):
        drain(journey)
    assert len(mail.outbox) == 1
    with time_machine.travel(start + dt.timedelta(days=3, minutes=1), tick=False):
        drain(journey)
    assert len(mail.outbox) == 2
    with time_machine.travel(start + dt.timedelta(days=7, minutes=2), tick=False):
        drain(journey)
    assert len(mail.outbox) == 3
    enrollment = Enrollment.objects.get(journey=journey, contact=alice)
    assert enrollment.status == Enrollment.Status.COMPLETED
    tallies = dict(StepTally.objects.filter(journey=journey).values_list("step", "reached"))
    assert sorted(tallies.values()) == [1, 1, 1, 1, 1]
    assert Delivery.objects.filter(contact=alice, status="sent").count() == 3


def test_a_branch_on_opening_and_an_unsubscribe_between_steps(shop, enqueued):
    owner, account, contact_list = shop
    journey = services.journey_create(account=account, actor=owner, name="Branch")
    services.journey_update(journey=journey, actor=owner, trigger_config={"list": contact_list.pk})
    first = services.step_add(journey=journey, actor=owner, type="email")
    wait = services.step_add(journey=journey, actor=owner, type="wait", after=first["id"])
    cond = services.step_add(journey=journey, actor=owner, type="condition", after=wait["id"])
    yes = services.step_add(journey=journey, actor=owner, type="email", after=cond["id"], branch="yes")
    no = services.step_add(journey=journey, actor=owner, type="email", after=cond["id"], branch="no")
    services.step_change(
        journey=journey,
        actor=owner,
        step_id=cond["id"],
        settings={
            "definition": {
                "match": "all",
                "conditions": [{"field": "opened", "op": "ever", "campaign": first["campaign"]}],
            }
        },
    )
    for step, subject in ((first, "One"), (yes, "Yes"), (no, "No")):
        Campaign.objects.filter(pk=step["campaign"]).update(subject=subject)
    services.journey_start(journey=journey, actor=owner)
    people = subscribe(account, contact_list, 3)
    triggers.scan(journey.pk)
    drain(journey)
    assert sorted(m.subject for m in mail.outbox) == ["One"] * 3
    opener, leaver, other = people
    Delivery.objects.filter(contact=opener, campaign_id=first["campaign"]).update(
        first_opened_at=timezone.now()
    )
    contact_services.unsubscribe(account=account, actor=None, contact_ids=[leaver.pk], how="test")
    with time_machine.travel(timezone.now() + dt.timedelta(days=1, minutes=1), tick=False):
        drain(journey)
    got = {m.to[0]: m.subject for m in mail.outbox[3:]}
    assert got == {opener.email: "Yes", other.email: "No"}
    left = Enrollment.objects.get(contact=leaver)
    assert (left.status, left.outcome) == ("exited", "Unsubscribed from the journey's lists.")
