"""The feedback rules: hard and soft bounces, policy rejections, complaints and the
account's complaint rate (RFC 3463; Gmail/Yahoo bulk-sender rules)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import AuditEntry
from campaigns import sending, services
from campaigns.models import Campaign, Delivery
from campaigns.states import State
from contacts import services as contact_services
from contacts.models import Subscription, Suppression
from events.models import Event
from events.services import NewEvent, record_events
from stats import health
from stats.feedback import (
    Feedback,
    Outcome,
    complaints_check,
    enhanced_status,
    feedback_record,
    outcome_of_status,
    outcome_of_text,
)
from tests.stats.feedback_helpers import events, send, suppression


@pytest.fixture
def delivery(world):
    return send(world)


def _record(delivery, outcome, *, ago=timedelta(0), key=None, **fields):
    feedback = Feedback(
        outcome=outcome,
        source="Test",
        occurred_at=timezone.now() - ago,
        dedup_key=key,
        **fields,
    )
    return feedback_record(delivery=delivery, feedback=feedback)


# -- classification --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("5.1.1", Outcome.HARD_BOUNCE),  # bad destination mailbox
        ("5.1.10", Outcome.HARD_BOUNCE),  # null MX
        ("5.2.1", Outcome.HARD_BOUNCE),  # mailbox disabled
        ("5.2.2", Outcome.SOFT_BOUNCE),  # mailbox full
        ("4.2.2", Outcome.SOFT_BOUNCE),  # mailbox full
        ("4.2.1", Outcome.SOFT_BOUNCE),  # mailbox busy
        ("4.4.7", Outcome.SOFT_BOUNCE),  # delivery time expired
        ("4.4.1", Outcome.SOFT_BOUNCE),  # the recipient's server does not answer
        ("4.7.28", Outcome.POLICY),  # Gmail's rate limit of an unusual sender
        ("4.7.0", Outcome.POLICY),
        ("4.3.0", Outcome.DEFERRED),  # the receiving system's trouble
        ("4.5.3", Outcome.DEFERRED),  # too many recipients in the session
        ("4.0.0", Outcome.DEFERRED),
        ("5.7.1", Outcome.POLICY),  # delivery not authorized
        ("5.7.26", Outcome.POLICY),  # DMARC
        ("5.0.0", None),
        ("5.4.4", None),
        ("2.0.0", None),
        ("", None),
    ],
)
def test_it_reads_rfc_3463_status_codes(status, outcome):
    assert outcome_of_status(status) == outcome


def test_it_finds_the_failure_code_in_a_server_answer():
    assert enhanced_status("smtp; 550 5.1.1 <jane@example.com>... User unknown") == "5.1.1"
    assert enhanced_status("250 2.0.0 OK", "451 4.7.0 try later") == "4.7.0"
    assert enhanced_status("250 2.0.0 OK") == "2.0.0"
    # Not a code: part of a longer dotted number.
    assert enhanced_status("host 127.0.5.1.1 said hello") == ""


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("Sorry, no mailbox here by that name.", None),
        ("550 Requested action not taken: mailbox unavailable", Outcome.HARD_BOUNCE),
        ("User unknown in virtual alias table", Outcome.HARD_BOUNCE),
        ("The email account that you tried to reach is over quota", Outcome.SOFT_BOUNCE),
        ("Message rejected as spam by Content Filtering", Outcome.POLICY),
        ("Client host [192.0.2.1] blocked using zen.spamhaus.org", Outcome.POLICY),
    ],
)
def test_it_reads_the_wording_of_bounces_without_a_code(text, outcome):
    assert outcome_of_text(text) == outcome


# -- bounces ---------------------------------------------------------------------------------


def test_it_suppresses_a_hard_bounce_at_once(world, delivery):
    # when the recipient's server says the mailbox does not exist
    recorded = _record(delivery, Outcome.HARD_BOUNCE, status="5.1.1", diagnostic="User unknown")

    # then the address is suppressed for the account, and the delivery is marked
    assert recorded is True
    entry = suppression(world)
    assert entry is not None
    assert entry.reason == Suppression.Reason.HARD_BOUNCE
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.BOUNCED
    (event,) = events(delivery)
    assert event.type == Event.Type.BOUNCE
    assert event.detail == {
        "kind": "hard",
        "source": "Test",
        "status": "5.1.1",
        "diagnostic": "User unknown",
    }
    assert AuditEntry.objects.filter(
        account=world.account_a, action="suppression.added", detail__reason="hard_bounce"
    ).exists()


def _another_subscriber(world, contact_list):
    contact_services.contact_create(
        account=world.account_a,
        actor=world.alice,
        email="frank@alpha.test",
        lists=[contact_list],
    )


def test_the_next_campaign_skips_a_hard_bounced_address(world, delivery):
    # given erin's address bounced hard, and frank is on her list too
    _record(delivery, Outcome.HARD_BOUNCE, status="5.1.1")
    _another_subscriber(world, world.extras["list"])

    # when the next campaign to her list starts
    campaign = services.campaign_create(
        account=world.account_a,
        actor=world.alice,
        name="Next",
        subject="Next",
        from_email="news@alpha.test",
        html="<p>Hi</p>",
        lists=[world.extras["list"]],
    )
    services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)

    # then she is not among its recipients
    recipients = Delivery.objects.filter(campaign=campaign).values_list("contact__email", flat=True)
    assert list(recipients) == ["frank@alpha.test"]
    campaign.refresh_from_db()
    assert campaign.excluded_count == 1


def test_a_policy_rejection_is_shown_but_does_not_suppress(world, delivery):
    _record(
        delivery,
        Outcome.POLICY,
        status="5.7.1",
        diagnostic="550 5.7.1 Service unavailable, client host blocked using Spamhaus",
    )

    assert suppression(world) is None
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    (event,) = events(delivery)
    assert event.type == Event.Type.REJECTED
    assert event.detail["kind"] == "policy"
    assert "Spamhaus" in event.detail["diagnostic"]


def test_soft_bounces_of_three_messages_over_72_hours_suppress(world):
    # given three campaigns to erin, each bouncing softly (mailbox full), days apart
    deliveries = [send(world, name=f"Issue {n}") for n in range(3)]
    _record(deliveries[0], Outcome.SOFT_BOUNCE, status="5.2.2", ago=timedelta(days=4))
    _record(deliveries[1], Outcome.SOFT_BOUNCE, status="5.2.2", ago=timedelta(days=2))
    assert suppression(world) is None

    # when the third bounces
    _record(deliveries[2], Outcome.SOFT_BOUNCE, status="5.2.2")

    # then her address is suppressed
    entry = suppression(world)
    assert entry is not None
    assert entry.reason == Suppression.Reason.HARD_BOUNCE
    assert "soft bounces" in entry.note


GMAIL_RATE_LIMIT = (
    "421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail "
    "originating from your IP address. To protect our users from spam, mail sent from "
    "your IP address has been temporarily rate limited."
)


def _three_messages_over_80_hours(world, time_machine, **fields):
    """Three campaigns to erin, each failing the same way, 40 hours apart."""
    start = timezone.now() - timedelta(hours=80)
    for n in range(3):
        time_machine.move_to(start + timedelta(hours=40 * n), tick=False)
        _record(send(world, name=f"Issue {n}"), Outcome.SOFT_BOUNCE, **fields)


def _still_subscribed():
    return Subscription.objects.filter(
        contact__email="erin@alpha.test", status=Subscription.Status.SUBSCRIBED
    ).exists()


@pytest.mark.parametrize(
    "fields",
    [
        # as a provider reports a deferral, with the server's answer
        {"deferred": True, "status": "4.7.28", "diagnostic": GMAIL_RATE_LIMIT},
        # as it reports a soft bounce, the code only in the answer
        {"diagnostic": GMAIL_RATE_LIMIT},
        # a bare 421: the server is busy or refuses the sender, nothing says the mailbox
        {"deferred": True, "diagnostic": "421 Service not available, closing channel"},
    ],
)
def test_reputation_deferrals_are_not_held_against_the_address(world, time_machine, fields):
    # when Gmail rate-limits three messages to erin over 80 hours
    _three_messages_over_80_hours(world, time_machine, **fields)

    # then her address stays subscribed and unsuppressed
    assert suppression(world) is None
    assert _still_subscribed()
    # and each deferral is kept as the sender's problem, not a bounce of hers
    kinds = Event.objects.filter(account=world.account_a).exclude(type=Event.Type.SENT)
    assert set(kinds.values_list("detail__kind", flat=True)) <= {"policy", "deferred"}
    assert not kinds.filter(type=Event.Type.BOUNCE).exists()
    assert not Delivery.objects.filter(status=Delivery.Status.BOUNCED).exists()


def test_mailbox_full_bounces_of_three_messages_over_80_hours_suppress(world, time_machine):
    # when erin's mailbox is full for three messages over 80 hours
    _three_messages_over_80_hours(
        world,
        time_machine,
        status="4.2.2",
        diagnostic="452-4.2.2 The email account that you tried to reach is over quota.",
    )

    # then her address is suppressed
    entry = suppression(world)
    assert entry is not None
    assert entry.reason == Suppression.Reason.HARD_BOUNCE
    assert "soft bounces" in entry.note


def test_a_final_failure_for_the_senders_reputation_is_a_policy_rejection(world, delivery):
    # when the message is given up on after days of Gmail's rate limit
    _record(delivery, Outcome.SOFT_BOUNCE, status="4.7.28", diagnostic=GMAIL_RATE_LIMIT)

    # then it is shown as refused for the sender's reputation, and nobody is suppressed
    (event,) = events(delivery)
    assert (event.type, event.detail["kind"]) == (Event.Type.REJECTED, "policy")
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
    assert suppression(world) is None


def test_soft_bounces_within_a_day_do_not_suppress(world):
    deliveries = [send(world, name=f"Issue {n}") for n in range(3)]
    for hours, delivery in zip((20, 10, 0), deliveries, strict=True):
        _record(delivery, Outcome.SOFT_BOUNCE, status="4.2.2", ago=timedelta(hours=hours))

    assert suppression(world) is None


def test_one_message_deferred_for_days_is_one_soft_bounce(world, delivery):
    # A provider retrying one message reports a deferral each time: still one failure.
    for days in (4, 3, 2, 1, 0):
        _record(delivery, Outcome.SOFT_BOUNCE, deferred=True, ago=timedelta(days=days))

    assert suppression(world) is None
    assert {e.type for e in events(delivery)} == {Event.Type.DEFERRED}
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT


def test_the_same_report_twice_is_recorded_once(world, delivery):
    at = timezone.now()
    feedback = Feedback(
        outcome=Outcome.HARD_BOUNCE, source="Test", occurred_at=at, dedup_key="Test:42"
    )

    assert feedback_record(delivery=delivery, feedback=feedback) is True
    assert feedback_record(delivery=delivery, feedback=feedback) is False

    assert len(events(delivery)) == 1


@pytest.mark.parametrize(
    ("agent", "machine", "detail"),
    [
        # Gmail's proxy fetches when erin opens the message: hers, whatever the provider says
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
            "GoogleImageProxy)",
            False,
            {"source": "Test"},
        ),
        # a proxy open the provider flags, without saying whose
        (None, True, {"source": "Test", "machine_reason": "provider"}),
    ],
)
def test_a_providers_proxy_open_is_judged_by_whose_proxy(world, delivery, agent, machine, detail):
    # given a campaign without Missive's pixel (the provider's opens count), sent an hour ago
    delivery.campaign.track_opens = False
    delivery.campaign.save(update_fields=["track_opens"])
    delivery.sent_at = timezone.now() - timedelta(hours=1)
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=delivery.sent_at)

    # when the provider reports an open it calls a proxy's
    _record(delivery, Outcome.OPEN, machine=True, user_agent=agent)

    # then only a prefetching proxy's open is a machine's
    (event,) = events(delivery, Event.Type.OPEN)
    assert (event.machine, event.detail) == (machine, detail)


# -- complaints ------------------------------------------------------------------------------


def test_a_complaint_suppresses_the_address_for_all_lists_at_once(world, delivery):
    # given erin is also on a second list of the account
    other = contact_services.list_create(
        account=world.account_a, actor=world.alice, name="Alpha Sentinel Offers"
    )
    Subscription.objects.create(
        contact=delivery.contact, contact_list=other, status=Subscription.Status.SUBSCRIBED
    )
    _another_subscriber(world, other)

    # when she reports the newsletter as spam
    _record(delivery, Outcome.COMPLAINT)

    # then she is suppressed for the whole account, and no other list reaches her
    entry = suppression(world)
    assert entry is not None
    assert entry.reason == Suppression.Reason.COMPLAINT
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.COMPLAINED
    campaign = services.campaign_create(
        account=world.account_a,
        actor=world.alice,
        name="Offers",
        subject="Offers",
        from_email="news@alpha.test",
        html="<p>Hi</p>",
        lists=[other],
    )
    services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)
    recipients = Delivery.objects.filter(campaign=campaign).values_list("contact__email", flat=True)
    assert list(recipients) == ["frank@alpha.test"]


def test_a_provider_unsubscribe_unsubscribes_like_the_link(world, delivery):
    _record(delivery, Outcome.UNSUBSCRIBE)

    subscription = Subscription.objects.get(contact=delivery.contact)
    assert subscription.status == Subscription.Status.UNSUBSCRIBED
    (event,) = events(delivery, Event.Type.UNSUBSCRIBE)
    assert event.detail["how"] == "provider: Test"


def _sent_events(delivery, count):
    record_events(
        NewEvent(
            type=Event.Type.SENT,
            account_id=delivery.campaign.account_id,
            campaign_id=delivery.campaign_id,
            occurred_at=timezone.now() - timedelta(days=1),
        )
        for _ in range(count)
    )


def test_it_measures_the_complaint_rate_over_30_days(world, delivery):
    # given 1,999 more messages sent (2,000 with erin's) and 2 complaints, one too old
    _sent_events(delivery, 1999)
    _record(delivery, Outcome.COMPLAINT)
    record_events(
        [
            NewEvent(
                type=Event.Type.COMPLAINT,
                account_id=delivery.campaign.account_id,
                campaign_id=delivery.campaign_id,
                occurred_at=timezone.now() - timedelta(days=31),
            )
        ]
    )

    rate, complaints, sent = health.complaint_rate(world.account_a)

    assert (complaints, sent) == (1, 2000)
    assert rate == pytest.approx(0.0005)
    assert health.complaint_rate(world.account_b) == (0.0, 0, 0)


def test_it_warns_at_one_complaint_per_thousand(world, delivery):
    _sent_events(delivery, 999)
    _record(delivery, Outcome.COMPLAINT)

    state = health.complaint_health(world.account_a)

    assert state.warning is True
    assert state.over_limit is False
    world.account_a.refresh_from_db()
    assert world.account_a.sending_suspended_at is None


def test_it_suspends_sending_at_three_complaints_per_thousand(world, delivery):
    # given a campaign of the account being sent
    sending_now = Campaign.objects.create(
        account=world.account_a,
        name="Alpha Sentinel weekly",
        subject="Weekly",
        from_email="news@alpha.test",
        status=State.SENDING,
        started_at=timezone.now(),
    )
    others = [send(world, name=f"Issue {n}") for n in range(2)]
    _sent_events(delivery, 997)  # 1,000 messages with the three real ones

    # when complaints arrive: two are 0.2%, the third reaches 0.3%
    _record(delivery, Outcome.COMPLAINT)
    _record(others[0], Outcome.COMPLAINT)
    world.account_a.refresh_from_db()
    assert world.account_a.sending_suspended_at is None
    _record(others[1], Outcome.COMPLAINT)

    # then the account's sending is suspended, its campaign paused, both audited
    world.account_a.refresh_from_db()
    assert world.account_a.sending_suspended_at is not None
    assert "spam complaints" in world.account_a.sending_suspended_reason
    sending_now.refresh_from_db()
    assert sending_now.status == State.PAUSED
    actions = set(
        AuditEntry.objects.filter(account=world.account_a).values_list("action", flat=True)
    )
    assert {"account.sending_suspended", "campaign.paused"} <= actions
    # and nothing can be started until an operator lifts it
    with pytest.raises(ValidationError, match="suspended"):
        services.campaign_resume(campaign=sending_now, actor=world.alice)


def test_a_small_sender_is_not_suspended_for_one_complaint(world, delivery):
    # One complaint on a handful of messages is a high rate on no volume.
    _sent_events(delivery, 9)
    _record(delivery, Outcome.COMPLAINT)

    assert complaints_check(world.account_a) is False
    world.account_a.refresh_from_db()
    assert world.account_a.sending_suspended_at is None
    assert health.complaint_health(world.account_a).warning is True
