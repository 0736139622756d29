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
from tests.journeys.builders import branch_on_opening

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
    more = True
    while more:
        more = engine.advance(journey.pk).more
    for campaign_id in Campaign.objects.filter(kind="journey", account=journey.account).values_list(
        "pk", flat=True
    ):
        more = True
        while more:
            more = sending.send_batch(campaign_id).more


def test_the_welcome_starter_sends_three_emails_on_schedule(shop, enqueued):
    owner, account, contact_list = shop
    journey = services.journey_create(
        account=account, actor=owner, name="Welcome", starter="welcome"
    )
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
    first = branch_on_opening(journey, owner, ("One", "Yes", "No"))["first"]
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


# -- entry rules, steps, goals, pausing, versions ---------------------------------------------


def live_journey(owner, account, contact_list, steps_of, *, entry="once", trigger="subscribed"):
    """A journey with the steps ``steps_of(journey)`` returns, started on the list."""
    journey = services.journey_create(account=account, actor=owner, name=f"J {entry}")
    services.journey_update(
        journey=journey,
        actor=owner,
        trigger_config={"list": contact_list.pk},
        entry=entry,
    )
    journey.refresh_from_db()
    steps_of(journey)
    services.journey_start(journey=journey, actor=owner)
    journey.refresh_from_db()
    return journey


def one_email(owner):
    def make(journey):
        step = services.step_add(journey=journey, actor=owner, type="email")
        Campaign.objects.filter(pk=step["campaign"]).update(
            subject="Order {{ event.order_id }} for {{ first_name }}"
        )

    return make


@pytest.mark.parametrize(
    ("entry", "entered"), [("once", 1), ("one_at_a_time", 2), ("every_time", 3)]
)
def test_entry_rules(shop, enqueued, entry, entered):
    owner, account, contact_list = shop
    journey = live_journey(
        owner,
        account,
        contact_list,
        lambda j: services.step_add(journey=j, actor=owner, type="wait"),
        entry=entry,
    )
    [person] = subscribe(account, contact_list, 1)
    keys = [engine.Entrant(person.pk, f"k{n}") for n in range(2)]
    # Two at once: once at a time lets one in; every time both.
    engine.enroll(journey, keys)
    engine.advance(journey.pk)
    Enrollment.objects.filter(journey=journey).update(status="completed")
    engine.enroll(journey, [engine.Entrant(person.pk, "k9")])
    assert Enrollment.objects.filter(journey=journey).count() == entered


def test_event_properties_reach_the_recipient_and_the_api_key_enrolls_once(shop, enqueued):
    owner, account, contact_list = shop
    journey = services.journey_create(account=account, actor=owner, name="Orders")
    services.journey_update(
        journey=journey,
        actor=owner,
        trigger="event",
        trigger_config={"event": "order_placed"},
        entry="every_time",
    )
    one_email(owner)(journey)
    services.journey_start(journey=journey, actor=owner)
    [person] = subscribe(account, contact_list, 1)
    first = services.event_record(
        account=account,
        contact=person,
        name="order_placed",
        properties={"order_id": "A-17"},
        idempotency_key="retry-me",
    )
    again = services.event_record(
        account=account,
        contact=person,
        name="order_placed",
        properties={"order_id": "B-99"},
        idempotency_key="retry-me",
    )
    assert (first.created, first.enrolled, again.created, again.event.pk) == (
        True,
        1,
        False,
        first.event.pk,
    )
    journey.refresh_from_db()
    drain(journey)
    assert [m.subject for m in mail.outbox] == ["Order A-17 for P0"]


def test_a_goal_event_ends_the_journey_and_pausing_holds_everyone(shop, enqueued):
    owner, account, contact_list = shop

    def steps(journey):
        wait = services.step_add(journey=journey, actor=owner, type="wait")
        services.step_add(journey=journey, actor=owner, type="email", after=wait["id"])

    journey = live_journey(owner, account, contact_list, steps)
    services.journey_update(journey=journey, actor=owner, goal={"event": "purchased"})
    buyer, waiter = subscribe(account, contact_list, 2)
    triggers.scan(journey.pk)
    drain(journey)
    services.event_record(account=account, contact=buyer, name="purchased")
    assert Enrollment.objects.get(contact=buyer).outcome == "Goal met."
    services.journey_pause(journey=journey, actor=owner)
    later = timezone.now() + dt.timedelta(days=2)
    with time_machine.travel(later, tick=False):
        assert engine.advance(journey.pk).claimed == 0
        drain(journey)
    assert mail.outbox == []
    services.journey_resume(journey=journey, actor=owner)
    with time_machine.travel(later, tick=False):
        drain(journey)
    assert [m.to for m in mail.outbox] == [[waiter.email]]


def test_tag_list_attribute_and_exit_steps(shop, enqueued):
    owner, account, contact_list = shop
    other = contact_services.list_create(account=account, actor=owner, name="Other")
    vip = contact_services.attribute_define(
        account=account, actor=owner, name="vip", type="boolean"
    )
    from contacts.tagging import tag_get_or_create

    tag, _ = tag_get_or_create(account=account, actor=owner, name="welcomed")

    def steps(journey):
        exit_step = services.step_add(journey=journey, actor=owner, type="exit")
        email = services.step_add(journey=journey, actor=owner, type="email", after=exit_step["id"])
        for kind, settings in (
            ("attribute", {"name": vip.name, "value": "yes"}),
            ("list", {"action": "subscribe", "list": other.pk}),
            ("tag", {"action": "add", "tag": tag.pk}),
        ):
            step = services.step_add(journey=journey, actor=owner, type=kind)
            services.step_change(
                journey=journey, actor=owner, step_id=step["id"], settings=settings
            )
        assert email["type"] == "email"

    journey = live_journey(owner, account, contact_list, steps)
    [person] = subscribe(account, contact_list, 1)
    triggers.scan(journey.pk)
    drain(journey)
    person.refresh_from_db()
    assert person.attributes == {"vip": True}
    assert Subscription.objects.filter(contact=person, contact_list=other).exists()
    assert person.tags.filter(pk=tag.pk).exists()
    enrollment = Enrollment.objects.get(contact=person)
    assert (enrollment.status, enrollment.outcome) == ("exited", "Left at an exit step.")
    assert mail.outbox == []  # the email after the exit is never reached


def test_a_new_version_moves_those_inside_only_when_asked(shop, enqueued):
    owner, account, contact_list = shop

    def steps(journey):
        services.step_add(journey=journey, actor=owner, type="wait")

    journey = live_journey(owner, account, contact_list, steps)
    subscribe(account, contact_list, 2)
    triggers.scan(journey.pk)
    drain(journey)
    first_version = journey.version_id
    [wait] = journey.draft
    services.step_add(journey=journey, actor=owner, type="email", after=wait["id"])
    journey.refresh_from_db()
    assert services.draft_changed(journey)
    assert services.move_plan(journey) == services.MovePlan(movable=2, staying=0)
    services.journey_publish(journey=journey, actor=owner, move=False)
    assert set(Enrollment.objects.values_list("version_id", flat=True)) == {first_version}
    with time_machine.travel(timezone.now() + dt.timedelta(days=1, minutes=1), tick=False):
        drain(journey)
    assert mail.outbox == []  # they finished the version they entered: no email in it
    journey.refresh_from_db()
    services.journey_update(journey=journey, actor=owner, name="J once v2")
    subscribe_more = contact_services.contact_create(account=account, actor=None, email="n@e.net")
    contact_services.subscription_subscribe(contact=subscribe_more, contact_list=contact_list)
    triggers.scan(journey.pk)
    drain(journey)
    Campaign.objects.filter(kind="journey").update(subject="Hi")
    services.step_add(journey=journey, actor=owner, type="wait")  # a third version's change
    journey.refresh_from_db()
    services.journey_publish(journey=journey, actor=owner, move=True)
    journey.refresh_from_db()
    moved = Enrollment.objects.get(contact=subscribe_more)
    assert moved.version_id == journey.version_id
    with time_machine.travel(timezone.now() + dt.timedelta(days=3), tick=False):
        drain(journey)
    assert [m.to for m in mail.outbox] == [[subscribe_more.email]]


def test_closing_lets_those_inside_finish_and_ends(shop, enqueued):
    owner, account, contact_list = shop
    journey = live_journey(
        owner,
        account,
        contact_list,
        lambda j: services.step_add(journey=j, actor=owner, type="wait"),
    )
    subscribe(account, contact_list, 1)
    triggers.scan(journey.pk)
    drain(journey)
    services.journey_close(journey=journey, actor=owner, inside="finish")
    journey.refresh_from_db()
    assert journey.status == Journey.Status.CLOSING
    late = contact_services.contact_create(account=account, actor=None, email="late@e.net")
    contact_services.subscription_subscribe(contact=late, contact_list=contact_list)
    assert triggers.scan(journey.pk) == 0
    with time_machine.travel(timezone.now() + dt.timedelta(days=1, minutes=1), tick=False):
        drain(journey)
    assert services.finish_if_empty(journey.pk)
    journey.refresh_from_db()
    assert journey.status == Journey.Status.ENDED
    assert not Campaign.objects.filter(kind="journey", status=State.SENDING).exists()


def test_a_journey_with_contacts_inside_is_deleted_only_when_told_to_take_them_out(shop, enqueued):
    owner, account, contact_list = shop
    journey = live_journey(
        owner,
        account,
        contact_list,
        lambda j: services.step_add(journey=j, actor=owner, type="wait"),
    )
    subscribe(account, contact_list, 1)
    triggers.scan(journey.pk)
    with pytest.raises(services.ValidationError, match="1 contact is inside"):
        services.journey_delete(journey=journey, actor=owner)
    services.journey_delete(journey=journey, actor=owner, inside="remove")
    assert not Journey.objects.filter(pk=journey.pk).exists()
    assert not Enrollment.objects.exists()


# -- triggers ---------------------------------------------------------------------------------


def test_tag_segment_and_click_triggers(shop, enqueued):
    owner, account, contact_list = shop
    from audiences import services as audience_services
    from contacts.tagging import tag_contacts, tag_get_or_create

    people = subscribe(account, contact_list, 3)
    tag, _ = tag_get_or_create(account=account, actor=owner, name="lead")
    segment = audience_services.segment_create(
        account=account,
        actor=owner,
        name="Leads",
        definition={"match": "all", "conditions": [{"field": "tag", "op": "has", "value": tag.pk}]},
    )
    by_tag = services.journey_create(account=account, actor=owner, name="By tag")
    services.journey_update(
        journey=by_tag, actor=owner, trigger="tag_added", trigger_config={"tag": tag.pk}
    )
    by_segment = services.journey_create(account=account, actor=owner, name="By segment")
    services.journey_update(
        journey=by_segment, actor=owner, trigger="segment", trigger_config={"segment": segment.pk}
    )
    for journey in (by_tag, by_segment):
        services.step_add(journey=journey, actor=owner, type="wait")
    # One of them is in the segment before it starts: they do not enter.
    tag_contacts(
        account=account,
        actor=owner,
        tag=tag,
        contacts=Contact.objects.filter(pk=people[0].pk),
    )
    for journey in (by_tag, by_segment):
        services.journey_start(journey=journey, actor=owner)
    tag_contacts(
        account=account, actor=owner, tag=tag, contacts=Contact.objects.filter(pk=people[1].pk)
    )
    assert triggers.scan(by_tag.pk) == 1
    assert triggers.scan(by_segment.pk) == 0  # read at its start, minutes ago
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=6), tick=False):
        assert triggers.scan(by_segment.pk) == 1
    assert set(Enrollment.objects.values_list("contact_id", flat=True)) == {people[1].pk}


def test_a_merge_tag_of_the_event_is_accepted_and_others_are_still_refused(shop):
    from campaigns.rendering import check_template

    assert check_template("{{ event.order_id }}", attribute_names=set()) == []
    [problem] = check_template("{{ event.a.b }} ", attribute_names=set())
    assert "Unknown merge tag {{ event.a.b }}" in problem


def test_a_persons_click_on_a_campaign_link_starts_a_journey_and_a_machines_does_not(
    shop, enqueued
):
    from campaigns import services as campaign_services
    from campaigns.engagement import record_engagement
    from campaigns.models import Link

    owner, account, contact_list = shop
    person, scanned = subscribe(account, contact_list, 2)
    campaign = campaign_services.campaign_create(
        account=account,
        actor=owner,
        name="Offer",
        subject="Offer",
        html='<p><a href="https://example.com/offer">Offer</a></p>',
        lists=[contact_list],
    )
    campaign_services.campaign_start(campaign=campaign, actor=owner)
    sending.take_snapshot(campaign.pk)
    link = Link.objects.get(campaign=campaign)
    journey = services.journey_create(account=account, actor=owner, name="Clicked")
    services.journey_update(
        journey=journey,
        actor=owner,
        trigger="clicked",
        trigger_config={"campaign": campaign.pk, "link": link.pk},
    )
    services.step_add(journey=journey, actor=owner, type="wait")
    services.journey_start(journey=journey, actor=owner)
    for contact, machine in ((person, False), (scanned, True)):
        delivery = Delivery.objects.get(campaign=campaign, contact=contact)
        record_engagement(
            "click",
            account_id=account.pk,
            campaign_id=campaign.pk,
            delivery_id=delivery.pk,
            personal=True,
            machine=machine,
            at=timezone.now(),
            link_id=link.pk,
        )
    assert triggers.scan(journey.pk) == 1
    assert list(Enrollment.objects.values_list("contact_id", flat=True)) == [person.pk]


def test_a_wait_until_a_time_is_never_over_before_it_starts_when_the_clocks_go_back():
    import zoneinfo

    from journeys.steps import wait_until

    paris = zoneinfo.ZoneInfo("Europe/Paris")
    step = {"until": {"time": "02:30", "weekdays": list(range(7)), "zone": "account"}}
    # 01:15 UTC on 25 October 2026 is the second 02:15 in Paris (the clocks went back).
    now = dt.datetime(2026, 10, 25, 1, 15, tzinfo=dt.UTC)
    assert now.astimezone(paris).fold == 1
    ends = wait_until(step, now, "Europe/Paris")
    assert ends > now
    assert ends.astimezone(paris).strftime("%d %H:%M") == "25 02:30"


def test_a_wait_until_a_time_the_clocks_skip_ends_an_hour_later_on_the_wall():
    import zoneinfo

    from journeys.steps import wait_until

    paris = zoneinfo.ZoneInfo("Europe/Paris")
    step = {"until": {"time": "02:30", "weekdays": list(range(7)), "zone": "account"}}
    now = dt.datetime(2026, 3, 28, 23, 0, tzinfo=dt.UTC)  # 00:00 on the night of the change
    ends = wait_until(step, now, "Europe/Paris")
    assert ends.astimezone(paris).strftime("%d %H:%M") == "29 03:30"
