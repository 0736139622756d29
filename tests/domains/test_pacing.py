"""Pacing against real Redis: a warming-up domain's daily cap, connection slots shared
by workers, slowing down after deferrals; and real workers sending a campaign to a
real SMTP server on loopback under a warm-up cap and under a provider's connection
limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import zoneinfo
from collections import Counter

import pytest
from django.utils import timezone

from campaigns import receivers, sending, services
from campaigns.models import Campaign, Delivery
from campaigns.states import State
from campaigns.transports import ProviderBusy, SmtpTransport
from contacts import services as contact_services
from contacts.models import Contact, Subscription
from domains import pacing, signals
from domains import services as domain_services
from tests.factories import make_account, make_user, verified_domain
from tests.workers import BACKEND_NAME, SmtpSink

ZONE = "Pacific/Auckland"  # a day that starts half a day before UTC's
D = Delivery.Status


def local_today() -> dt.date:
    return timezone.now().astimezone(zoneinfo.ZoneInfo(ZONE)).date()


@pytest.fixture
def account(transactional_db):
    owner = make_user("owner@warm.example")
    return make_account(
        owner,
        "Warm Ltd",
        sending_backend=BACKEND_NAME,
        default_from_email="news@warm.example",
        time_zone=ZONE,
    )


def warming_domain(account, schedule: list[int], name: str = "warm.example"):
    """A verified domain on the first day of a warm-up."""
    domain = verified_domain(account, name)
    domain.warmup = True
    domain.warmup_started_on = local_today()
    domain.warmup_schedule = schedule
    domain.save()
    return domain


# -- the daily cap of a warming-up domain --------------------------------------------------------


def test_it_never_grants_more_than_the_cap_to_workers_taking_it_at_once(account):
    # given a domain allowed 30 messages today
    domain = warming_domain(account, [30, 60])
    granted: list[int] = []
    lock = threading.Lock()

    # when eight workers each take batches of 7 until nothing is left
    def worker() -> None:
        while taken := pacing.reserve_daily(domain, 7):
            with lock:
                granted.append(taken)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then they got exactly the cap between them
    assert sum(granted) == 30
    assert pacing.sent_today(domain) == 30


def test_it_gives_back_what_a_batch_did_not_send(account):
    # given a batch that took 20 of a cap of 30 and sent 15 of them
    domain = warming_domain(account, [30])
    assert pacing.reserve_daily(domain, 20) == 20
    pacing.release_daily(domain, 5)

    # then 15 remain for the next batch, however many it asks for
    assert pacing.reserve_daily(domain, 100) == 15
    assert pacing.reserve_daily(domain, 1) == 0


def test_it_grants_all_to_a_domain_that_is_not_warming_up(account):
    domain = verified_domain(account, "cold.example")

    assert pacing.reserve_daily(domain, 500) == 500
    assert pacing.sent_today(domain) == 0


def test_the_next_day_begins_at_the_accounts_local_midnight(account):
    domain = warming_domain(account, [30])

    midnight = pacing.next_local_midnight(domain)

    local = midnight.astimezone(zoneinfo.ZoneInfo(ZONE))
    assert (local.date(), local.time()) == (local_today() + dt.timedelta(days=1), dt.time(0))
    assert dt.timedelta(0) < midnight - timezone.now() <= dt.timedelta(hours=25)


# -- connection slots ---------------------------------------------------------------------------


def test_it_holds_no_more_connections_than_the_providers_limit(settings):
    # given Yahoo allowed two connections, both held
    settings.MISSIVE_PROVIDER_LIMITS = {**settings.MISSIVE_PROVIDER_LIMITS}
    settings.MISSIVE_PROVIDER_LIMITS["yahoo"] = {"connections": 2, "per_connection": 5}
    first = pacing.acquire_slot("yahoo")
    pacing.acquire_slot("yahoo")

    # then a third waits, and gives up when its wait is over
    with pytest.raises(pacing.SlotUnavailable):
        pacing.acquire_slot("yahoo", wait=0.3)
    # and is served as soon as one is given back; other providers are not concerned
    pacing.release_slot(first)
    with pacing.connection_slot("yahoo", wait=0.3), pacing.connection_slot("gmail", wait=0.3):
        assert pacing.connections_in_use("yahoo") == 2
    assert pacing.connections_in_use("yahoo") == 1


def test_workers_waiting_for_slots_never_hold_more_than_the_limit(settings):
    settings.MISSIVE_PROVIDER_LIMITS = {**settings.MISSIVE_PROVIDER_LIMITS}
    settings.MISSIVE_PROVIDER_LIMITS["yahoo"] = {"connections": 2, "per_connection": 5}
    lock = threading.Lock()
    holding, most, served = 0, 0, 0

    # when six workers each open three connections, one after the other
    def worker() -> None:
        nonlocal holding, most, served
        for _ in range(3):
            with pacing.connection_slot("yahoo", wait=10):
                with lock:
                    holding += 1
                    most = max(most, holding)
                time.sleep(0.02)
                with lock:
                    holding -= 1
                    served += 1

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then all were served, never more than two at a time
    assert served == 18
    assert most == 2


def test_a_killed_workers_slot_is_free_again_once_its_lease_expires(settings):
    # given both Yahoo slots taken by workers that died without giving them back
    settings.MISSIVE_PROVIDER_LIMITS = {**settings.MISSIVE_PROVIDER_LIMITS}
    settings.MISSIVE_PROVIDER_LIMITS["yahoo"] = {"connections": 2, "per_connection": 5}
    settings.MISSIVE_CONNECTION_LEASE = 1
    pacing.acquire_slot("yahoo")
    pacing.acquire_slot("yahoo")

    # when another worker waits for one
    started = time.monotonic()
    with pacing.connection_slot("yahoo", wait=5):
        waited = time.monotonic() - started

    # then it got one when the first lease ran out
    assert waited >= 0.5


def test_a_renewed_lease_outlives_its_first_expiry(settings):
    settings.MISSIVE_PROVIDER_LIMITS = {**settings.MISSIVE_PROVIDER_LIMITS}
    settings.MISSIVE_PROVIDER_LIMITS["yahoo"] = {"connections": 1, "per_connection": 5}
    settings.MISSIVE_CONNECTION_LEASE = 1
    slot = pacing.acquire_slot("yahoo")

    # when its worker renews it while the connection lives on
    for _ in range(3):
        time.sleep(0.5)
        slot.renew(force=True)

    # then nobody took the slot meanwhile
    with pytest.raises(pacing.SlotUnavailable):
        pacing.acquire_slot("yahoo", wait=0.2)


def test_a_lease_that_ran_out_and_was_taken_is_not_renewed(settings):
    settings.MISSIVE_PROVIDER_LIMITS = {**settings.MISSIVE_PROVIDER_LIMITS}
    settings.MISSIVE_PROVIDER_LIMITS["yahoo"] = {"connections": 1, "per_connection": 5}
    settings.MISSIVE_CONNECTION_LEASE = 0.3
    stalled = pacing.acquire_slot("yahoo")

    # when its worker stalls past the lease and another worker takes the connection
    time.sleep(0.4)
    other = pacing.acquire_slot("yahoo", wait=0)

    # then the stalled worker learns it holds nothing, and the other keeps its place
    assert stalled.renew(force=True) is False
    assert pacing.connections_in_use("yahoo") == 1
    assert other.renew(force=True) is True


def test_a_transport_whose_lease_was_taken_waits_for_a_connection_of_its_own(
    settings, start_smtp_server
):
    server = start_smtp_server()
    settings.MISSIVE_PROVIDER_LIMITS = {**settings.MISSIVE_PROVIDER_LIMITS}
    settings.MISSIVE_PROVIDER_LIMITS["yahoo"] = {"connections": 1, "per_connection": 50}
    settings.MISSIVE_CONNECTION_LEASE = 0.3
    settings.MISSIVE_CONNECTION_SLOT_WAIT = 0
    transport = SmtpTransport({"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": server.port})
    transport.open("yahoo")
    first_lease = transport.slot.lease if transport.slot else ""

    # when it stalls past its lease and another worker takes Yahoo's one connection
    time.sleep(0.4)
    other = pacing.acquire_slot("yahoo", wait=0)

    # then its next message does not go on over the limit: it waits for a connection,
    # and here gives up the batch for now, without sending
    with pytest.raises(ProviderBusy):
        transport._connection_for("yahoo")
    assert transport.connection is None
    pacing.release_slot(other)

    # and once the other is done it gets a lease of its own
    transport._connection_for("yahoo")
    assert transport.slot is not None
    assert transport.slot.lease != first_lease
    transport.close()


# -- deferrals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "deferral"),
    [
        ("421 4.7.0 Try again later, closing connection.", True),
        ("421-4.7.28 Our system has detected an unusual rate of unsolicited mail", True),
        ("451 4.7.500 Server busy. Please try again later.", True),
        ("421 Messages from 192.0.2.1 temporarily deferred due to unexpected volume", True),
        ("450 4.2.1 The user you are trying to contact is receiving mail too quickly", False),
        ("452 4.2.2 The email account that you tried to reach is over quota", False),
        ("550 5.7.1 Rejected by policy", False),
        ("Cannot reach the mail server: Connection refused", False),
    ],
)
def test_it_tells_a_deferral_for_rate_from_other_temporary_answers(answer, deferral):
    assert pacing.is_rate_deferral(answer) is deferral


def test_a_deferral_halves_the_providers_pace_for_a_while(settings):
    settings.MISSIVE_DEFERRAL_START_RATE = 20
    assert pacing.provider_pace("gmail") is None

    # when Gmail defers twice at once (one slow-down seen by two workers), then again later
    assert pacing.note_deferral("gmail") == 10
    assert pacing.note_deferral("gmail") == 10
    time.sleep(1.1)
    assert pacing.note_deferral("gmail") == 5

    # then its pace is a quarter, for the next fifteen minutes; the others are not concerned
    assert pacing.provider_pace("gmail") == 5
    assert pacing.provider_pace("yahoo") is None
    assert pacing.deferrals_today("gmail") == 3
    assert 0 < pacing._client().ttl("missive:pacing:pace:gmail") <= 15 * 60


class DefersGmail(SmtpSink):
    """Defers every Gmail address for rate, as Gmail does to a sender going too fast."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@gmail.com"):
            return "421 4.7.28 Unusual rate of unsolicited mail, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_batch_slows_down_a_provider_that_defers_for_rate(
    account, start_smtp_server, settings, django_capture_on_commit_callbacks
):
    # given a server that defers Gmail's messages, and a campaign to Gmail and others
    server = start_smtp_server(DefersGmail())
    settings.MISSIVE_SENDING_BACKENDS = {BACKEND_NAME: f"smtp://127.0.0.1:{server.port}"}
    settings.MISSIVE_DEFERRAL_START_RATE = 20
    verified_domain(account, "warm.example")
    contact_list = contact_services.list_create(account=account, actor=None, name="Readers")
    add_audience(account, contact_list, 2, "gmail.com")
    add_audience(account, contact_list, 2, "example.net")
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name="Paced",
        subject="Hello",
        from_email="news@warm.example",
        html="<p>Hello</p>",
        lists=[contact_list],
    )
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)

    # when one batch goes out
    report = sending.send_batch(campaign.pk)

    # then the others arrived, Gmail's wait for a retry, and Gmail's pace was halved
    assert report.sent == 2
    assert server.per_recipient() == {"r0000@example.net": 1, "r0001@example.net": 1}
    assert statuses(campaign) == {D.SENT: 2, D.QUEUED: 2}
    assert pacing.deferrals_today("gmail") == 2
    assert pacing.provider_pace("gmail") == 10
    assert pacing.provider_pace("other") is None


def test_a_batch_whose_provider_has_no_free_connection_waits_without_spending_attempts(
    account, start_smtp_server, settings, django_capture_on_commit_callbacks
):
    # given every connection Missive may open to Yahoo held by other workers
    server = start_smtp_server(SmtpSink())
    settings.MISSIVE_SENDING_BACKENDS = {BACKEND_NAME: f"smtp://127.0.0.1:{server.port}"}
    settings.MISSIVE_PROVIDER_LIMITS = {
        **settings.MISSIVE_PROVIDER_LIMITS,
        "yahoo": {"connections": 1, "per_connection": 20, "rate": None},
    }
    settings.MISSIVE_CONNECTION_SLOT_WAIT = 0
    held = pacing.acquire_slot("yahoo")
    verified_domain(account, "warm.example")
    contact_list = contact_services.list_create(account=account, actor=None, name="Readers")
    add_audience(account, contact_list, 3, "yahoo.com")
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name="Busy",
        subject="Hello",
        from_email="news@warm.example",
        html="<p>Hello</p>",
        lists=[contact_list],
    )
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)

    # when a batch finds no free connection
    report = sending.send_batch(campaign.pk)

    # then nothing is sent, the messages are queued again, and no attempt is spent
    assert report.sent == 0
    assert len(server) == 0
    assert statuses(campaign) == {D.QUEUED: 3}
    assert set(campaign.deliveries.values_list("attempts", flat=True)) == {0}
    assert all(d.retry_at > timezone.now() for d in campaign.deliveries.all())

    # and once the connection is free they go
    pacing.release_slot(held)
    campaign.deliveries.update(retry_at=None)
    assert sending.send_batch(campaign.pk).sent == 3


def snapshot_taken(account, count: int, capture) -> Campaign:
    """A campaign from warm.example to ``count`` people, its audience taken in this
    process (no worker)."""
    contact_list = contact_services.list_create(account=account, actor=None, name="Readers")
    add_audience(account, contact_list, count, "example.net")
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name="Paced",
        subject="Hello",
        from_email="news@warm.example",
        html="<p>Hello</p>",
        lists=[contact_list],
    )
    with capture(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)
    return campaign


def test_a_domain_past_its_cap_holds_the_queue_without_spending_attempts(
    account, start_smtp_server, settings, django_capture_on_commit_callbacks
):
    # given a warming-up domain that already sent its 3 messages today
    server = start_smtp_server()
    settings.MISSIVE_SENDING_BACKENDS = {BACKEND_NAME: f"smtp://127.0.0.1:{server.port}"}
    domain = warming_domain(account, [3, 10])
    campaign = snapshot_taken(account, 5, django_capture_on_commit_callbacks)
    first = sending.send_batch(campaign.pk)

    # when the next batch comes
    second = sending.send_batch(campaign.pk)

    # then it claimed nothing, and the rest waits for local midnight, no attempt spent
    assert (first.sent, first.more) == (3, True)
    assert (second.claimed, second.more) == (0, False)
    assert len(server) == 3
    queued = Delivery.objects.filter(campaign=campaign, status=D.QUEUED)
    assert set(queued.values_list("retry_at", "attempts")) == {
        (pacing.next_local_midnight(domain), 0)
    }
    # and the sweeper does not wake the campaign before then
    assert campaign.pk not in sending.sweep().kicked


@pytest.mark.parametrize("change", ["turned off", "caps raised"])
def test_a_warmup_turned_off_or_raised_releases_what_it_held_today(
    account, start_smtp_server, settings, django_capture_on_commit_callbacks, monkeypatch, change
):
    # given a warming-up domain that sent its 3 messages today and holds 2 until midnight
    server = start_smtp_server()
    settings.MISSIVE_SENDING_BACKENDS = {BACKEND_NAME: f"smtp://127.0.0.1:{server.port}"}
    domain = warming_domain(account, [3, 10])
    campaign = snapshot_taken(account, 5, django_capture_on_commit_callbacks)
    sending.send_batch(campaign.pk)
    assert sending.send_batch(campaign.pk).more is False
    held = Delivery.objects.filter(campaign=campaign, status=D.QUEUED)
    assert held.filter(retry_at=pacing.next_local_midnight(domain)).count() == 2

    # when its owner turns the warm-up off, or raises today's cap
    kicks: list[tuple[object, ...]] = []
    monkeypatch.setattr(receivers, "enqueue", lambda *args: kicks.append(args))
    domain_services.domain_update(
        domain=domain,
        actor=None,
        warmup=change == "caps raised",
        warmup_schedule=[10, 20] if change == "caps raised" else None,
    )

    # then the held messages are due now, the campaign's lanes are started, and they go
    assert set(held.values_list("retry_at", flat=True)) == {None}
    assert kicks == [("campaigns.kick", campaign.pk)]
    assert sending.send_batch(campaign.pk).sent == 2
    assert len(server) == 5


def test_a_warmup_turned_on_releases_nothing(account):
    domain = verified_domain(account, "warm.example")
    told: list[int] = []

    def listen(sender: object, *, domain_id: int, **_: object) -> None:
        told.append(domain_id)

    signals.warmup_changed.connect(listen)
    try:
        domain_services.domain_update(domain=domain, actor=None, warmup=True)
        domain_services.domain_update(domain=domain, actor=None, warmup=True)
        assert told == []
        domain_services.domain_update(domain=domain, actor=None, warmup=False)
        assert told == [domain.pk]
    finally:
        signals.warmup_changed.disconnect(listen)


def test_a_lane_that_finds_the_cap_reserved_by_another_leaves_it_the_rest_of_today(
    account, start_smtp_server, settings, django_capture_on_commit_callbacks, monkeypatch
):
    # given a warming-up domain allowed 3 messages today, and a campaign to 5 people
    server = start_smtp_server()
    settings.MISSIVE_SENDING_BACKENDS = {BACKEND_NAME: f"smtp://127.0.0.1:{server.port}"}
    domain = warming_domain(account, [3, 10])
    campaign = snapshot_taken(account, 5, django_capture_on_commit_callbacks)

    # when a second lane comes between the first lane's reservation of the whole cap and
    # its claim: it is granted nothing and holds the queue until tomorrow
    real_claim = sending.claim_batch
    second: list[sending.BatchReport] = []

    def claim_after_another_lane(*args, **kwargs):
        if not second:
            second.append(sending.send_batch(campaign.pk))
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(sending, "claim_batch", claim_after_another_lane)
    first = sending.send_batch(campaign.pk)
    monkeypatch.setattr(sending, "claim_batch", real_claim)

    # then the first lane, finding nothing due, gives its reservation back and the queue
    # is due again, so the next batch sends today's 3
    assert (second[0].claimed, second[0].more) == (0, False)
    assert (first.claimed, first.more) == (0, True)
    assert sending.send_batch(campaign.pk).sent == 3
    assert pacing.sent_today(domain) == 3
    # and the rest is held until local midnight once the cap is truly spent
    assert sending.send_batch(campaign.pk).more is False
    queued = Delivery.objects.filter(campaign=campaign, status=D.QUEUED)
    assert set(queued.values_list("retry_at", "attempts")) == {
        (pacing.next_local_midnight(domain), 0)
    }
    assert len(server) == 3


# -- real workers, a real SMTP server ------------------------------------------------------------


class ConnectionCounter(SmtpSink):
    """Keeps what it receives and counts, per connection, the messages it carried, and how
    many connections were open at once (from EHLO to QUIT)."""

    def __init__(self) -> None:
        super().__init__()
        self.open_now = 0
        self.most_open = 0
        self.per_connection: Counter[int] = Counter()
        self.connections = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self._lock:
            self.open_now += 1
            self.connections += 1
            self.most_open = max(self.most_open, self.open_now)
            session.number = self.connections
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.01)  # a receiver takes its time: connections overlap
        with self._lock:
            self.per_connection[session.number] += 1
        return await super().handle_DATA(server, session, envelope)

    async def handle_QUIT(self, server, session, envelope):
        with self._lock:
            self.open_now -= 1
        return "221 Bye"


@pytest.fixture
def smtp_sink(start_smtp_server):
    """The server the workers send to counts connections."""
    return start_smtp_server(ConnectionCounter())


def add_audience(account, contact_list, count: int, domain: str) -> None:
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        Contact(account=account, email=f"r{n:04d}@{domain}") for n in range(count)
    )
    Subscription.objects.bulk_create(
        Subscription(
            contact=c,
            contact_list=contact_list,
            status=Subscription.Status.SUBSCRIBED,
            consent_at=now,
        )
        for c in contacts
    )


def start_campaign(account, count: int, domain: str) -> Campaign:
    contact_list = contact_services.list_create(account=account, actor=None, name="Readers")
    add_audience(account, contact_list, count, domain)
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name="Paced",
        subject="Hello",
        from_email="news@warm.example",
        html="<p>Hello {{ first_name }}</p>",
        lists=[contact_list],
    )
    services.campaign_start(campaign=campaign, actor=None)
    return campaign


def statuses(campaign: Campaign) -> Counter[str]:
    return Counter(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))


def test_workers_send_a_warming_domains_cap_and_hold_the_rest_until_local_midnight(
    account, workers, smtp_sink
):
    # given a domain on its first day of warm-up, allowed 30 messages
    domain = warming_domain(account, [30, 60, 120])
    for _ in range(2):
        workers.start(MISSIVE_SEND_BATCH_SIZE=8, MISSIVE_SEND_FLUSH_EVERY=3, MISSIVE_SEND_LANES=2)

    # when two workers send a campaign from it to 100 recipients
    campaign = start_campaign(account, 100, "example.net")
    midnight = pacing.next_local_midnight(domain)

    def held() -> bool:
        rows = Delivery.objects.filter(campaign=campaign)
        return (
            rows.filter(status=D.SENT).count() == 30
            and rows.filter(status=D.QUEUED, retry_at=midnight).count() == 70
        )

    workers.wait_for(held, timeout=60, what=lambda: f"the cap to be spent: {statuses(campaign)}")

    # then exactly 30 arrived today; the others wait for the next day, no attempt spent
    time.sleep(1)  # a lane that was still at work would have sent by now
    assert len(smtp_sink) == 30
    assert statuses(campaign) == {D.SENT: 30, D.QUEUED: 70}
    queued = Delivery.objects.filter(campaign=campaign, status=D.QUEUED)
    assert set(queued.values_list("attempts", flat=True)) == {0}
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent_count) == (State.SENDING, 30)
    assert pacing.sent_today(domain) == 30
    workers.assert_no_tracebacks()


def test_workers_keep_to_a_providers_connections_and_messages_per_connection(
    account, workers, smtp_sink
):
    # given Yahoo allowed 2 connections of 5 messages each, and four lanes to send
    verified_domain(account, "warm.example")
    limits = {"MISSIVE_YAHOO_CONNECTIONS": 2, "MISSIVE_YAHOO_PER_CONNECTION": 5}
    workers.start(
        "--pool=prefork",
        "--concurrency=3",
        MISSIVE_SEND_BATCH_SIZE=12,
        MISSIVE_SEND_LANES=4,
        **limits,
    )
    workers.start(MISSIVE_SEND_BATCH_SIZE=12, MISSIVE_SEND_LANES=4, **limits)

    # when a campaign goes to 60 recipients at yahoo.com
    campaign = start_campaign(account, 60, "yahoo.com")
    workers.wait_for(
        lambda: Campaign.objects.get(pk=campaign.pk).status == State.SENT,
        timeout=90,
        what=lambda: f"the campaign to be sent: {statuses(campaign)}",
    )

    # then every message arrived, never over more than 2 connections at once, nor more
    # than 5 on one connection
    assert len(smtp_sink) == 60
    counter = smtp_sink.handler
    assert counter.most_open <= 2
    assert max(counter.per_connection.values()) == 5
    assert counter.connections >= 12
    workers.assert_no_tracebacks()
