"""10,000 contacts through a branching journey, with time moved on: email 1, a wait of two
days, then "opened email 1?" (people's opens only, recorded through the open pixel the
message carries), email 2a for those who did and 2b for the others; whoever unsubscribes
in between gets nothing more.

The journey advances and the campaign pipeline sends here, in this process
(``engine.advance``, ``sending.send_batch``), to a transport that keeps what it is
handed; the real workers are the chaos test's business (test_chaos.py).

Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import time_machine
from django.db.models import Count
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns import sending
from campaigns.messages import MessageFactory, Outgoing
from campaigns.models import Delivery
from campaigns.transports import Result
from contacts import services as contact_services
from contacts.models import Contact, ContactList, Subscription
from events.models import Event
from journeys import engine, services
from journeys.engine import Entrant
from journeys.models import Enrollment, Journey, StepTally
from tests.factories import make_account, make_user, verified_domain
from tests.journeys.builders import branch_on_opening

SENDER = "hello@scale.example"
CONTACTS = 10_000
D = Delivery.Status
E = Enrollment.Status

# What opens the pixel: people (a mail app; Gmail's image proxy fetches when its user
# opens) and machines (Apple Mail Privacy Protection, by its bare user agent or by its
# network; a prefetching proxy; anything within seconds of sending).
READER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
APPLE_MPP = "Mozilla/5.0"
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
APPLE_NETWORK = "17.58.1.1"
PIXEL = re.compile(r"/t/o/([A-Za-z0-9_\-.:]+)")


@dataclass
class Handed:
    """What a transport was handed: (campaign, address) of each message, and each
    message's open pixel token."""

    messages: Counter[tuple[int, str]] = field(default_factory=Counter)
    pixels: dict[tuple[int, str], str] = field(default_factory=dict)


class KeepingTransport:
    """A transport on loopback as fast as a list: every message it is handed counts as
    sent, and what it was is kept (who, which campaign, the pixel's token)."""

    def __init__(self, handed: Handed) -> None:
        self.handed = handed

    def open(self, first: str | None = None) -> None:
        return None

    def prepare(self, factory: MessageFactory, message: Outgoing) -> None:
        return None

    def send(self, factory: MessageFactory, message: Outgoing) -> Result:
        key = (factory.campaign.pk, message.to)
        self.handed.messages[key] += 1
        found = PIXEL.search(message.html)
        if found:
            self.handed.pixels[key] = found.group(1)
        return Result(Result.SENT, message.message_id)

    def close(self) -> None:
        return None


@dataclass
class Branching:
    journey: Journey
    first: int  # the campaigns of email 1, 2a (opened) and 2b (did not)
    yes: int
    no: int
    steps: dict[str, str]  # step id by role: first, wait, condition, yes, no


def make_sender(name: str, domain: str, **fields: object):
    owner = make_user(f"owner@{domain}")
    account = make_account(
        owner,
        name,
        postal_address="1 Rue des Voyages, Lyon",
        default_from_email=f"hello@{domain}",
        **fields,
    )
    verified_domain(account, domain)
    contact_list = contact_services.list_create(account=account, actor=owner, name="News")
    return owner, account, contact_list


def add_contacts(
    account, contact_list: ContactList, count: int, prefix: str = "r"
) -> list[Contact]:
    """``count`` contacts subscribed to the list, in two statements."""
    now = timezone.now()
    contacts = Contact.objects.bulk_create(
        Contact(account=account, email=f"{prefix}{n:05d}@example.net", first_name=f"R{n}")
        for n in range(count)
    )
    Subscription.objects.bulk_create(
        Subscription(
            contact=contact,
            contact_list=contact_list,
            status=Subscription.Status.SUBSCRIBED,
            source=Subscription.Source.IMPORT,
            consent_at=now,
            confirmed_at=now,
        )
        for contact in contacts
    )
    return contacts


def branching_journey(owner, account, contact_list: ContactList) -> Branching:
    """email 1 → wait 2 days → opened email 1? → yes: email 2a / no: email 2b, live."""
    journey = services.journey_create(account=account, actor=owner, name="Branching")
    services.journey_update(
        journey=journey,
        actor=owner,
        trigger="event",
        trigger_config={"event": "signed_up"},
        lists=[contact_list],
    )
    built = branch_on_opening(journey, owner, ("One", "Two (you opened one)", "Two"), wait_days=2)
    first, wait, cond, yes, no = (
        built[role] for role in ("first", "wait", "condition", "yes", "no")
    )
    services.journey_start(journey=journey, actor=owner)
    journey.refresh_from_db()
    return Branching(
        journey=journey,
        first=first["campaign"],
        yes=yes["campaign"],
        no=no["campaign"],
        steps={
            "first": first["id"],
            "wait": wait["id"],
            "condition": cond["id"],
            "yes": yes["id"],
            "no": no["id"],
        },
    )


def advance_all(journey: Journey) -> int:
    """Move every due enrollment of the journey, batch after batch. Returns how many
    batches it took."""
    batches = 0
    while True:
        report = engine.advance(journey.pk)
        batches += report.claimed > 0
        if not report.more:
            return batches


def send_all(campaign_ids: list[int], transport: KeepingTransport) -> None:
    for campaign_id in campaign_ids:
        more = True
        while more:
            more = sending.send_batch(campaign_id, transport=transport).more


def open_pixel(client: Client, token: str, agent: str, ip: str = "203.0.113.9") -> None:
    response = client.get(
        reverse("track_open", args=[token]), HTTP_USER_AGENT=agent, REMOTE_ADDR=ip
    )
    assert response.status_code == 200, response.status_code


def test_ten_thousand_contacts_each_get_exactly_their_branch(db, enqueued):
    owner, account, contact_list = make_sender("Scale Ltd", "scale.example")
    way = branching_journey(owner, account, contact_list)
    emails = [way.first, way.yes, way.no]
    handed = Handed()
    transport = KeepingTransport(handed)
    began = time.monotonic()
    contacts = add_contacts(account, contact_list, CONTACTS)
    t0 = timezone.now().replace(microsecond=0)

    # given 10,000 contacts entered through the engine's one door, and email 1 sent
    with time_machine.travel(t0, tick=False):
        made = engine.enroll(way.journey, [Entrant(c.pk, "signed_up") for c in contacts])
        assert len(made) == CONTACTS
        assert engine.enroll(way.journey, [Entrant(c.pk, "again") for c in contacts]) == []
        first_batches = advance_all(way.journey)
        send_all(emails, transport)
    entered = time.monotonic()
    assert set(handed.messages.values()) == {1}
    assert {c for c, _ in handed.messages} == {way.first}
    assert len(handed.messages) == CONTACTS

    # when people and machines open it through its pixel, some of both
    by_group: dict[str, list[Contact]] = {
        "reader": contacts[0::40],
        "gmail": contacts[1::40],
        "apple mpp": contacts[2::40],
        "apple network": contacts[3::40],
        "prefetch": contacts[4::40],
        "too soon": contacts[5::40],
        "machine then reader": contacts[6::40],
        "reader who leaves": contacts[7::80],
        "leaves": contacts[47::80],
    }
    token_of = {c.pk: handed.pixels[(way.first, c.email)] for c in contacts}
    sent_at = Delivery.objects.filter(campaign_id=way.first).order_by("-sent_at")[0].sent_at
    client = Client()
    with time_machine.travel(sent_at + dt.timedelta(seconds=1), tick=False):
        for contact in by_group["too soon"]:
            open_pixel(client, token_of[contact.pk], READER)
    with time_machine.travel(t0 + dt.timedelta(hours=3), tick=False):
        for contact in by_group["apple mpp"] + by_group["machine then reader"]:
            open_pixel(client, token_of[contact.pk], APPLE_MPP)
        for contact in by_group["apple network"]:
            open_pixel(client, token_of[contact.pk], READER, ip=APPLE_NETWORK)
        for contact in by_group["prefetch"]:
            open_pixel(client, token_of[contact.pk], YAHOO_PROXY)
    with time_machine.travel(t0 + dt.timedelta(hours=20), tick=False):
        for group in ("reader", "machine then reader", "reader who leaves"):
            for contact in by_group[group]:
                open_pixel(client, token_of[contact.pk], READER)
        for contact in by_group["gmail"]:
            open_pixel(client, token_of[contact.pk], GMAIL_PROXY)

    # and some unsubscribe before the branch, openers among them
    leavers = by_group["reader who leaves"] + by_group["leaves"]
    with time_machine.travel(t0 + dt.timedelta(days=1), tick=False):
        changed = contact_services.unsubscribe(
            account=account, actor=None, contact_ids=[c.pk for c in leavers], how="test"
        )
    assert len(changed) == len(leavers)

    # and nothing moves before the two days are over
    with time_machine.travel(t0 + dt.timedelta(days=2) - dt.timedelta(seconds=1), tick=False):
        assert engine.advance(way.journey.pk).claimed == 0
        send_all(emails, transport)
    assert sum(handed.messages.values()) == CONTACTS

    # then at the end of the wait the condition reads people's opens only
    branched = time.monotonic()
    with time_machine.travel(t0 + dt.timedelta(days=2, minutes=1), tick=False):
        second_batches = advance_all(way.journey)
        send_all(emails, transport)
    done = time.monotonic()

    people = {c.email for g in ("reader", "gmail", "machine then reader") for c in by_group[g]}
    gone = {c.email for c in leavers}
    expected: Counter[tuple[int, str]] = Counter()
    for contact in contacts:
        expected[(way.first, contact.email)] = 1
        if contact.email in gone:
            continue
        expected[(way.yes if contact.email in people else way.no, contact.email)] = 1

    # each contact was handed exactly the messages of its branch…
    assert handed.messages == expected
    # …and the ledger says the same, every row sent
    ledger = Counter(
        {
            (campaign_id, email): n
            for campaign_id, email, n in Delivery.objects.filter(campaign_id__in=emails)
            .values_list("campaign_id", "contact__email")
            .annotate(n=Count("pk"))
        }
    )
    assert ledger == expected
    assert set(
        Delivery.objects.filter(campaign_id__in=emails).values_list("status", flat=True)
    ) == {D.SENT}

    # the machines' opens were kept, flagged, and counted for no one
    machine_opens = Event.objects.filter(campaign_id=way.first, type="open", machine=True)
    machine_groups = ("too soon", "apple mpp", "apple network", "prefetch", "machine then reader")
    assert machine_opens.count() == sum(len(by_group[g]) for g in machine_groups)
    reasons = Counter(machine_opens.values_list("detail__machine_reason", flat=True))
    assert reasons == {
        "timing": len(by_group["too soon"]),
        "apple_mpp": len(by_group["apple mpp"])
        + len(by_group["apple network"])
        + len(by_group["machine then reader"]),
        "prefetch": len(by_group["prefetch"]),
    }

    # the ledger of the journey: everyone through, the leavers out before the branch
    statuses = Counter(
        Enrollment.objects.filter(journey=way.journey).values_list("status", "outcome")
    )
    assert statuses == {
        (E.COMPLETED, "Reached the end."): CONTACTS - len(gone),
        (E.EXITED, "Unsubscribed from the journey's lists."): len(gone),
    }
    tallies = dict(StepTally.objects.filter(journey=way.journey).values_list("step", "reached"))
    opened = len(people - gone)
    assert tallies == {
        way.steps["first"]: CONTACTS,
        way.steps["wait"]: CONTACTS,
        way.steps["condition"]: CONTACTS - len(gone),
        way.steps["yes"]: opened,
        way.steps["no"]: CONTACTS - len(gone) - opened,
    }
    print(
        f"\nscale: {CONTACTS} contacts; email 1 to {CONTACTS} in {first_batches} advance "
        f"batches, {entered - began:.1f}s from the first enrollment to the last message "
        f"handed over; {sum(reasons.values())} machine opens and {len(people)} people's; "
        f"{len(gone)} left; branch: {opened} yes, {CONTACTS - len(gone) - opened} no, in "
        f"{second_batches} batches and {done - branched:.1f}s; {done - began:.1f}s in all"
    )
