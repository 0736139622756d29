"""Journeys and the processor's duties: a person's data request shows their journeys and
events, erasure removes them, retention forgets finished ones, closure ends journeys."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.states import State
from contacts import services as contact_services
from journeys import engine, retention, services, triggers
from journeys.models import ContactEvent, Enrollment, Journey
from privacy import closure
from privacy.data_requests import contact_data
from privacy.erasure import erase_contact
from tests.factories import PASSWORD, make_account, make_user, verified_domain


@pytest.fixture
def journey_with_one_inside(db, enqueued):
    owner = make_user("owner@privacy.example")
    account = make_account(
        owner,
        "Privacy Ltd",
        postal_address="2 Rue Privée, Paris",
        default_from_email="hi@privacy.example",
    )
    verified_domain(account, "privacy.example")
    contact_list = contact_services.list_create(account=account, actor=owner, name="News")
    journey = services.journey_create(account=account, actor=owner, name="Orders")
    services.journey_update(
        journey=journey,
        actor=owner,
        trigger="event",
        trigger_config={"event": "order_placed"},
        entry="every_time",
    )
    step = services.step_add(journey=journey, actor=owner, type="email")
    Campaign.objects.filter(pk=step["campaign"]).update(subject="Order {{ event.order_id }}")
    services.journey_start(journey=journey, actor=owner)
    person = contact_services.contact_create(
        account=account, actor=None, email="pia@example.net", first_name="Pia"
    )
    contact_services.subscription_subscribe(contact=person, contact_list=contact_list)
    services.event_record(
        account=account, contact=person, name="order_placed", properties={"order_id": "Z-1"}
    )
    engine.advance(journey.pk)
    return owner, account, journey, person


def test_a_data_request_shows_the_journeys_and_the_events(journey_with_one_inside):
    _owner, _account, _journey, person = journey_with_one_inside
    data = contact_data(person)
    [journey] = data["journeys"]
    assert (journey["journey"], journey["event_properties"]) == ("Orders", {"order_id": "Z-1"})
    assert len(journey["steps_reached"]) == 1
    assert data["account_events"][0]["properties"] == {"order_id": "Z-1"}


def test_erasure_removes_enrollments_events_and_the_event_in_the_delivery(journey_with_one_inside):
    _owner, _account, _journey, person = journey_with_one_inside
    assert Delivery.objects.get(contact=person).context == {"order_id": "Z-1"}
    erase_contact(contact=person, actor=None, reason="data_request")
    assert not Enrollment.objects.exists()
    assert not ContactEvent.objects.exists()
    delivery = Delivery.objects.get()
    assert (delivery.contact_id, delivery.context) == (None, None)


def test_retention_forgets_finished_enrollments_after_13_months(journey_with_one_inside):
    _owner, _account, _journey, _person = journey_with_one_inside
    enrollment = Enrollment.objects.get()
    assert enrollment.status == Enrollment.Status.COMPLETED
    policies = {p.name: p for p in retention.POLICIES}
    now = timezone.now()
    assert policies["journey_enrollments"].due(now) == 0
    later = now + dt.timedelta(days=400)
    assert policies["journey_enrollments"].due(later) == 1
    assert policies["journey_events"].purge(later) == 1
    assert policies["journey_enrollments"].purge(later) == 1
    assert not Enrollment.objects.exists()


def test_closing_the_account_ends_its_journeys(journey_with_one_inside):
    owner, account, journey, person = journey_with_one_inside
    closure.account_close(account=account, actor=owner, password=PASSWORD, typed_name=account.name)
    journey.refresh_from_db()
    assert journey.status == Journey.Status.ENDED
    assert not Campaign.objects.filter(kind="journey", status=State.SENDING).exists()
    # A closed account's journeys take no one in.
    assert triggers.scan(journey.pk) == 0
    closure.purge_account_data(account)
    assert not Journey.objects.exists()
    assert not Enrollment.objects.filter(contact=person).exists()
