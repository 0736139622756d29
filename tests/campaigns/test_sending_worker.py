"""The sending pipeline under real Celery workers (subprocesses on the test database)
delivering over SMTP to a server on loopback: well-formed messages, an unsubscribe
honoured mid-send, and a worker killed with SIGKILL mid-send.

Run with ``-s`` to see the chaos figures.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

import config.celery  # noqa: F401 - the app whose broker .delay() publishes to
from accounts import tasking
from campaigns import services, tasks, tokens
from campaigns.models import Campaign, Delivery
from campaigns.states import State
from contacts import services as contact_services
from contacts.models import Contact, ContactList, Subscription
from tests.factories import make_account, make_user, verified_domain
from tests.workers import BACKEND_NAME

SENDER = "news@letters.example"
SUBJECT = "Letters for {{ first_name }} — n°1"
HTML = (
    "<html><body><h1>Bonjour {{ first_name }}</h1>"
    "<p>" + "A long paragraph with no line break at all, café crème, " * 60 + "</p>"
    '<p><a href="https://example.com/offer?utm_source=missive&amp;x=1">The offer</a> and '
    '<a href="https://example.com/' + "deep/" * 60 + 'page">a very long link</a>.</p>'
    "</body></html>"
)
D = Delivery.Status


@pytest.fixture
def sender(transactional_db):
    """An account whose campaigns go out through the test's SMTP server, and a list."""
    owner = make_user("owner@letters.example")
    account = make_account(
        owner,
        "Letters Ltd",
        postal_address="1 Rue des Lettres, Lyon",
        sending_backend=BACKEND_NAME,
        default_from_email=SENDER,
    )
    verified_domain(account, SENDER.rpartition("@")[2])
    contact_list = contact_services.list_create(account=account, actor=owner, name="Letters")
    return account, contact_list


def add_audience(account, contact_list: ContactList, count: int) -> list[Contact]:
    """``count`` subscribed contacts, in two statements."""
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        Contact(account=account, email=f"r{n:05d}@example.net", first_name=f"R{n}")
        for n in range(count)
    )
    Subscription.objects.bulk_create(
        Subscription(
            contact=contact,
            contact_list=contact_list,
            status=Subscription.Status.SUBSCRIBED,
            consent_at=now,
        )
        for contact in contacts
    )
    return contacts


def start_campaign(account, contact_list: ContactList) -> Campaign:
    """Create and start a campaign; the snapshot task is queued for the workers when the
    start commits."""
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name="Worker send",
        subject=SUBJECT,
        from_email=SENDER,
        html=HTML,
        lists=[contact_list],
    )
    services.campaign_start(campaign=campaign, actor=None)
    return campaign


def status_of(campaign: Campaign) -> str:
    return Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk)


def unsubscribe_urls(header: str) -> list[str]:
    return re.findall(r"<([^>]*)>", header)


# -- a small campaign, end to end --------------------------------------------------------------


def test_a_worker_sends_one_well_formed_message_to_each_recipient(sender, workers, smtp_sink):
    account, contact_list = sender
    sink = smtp_sink
    contacts = add_audience(account, contact_list, 50)
    # Batches of 20 flushed every 7 messages, two lanes: several batches and partial
    # flushes on the way.
    workers.start(
        "--pool=prefork",
        "--concurrency=2",
        MISSIVE_SEND_BATCH_SIZE=20,
        MISSIVE_SEND_FLUSH_EVERY=7,
        MISSIVE_SEND_LANES=2,
    )

    campaign = start_campaign(account, contact_list)

    workers.wait_for(
        lambda: status_of(campaign) not in (State.SENDING, State.DRAFT),
        timeout=60,
        what=lambda: f"campaign to finish ({len(sink)} messages received so far)",
    )
    campaign.refresh_from_db()
    assert campaign.status == State.SENT, campaign.failure_reason
    assert campaign.recipients_count == 50
    assert campaign.sent_count == 50
    assert (campaign.failed_count, campaign.skipped_count) == (0, 0)

    addresses = {c.email for c in contacts}
    assert sink.per_recipient() == dict.fromkeys(addresses, 1)
    recorded = dict(
        Delivery.objects.filter(campaign=campaign).values_list("contact__email", "message_id")
    )
    assert set(recorded) == addresses
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        D.SENT
    }

    message_ids = set()
    for received in sink.messages:
        (to,) = received.rcpt_tos
        raw = received.raw
        assert received.mail_from == SENDER
        lines = raw.split(b"\r\n")
        too_long = [len(line) for line in lines if len(line) > 998]
        assert not too_long, f"{to}: lines of {too_long} bytes"
        assert b"\n" not in raw.replace(b"\r\n", b""), f"{to}: a bare LF"

        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        for part in parsed.walk():
            assert not part.defects, f"{to}: {part.get_content_type()} {part.defects}"
        assert parsed["To"] == to
        first_name = "R" + str(int(to[1:6]))
        assert parsed["Subject"] == f"Letters for {first_name} — n°1"
        assert parsed.get_content_type() == "multipart/alternative"
        assert f"Bonjour {first_name}" in parsed.get_body(("html",)).get_content()
        assert "café crème" in parsed.get_body(("plain",)).get_content()

        urls = unsubscribe_urls(parsed["List-Unsubscribe"])
        web = [u for u in urls if urlsplit(u).scheme in ("http", "https")]
        mailto = [u for u in urls if u.startswith("mailto:")]
        assert len(web) == 1, parsed["List-Unsubscribe"]
        assert len(mailto) == 1, parsed["List-Unsubscribe"]
        assert len(urls) == 2, parsed["List-Unsubscribe"]
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert re.fullmatch(r".*<[^<>\s]+>", str(parsed["List-Id"])), parsed["List-Id"]

        message_id = str(parsed["Message-ID"])
        assert message_id.endswith("@letters.example>"), message_id
        assert recorded[to] == message_id  # the ledger knows what was sent
        message_ids.add(message_id)
    assert len(message_ids) == 50
    workers.assert_no_tracebacks()


# -- unsubscribing while the campaign is being sent --------------------------------------------


def test_whoever_unsubscribes_while_their_message_is_queued_never_gets_it(
    sender, workers, smtp_sink
):
    account, contact_list = sender
    sink = smtp_sink
    account.send_rate = 100  # per second, after a burst of one second's worth
    account.save(update_fields=["send_rate"])
    contacts = add_audience(account, contact_list, 300)
    workers.start(
        "--pool=prefork",
        "--concurrency=2",
        MISSIVE_SEND_BATCH_SIZE=50,
        MISSIVE_SEND_FLUSH_EVERY=10,
        MISSIVE_SEND_LANES=2,
    )
    campaign = start_campaign(account, contact_list)
    workers.wait_for(lambda: len(sink) > 0, timeout=60, what="the first message")

    # The three recipients claimed last, each stopped a different way. Their rows are
    # locked while we check they are still queued (a claim skips locked rows), so the
    # check cannot race the workers.
    last = list(
        Delivery.objects.filter(campaign=campaign).order_by("-id").select_related("contact")[:3]
    )
    by_click, by_service, by_suppression = last
    client = Client()
    with transaction.atomic():
        states = dict(
            Delivery.objects.select_for_update()
            .filter(pk__in=[d.pk for d in last])
            .values_list("pk", "status")
        )
        assert set(states.values()) == {D.QUEUED}, f"claimed before we could stop them: {states}"
        received_then = len(sink)
        # RFC 8058 one-click, on the URL the message will carry.
        url = reverse("unsubscribe", args=[tokens.recipient_token(by_click.pk)])
        response = client.post(url, {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        contact_services.subscription_unsubscribe(
            subscription=Subscription.objects.get(contact=by_service.contact)
        )
        contact_services.suppression_add(account=account, email=by_suppression.contact.email)
    assert received_then < 297, "the send was over before anyone unsubscribed"

    # And someone who already has the message uses its List-Unsubscribe URL.
    first = email.message_from_bytes(sink.messages[0].raw, policy=email.policy.default)
    (web,) = (u for u in unsubscribe_urls(first["List-Unsubscribe"]) if u.startswith("http"))
    response = client.post(urlsplit(web).path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert Subscription.objects.get(contact__email=first["To"]).status == "unsubscribed"

    workers.wait_for(
        lambda: status_of(campaign) != State.SENDING,
        timeout=60,
        what=lambda: f"campaign to finish ({len(sink)} of 297 messages received so far)",
    )
    received = sink.per_recipient()
    stopped = {d.contact.email for d in last}
    assert not stopped & set(received), f"sent after unsubscribing: {stopped & set(received)}"
    assert received == dict.fromkeys({c.email for c in contacts} - stopped, 1)
    campaign.refresh_from_db()
    assert campaign.status == State.SENT
    assert (campaign.sent_count, campaign.skipped_count) == (297, 3)
    assert set(
        Delivery.objects.filter(pk__in=[d.pk for d in last]).values_list("status", flat=True)
    ) == {D.SKIPPED}
    workers.assert_no_tracebacks()


# -- chaos: a worker killed mid-send -----------------------------------------------------------

CHAOS_RECIPIENTS = 5000
CHAOS_BATCH = 100
CHAOS_FLUSH = 20
CHAOS_CONCURRENCY = 2
CHAOS_LANES = 4
CHAOS_CLAIM_TIMEOUT = 5


def chaos_workers(workers, settings) -> Callable[[], object]:
    """What starts a worker of the chaos tests: short batches and leases, prefork pool.
    The sweep runs in the test process, with the workers' settings."""
    worker_settings = {
        "MISSIVE_SEND_BATCH_SIZE": CHAOS_BATCH,
        "MISSIVE_SEND_FLUSH_EVERY": CHAOS_FLUSH,
        "MISSIVE_SEND_LANES": CHAOS_LANES,
        "MISSIVE_SEND_CLAIM_TIMEOUT": CHAOS_CLAIM_TIMEOUT,
    }
    settings.MISSIVE_SEND_BATCH_SIZE = CHAOS_BATCH
    settings.MISSIVE_SEND_LANES = CHAOS_LANES
    settings.MISSIVE_SEND_CLAIM_TIMEOUT = CHAOS_CLAIM_TIMEOUT
    pool = ("--pool=prefork", f"--concurrency={CHAOS_CONCURRENCY}")
    return lambda: workers.start(*pool, **worker_settings)


def test_a_worker_killed_mid_send_loses_no_one_and_repeats_at_most_its_unflushed_messages(
    sender, workers, smtp_sink, settings
):
    """SIGKILL the worker (and its pool) mid-send, start another, let the sweeper return
    the dead worker's claims once their lease expires: everyone gets the message.

    What may be sent twice is what the dead worker had sent but not yet recorded: the
    ledger is written every MISSIVE_SEND_FLUSH_EVERY outcomes, so at most that many per
    batch in flight, and a worker has at most ``concurrency`` batches in flight
    (prefetch multiplier 1, late acks). The bound asserted is therefore
    concurrency * flush size (2 * 20 = 40), tighter than one batch (100). Each duplicate
    must moreover be a recipient whose claim the dead worker held.

    Batches are kept short (100 messages, well under a second each) beside the 5 s lease:
    a live batch that outlived its lease would be swept and sent twice (see the last test
    of this file).
    """
    account, contact_list = sender
    sink = smtp_sink
    began = time.monotonic()
    contacts = add_audience(account, contact_list, CHAOS_RECIPIENTS)
    addresses = {c.email for c in contacts}
    start_chaos_worker = chaos_workers(workers, settings)
    first = start_chaos_worker()
    campaign = start_campaign(account, contact_list)

    workers.wait_for(
        lambda: len(sink) >= CHAOS_RECIPIENTS // 3,
        timeout=60,
        every=0.02,
        what=lambda: f"a third of the messages before the kill ({len(sink)} so far)",
        need_alive=first,
    )
    first.kill()
    killed_at = time.monotonic()
    received_at_kill = len(sink)
    orphaned = set(
        Delivery.objects.filter(campaign=campaign, status=D.SENDING).values_list(
            "contact__email", flat=True
        )
    )
    recorded_at_kill = Delivery.objects.filter(campaign=campaign, status=D.SENT).count()
    assert received_at_kill < CHAOS_RECIPIENTS, "the kill came after the send was over"
    assert status_of(campaign) == State.SENDING
    assert orphaned, "the kill came between batches: no claim was left to recover"

    second = start_chaos_worker()
    returned = 0

    def sent_after_sweeping() -> bool:
        nonlocal returned
        if status_of(campaign) != State.SENDING:
            return True
        returned += tasks.sweep_sending()["returned"]  # what beat runs every minute
        return status_of(campaign) != State.SENDING

    workers.wait_for(
        sent_after_sweeping,
        timeout=90,
        every=0.5,
        what=lambda: f"campaign to finish after the kill ({len(sink)} messages received so far)",
        need_alive=second,
    )
    recovered = time.monotonic() - killed_at
    elapsed = time.monotonic() - began

    received = sink.per_recipient()
    missing = addresses - set(received)
    duplicates = {address: n for address, n in received.items() if n > 1}
    extra = sum(n - 1 for n in duplicates.values())
    print(
        f"\nchaos: {len(duplicates)} duplicates ({extra} extra messages) among "
        f"{CHAOS_RECIPIENTS} recipients; {len(received)} received, {len(sink)} messages "
        f"in all; batch {CHAOS_BATCH}, flush every {CHAOS_FLUSH}, concurrency "
        f"{CHAOS_CONCURRENCY}, lanes {CHAOS_LANES}, claim timeout {CHAOS_CLAIM_TIMEOUT}s; "
        f"killed after {received_at_kill} received ({recorded_at_kill} recorded, "
        f"{len(orphaned)} claims in flight, {returned} returned by the sweep); "
        f"done {recovered:.1f}s after the kill (+{killed_at - began:.1f}s before), "
        f"{elapsed:.1f}s in all"
    )
    assert not missing, f"{len(missing)} recipients never received it, e.g. {sorted(missing)[:5]}"
    assert set(received) == addresses
    bound = CHAOS_CONCURRENCY * CHAOS_FLUSH
    assert len(duplicates) <= bound <= CHAOS_BATCH, (
        f"{len(duplicates)} recipients got the message twice or more (bound {bound}): "
        f"{sorted(duplicates)[:10]}"
    )
    assert set(duplicates) <= orphaned, (
        f"sent twice though the dead worker did not hold them: {set(duplicates) - orphaned}"
    )
    campaign.refresh_from_db()
    assert campaign.status == State.SENT
    assert campaign.sent_count == CHAOS_RECIPIENTS
    assert not Delivery.objects.filter(campaign=campaign).exclude(status=D.SENT).exists()
    workers.assert_no_tracebacks()


# -- a campaign whose snapshot task was lost ---------------------------------------------------


def test_the_sweeper_restarts_a_campaign_whose_snapshot_task_was_lost(
    sender, workers, smtp_sink, settings, monkeypatch
):
    """The start is committed, then publishing the snapshot task fails (the broker is
    down for a moment): the campaign must not stay "sending" for ever."""
    account, contact_list = sender
    sink = smtp_sink
    contacts = add_audience(account, contact_list, 20)

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(tasking, "_send", broker_down)
    with pytest.raises(OperationalError):
        start_campaign(account, contact_list)
    monkeypatch.undo()
    campaign = Campaign.objects.get(account=account, name="Worker send")
    assert status_of(campaign) == State.SENDING
    assert campaign.snapshot_at is None

    settings.MISSIVE_SEND_CLAIM_TIMEOUT = 1
    Campaign.objects.filter(pk=campaign.pk).update(started_at=timezone.now() - timedelta(seconds=5))
    workers.start("--pool=solo", MISSIVE_SEND_CLAIM_TIMEOUT=1)
    assert tasks.sweep_sending()["snapshots"] == [campaign.pk]

    workers.wait_for(
        lambda: status_of(campaign) != State.SENDING,
        timeout=60,
        what=lambda: f"campaign to finish ({len(sink)} messages received so far)",
    )
    assert sink.per_recipient() == dict.fromkeys({c.email for c in contacts}, 1)
    workers.assert_no_tracebacks()


# -- a live batch slower than its lease ---------------------------------------------------------


def test_a_batch_that_outlives_its_lease_while_its_worker_lives_is_not_sent_twice(
    sender, workers, smtp_sink, settings
):
    """A slow batch (here: a rate of 20 messages a second for a lease of one second)
    renews its lease at every flush; the sweeper leaves it alone, and nobody gets the
    message twice or is counted twice."""
    account, contact_list = sender
    sink = smtp_sink
    account.send_rate = 20
    account.save(update_fields=["send_rate"])
    contacts = add_audience(account, contact_list, 60)
    settings.MISSIVE_SEND_CLAIM_TIMEOUT = 1
    settings.MISSIVE_SEND_LANES = 1
    workers.start(
        "--pool=prefork",
        "--concurrency=2",
        MISSIVE_SEND_BATCH_SIZE=60,
        MISSIVE_SEND_FLUSH_EVERY=5,
        MISSIVE_SEND_LANES=1,
        MISSIVE_SEND_CLAIM_TIMEOUT=1,
    )
    campaign = start_campaign(account, contact_list)

    def done_while_sweeping() -> bool:
        tasks.sweep_sending()  # as often as it can, to catch a lease taken for dead
        return status_of(campaign) != State.SENDING

    workers.wait_for(
        done_while_sweeping,
        timeout=60,
        every=0.3,
        what=lambda: f"campaign to finish ({len(sink)} messages received so far)",
    )
    received = sink.per_recipient()
    duplicates = [address for address, n in received.items() if n > 1]
    assert received == dict.fromkeys({c.email for c in contacts}, 1), duplicates[:10]
    campaign.refresh_from_db()
    assert campaign.sent_count == 60
    workers.assert_no_tracebacks()
