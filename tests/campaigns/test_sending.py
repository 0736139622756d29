"""The sending pipeline as logic: snapshot, claims, suppression re-checked, outcomes
recorded, messages well formed. (The same pipeline under a real worker and SMTP server
is in test_sending_worker.py.)"""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns import sending, services, tokens
from campaigns.messages import MessageFactory, Recipient
from campaigns.models import Campaign, Delivery, DeliveryBody
from campaigns.states import State
from contacts import services as contact_services
from contacts.models import Subscription
from events.models import Event

HTML = (
    '<html><body><p>Hi {{ first_name }}, see <a href="https://example.com/a?x=1&y=2">A</a> '
    'and <a href="https://example.com/b">B</a> and <a href="https://example.com/a?x=1&y=2">A'
    "</a>.</p></body></html>"
)


@pytest.fixture
def ready(world):
    """Account A with a postal address, a list of 5 subscribed contacts (plus erin) and a
    campaign for it."""
    account = world.account_a
    account.postal_address = "1 Alpha Road, Lisbon"
    account.save()
    newsletter = world.extras["list"]
    people = [
        contact_services.contact_create(
            account=account,
            actor=world.alice,
            email=f"p{n}@example.net",
            first_name=f"P{n}",
            lists=[newsletter],
        )
        for n in range(5)
    ]
    campaign = services.campaign_create(
        account=account,
        actor=world.alice,
        name="Launch",
        subject="News for {{ first_name }}",
        from_email="news@alpha.test",
        html=HTML,
        lists=[newsletter],
    )
    return campaign, people


def _start(campaign: Campaign, django_capture_on_commit_callbacks) -> Campaign:
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)
    campaign.refresh_from_db()
    return campaign


def test_the_snapshot_takes_each_sendable_contact_once(
    world, ready, django_capture_on_commit_callbacks
):
    campaign, people = ready
    second = contact_services.list_create(account=world.account_a, actor=None, name="Second")
    for person in people[:2]:
        contact_services.subscription_subscribe(contact=person, contact_list=second)
    campaign.lists.add(second)
    contact_services.suppression_add(account=world.account_a, email="p4@example.net", actor=None)

    campaign = _start(campaign, django_capture_on_commit_callbacks)

    assert campaign.status == State.SENDING
    # erin + p0..p3 (p0 and p1 are on both lists; p4 is suppressed)
    assert campaign.recipients_count == 5
    assert campaign.excluded_count == 1
    assert Delivery.objects.filter(campaign=campaign).count() == 5
    assert sending.take_snapshot(campaign.pk) == 0  # taken once
    assert Delivery.objects.filter(campaign=campaign).count() == 5


def test_a_batch_sends_personalized_messages_and_records_them(
    ready, django_capture_on_commit_callbacks
):
    campaign, _ = ready
    campaign = _start(campaign, django_capture_on_commit_callbacks)

    report = sending.send_batch(campaign.pk)

    assert report.sent == 6
    assert not report.more
    campaign.refresh_from_db()
    assert campaign.status == State.SENT
    assert campaign.sent_count == 6
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        ["erin@alpha.test"] + [f"p{n}@example.net" for n in range(5)]
    )
    message = next(m for m in mail.outbox if m.to == ["p2@example.net"])
    assert message.subject == "News for P2"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_url, mailto = message.extra_headers["List-Unsubscribe"].split(", ")
    assert https_url.startswith("<http://testserver/u/")
    assert mailto.startswith("<mailto:")
    html = message.alternatives[0][0]
    assert "https://example.com/a" not in html  # links go through the redirect
    assert html.count("http://testserver/t/c/") == 3
    assert "http://testserver/t/o/" in html  # open pixel
    assert "1 Alpha Road, Lisbon" in html
    assert "/u/" in html
    delivery = Delivery.objects.get(campaign=campaign, contact__email="p2@example.net")
    assert delivery.status == Delivery.Status.SENT
    assert delivery.message_id
    assert DeliveryBody.objects.get(delivery=delivery).subject == "News for P2"
    assert Event.objects.filter(campaign_id=campaign.pk, type="sent").count() == 6


def test_whoever_unsubscribes_after_the_snapshot_is_skipped(
    ready, django_capture_on_commit_callbacks
):
    campaign, people = ready
    campaign = _start(campaign, django_capture_on_commit_callbacks)
    subscription = Subscription.objects.get(contact=people[1])
    contact_services.subscription_unsubscribe(subscription=subscription)
    contact_services.suppression_add(account=campaign.account, email="p3@example.net", actor=None)

    sending.send_batch(campaign.pk)

    received = {m.to[0] for m in mail.outbox}
    assert "p1@example.net" not in received
    assert "p3@example.net" not in received
    assert len(received) == 4
    campaign.refresh_from_db()
    assert campaign.skipped_count == 2
    assert campaign.status == State.SENT


def test_a_paused_campaign_sends_nothing_until_resumed(ready, django_capture_on_commit_callbacks):
    campaign, _ = ready
    campaign = _start(campaign, django_capture_on_commit_callbacks)
    services.campaign_pause(campaign=campaign, actor=None)

    assert sending.send_batch(campaign.pk).sent == 0
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_resume(campaign=campaign, actor=None)
    assert sending.send_batch(campaign.pk).sent == 6


def test_start_is_refused_with_every_reason(world, django_capture_on_commit_callbacks):
    campaign = world.extras["campaign"]  # no list
    world.account_a.postal_address = ""
    world.account_a.save()
    with pytest.raises(ValidationError) as refused:
        services.campaign_start(campaign=campaign, actor=None)
    text = " ".join(refused.value.messages)
    assert "postal address" in text
    assert "list" in text
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT


def test_an_expired_claim_goes_back_to_the_queue(
    ready, settings, django_capture_on_commit_callbacks
):
    campaign, _ = ready
    campaign = _start(campaign, django_capture_on_commit_callbacks)
    claimed = sending.claim_batch(campaign, list(campaign.lists.values_list("pk", flat=True)), 3)
    assert len(claimed.recipients) == 3
    settings.MISSIVE_SEND_CLAIM_TIMEOUT = 0

    report = sending.sweep()

    assert report.returned == 3
    assert Delivery.objects.filter(campaign=campaign, status="queued").count() == 6


def test_every_message_parses_without_defects_and_keeps_lines_short(ready):
    campaign, _ = ready
    campaign.subject = "Ünïcode news for {{ first_name }} " + "x" * 250
    campaign.html = "<p>" + "long words " * 400 + "€" * 300 + "</p>" + HTML
    campaign.save()
    factory = MessageFactory(campaign, positions={"https://example.com/b": 1})
    message = factory.build(Recipient(7, "p0@example.net", "Zoë", "Ω" * 120, {"city": "Lisboa"}))

    raw = factory.as_bytes(message)

    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert b"\n" not in raw.replace(b"\r\n", b"")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert not parsed.defects
    for part in parsed.walk():
        assert not part.defects
    assert parsed["Subject"].startswith("Ünïcode news for Zoë")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"].endswith("@alpha.test>")
    html = parsed.get_body(("html",)).get_content()
    assert "€" * 300 in html
    token = html.split("/t/c/")[1].split('"')[0]
    assert tokens.read_click_token(token) == (7, 1)


def test_the_rate_limit_is_one_bucket_in_redis_for_every_worker():
    # given a bucket filled at one token every 1,000 seconds, so that the few
    # milliseconds this test takes refill nothing worth counting
    key = "test-bucket"
    from campaigns import ratelimit

    ratelimit._client().delete(f"missive:rate:{key}")

    # when three messages take a token each
    waits = [ratelimit.reserve(key, 0.001) for _ in range(3)]

    # then the first goes at once (the bucket holds one token), and each later one owes
    # the whole refill time of the ones before it: the debt grows for whoever comes next
    assert waits[0] == 0
    assert 990 <= waits[1] <= 1000
    assert 990 <= waits[2] - waits[1] <= 1000


def test_a_message_that_kills_its_worker_every_time_is_given_up(
    ready, settings, django_capture_on_commit_callbacks
):
    campaign, _ = ready
    campaign = _start(campaign, django_capture_on_commit_callbacks)
    settings.MISSIVE_SEND_CLAIM_TIMEOUT = 0
    list_ids = list(campaign.lists.values_list("pk", flat=True))
    for _attempt in range(settings.MISSIVE_SEND_MAX_ATTEMPTS):
        sending.claim_batch(campaign, list_ids, 1)  # claimed, then the worker "dies"
        sending.sweep()

    first = Delivery.objects.filter(campaign=campaign).order_by("pk").first()
    assert first.status == Delivery.Status.FAILED
    assert "Given up" in first.error
    campaign.refresh_from_db()
    assert campaign.failed_count == 1


def test_a_forbidden_tag_stored_by_other_means_renders_nothing(
    ready, django_capture_on_commit_callbacks
):
    campaign, _ = ready
    Campaign.objects.filter(pk=campaign.pk).update(
        html="<p>Hi {{ first_name }}{% debug %}{{ settings.SECRET_KEY }}</p>"
    )
    campaign = _start(campaign, django_capture_on_commit_callbacks)

    sending.send_batch(campaign.pk)

    html = mail.outbox[0].alternatives[0][0]
    assert "Hi " in html
    assert "test-secret-key" not in html
    assert "{%" not in html


def test_a_scheduled_campaign_is_started_by_beat_when_due(
    ready, django_capture_on_commit_callbacks, time_machine
):
    campaign, _ = ready
    when = timezone.now() + timedelta(hours=2)
    services.campaign_schedule(campaign=campaign, actor=None, when=when)

    with django_capture_on_commit_callbacks(execute=False):
        assert services.start_due_campaigns() == []
    time_machine.move_to(when + timedelta(seconds=5))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert services.start_due_campaigns() == [campaign.pk]

    campaign.refresh_from_db()
    assert campaign.status == State.SENDING
    assert len(callbacks) == 1  # the snapshot task, queued once the start commits


def test_a_due_campaign_that_can_no_longer_be_sent_fails_with_the_reason(
    ready, django_capture_on_commit_callbacks, time_machine
):
    campaign, _ = ready
    when = timezone.now() + timedelta(hours=1)
    services.campaign_schedule(campaign=campaign, actor=None, when=when)
    campaign.account.postal_address = ""
    campaign.account.save()
    time_machine.move_to(when + timedelta(seconds=5))

    with django_capture_on_commit_callbacks(execute=False):
        services.start_due_campaigns()

    campaign.refresh_from_db()
    assert campaign.status == State.FAILED
    assert "postal address" in campaign.failure_reason


def test_a_suspended_account_cannot_start_or_resume_and_its_lanes_stop(
    ready, django_capture_on_commit_callbacks
):
    campaign, _ = ready
    campaign = _start(campaign, django_capture_on_commit_callbacks)
    account = campaign.account
    account.sending_suspended_at = timezone.now()
    account.sending_suspended_reason = "Complaint rate over 0.3%."
    account.save()

    assert sending.send_batch(campaign.pk).sent == 0
    services.campaign_pause(campaign=campaign, actor=None)
    with pytest.raises(ValidationError, match="suspended"):
        services.campaign_resume(campaign=campaign, actor=None)
