"""A mail server that refuses an address while the message is handed over has bounced it:
under a real Celery worker sending to a server on loopback, the refusal goes through the
same feedback rules as a bounce reported later. A refused address is suppressed at once
and never mailed again; a policy refusal (the sender's trouble) is not held against it.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Delivery
from campaigns.states import State
from contacts import services as contact_services
from contacts.models import Contact, Subscription, Suppression
from contacts.selectors import is_suppressed
from events.models import Event
from tests.factories import make_account, make_user, verified_domain
from tests.workers import BACKEND_NAME, SmtpServer, SmtpSink

SENDER = "news@letters.example"
UNKNOWN = "gone@example.net"
FULL = "full@example.net"
POLICY = "strict@example.net"
FINE = ["ann@example.net", "ben@example.net"]
REPLIES = {
    UNKNOWN: "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown",
    FULL: "552 5.2.2 <full@example.net>: Mailbox full",
    POLICY: "550 5.7.1 Message rejected for policy reasons",
}
D = Delivery.Status


class RefusingSink(SmtpSink):
    """Accepts every message but refuses some recipients, as a receiving server would."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in REPLIES:
            return REPLIES[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def smtp_sink(start_smtp_server) -> SmtpServer:
    """The workers' SMTP server (overriding tests/workers.py's), refusing some recipients."""
    return start_smtp_server(RefusingSink())


@pytest.fixture
def campaign(transactional_db) -> Campaign:
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
    contacts = Contact.objects.bulk_create(
        Contact(account=account, email=address) for address in [UNKNOWN, FULL, POLICY, *FINE]
    )
    Subscription.objects.bulk_create(
        Subscription(
            contact=contact,
            contact_list=contact_list,
            status=Subscription.Status.SUBSCRIBED,
            consent_at=timezone.now(),
        )
        for contact in contacts
    )
    return services.campaign_create(
        account=account,
        actor=None,
        name="Refusals",
        subject="Hello",
        from_email=SENDER,
        html="<p>Bonjour</p>",
        lists=[contact_list],
    )


def test_a_server_refusing_an_address_while_sending_suppresses_it(campaign, workers, smtp_sink):
    # given a server that refuses one unknown address, one full mailbox and, for its
    # policy, one more address
    sink = smtp_sink
    account = campaign.account

    # when the campaign is sent by a real worker
    workers.start("--pool=solo", MISSIVE_SEND_BATCH_SIZE=20)
    services.campaign_start(campaign=campaign, actor=None)
    workers.wait_for(
        lambda: Event.objects.filter(campaign_id=campaign.pk, type=Event.Type.BOUNCE).count() == 2,
        timeout=60,
        what="the refusals to be recorded as bounces",
    )

    # then the others got their message, and the campaign is over
    campaign.refresh_from_db()
    assert campaign.status == State.SENT, campaign.failure_reason
    assert sink.per_recipient() == dict.fromkeys(FINE, 1)
    # and the unknown address is suppressed at once, as a hard bounce
    assert is_suppressed(account, UNKNOWN)
    assert Suppression.objects.for_account(account).get().reason == (Suppression.Reason.HARD_BOUNCE)
    addresses = dict(Delivery.objects.filter(campaign=campaign).values_list("pk", "contact__email"))
    bounces = {
        addresses[delivery_id]: kind
        for delivery_id, kind in Event.objects.filter(
            campaign_id=campaign.pk, type=Event.Type.BOUNCE
        ).values_list("delivery_id", "detail__kind")
    }
    assert bounces == {UNKNOWN: "hard", FULL: "soft"}
    # and neither the full mailbox (one soft bounce) nor the policy refusal is held
    # against its address: both stay failures with the server's words
    assert not is_suppressed(account, FULL)
    assert not is_suppressed(account, POLICY)
    errors = dict(
        Delivery.objects.filter(campaign=campaign, status=D.FAILED).values_list(
            "contact__email", "error"
        )
    )
    assert errors == REPLIES
    workers.assert_no_tracebacks()


def test_the_next_campaign_skips_an_address_a_server_refused(campaign, workers, smtp_sink):
    # given a campaign whose sending told Missive that an address does not exist
    sink = smtp_sink
    workers.start("--pool=solo", MISSIVE_SEND_BATCH_SIZE=20)
    services.campaign_start(campaign=campaign, actor=None)
    workers.wait_for(
        lambda: is_suppressed(campaign.account, UNKNOWN),
        timeout=60,
        what="the refused address to be suppressed",
    )

    # when the next campaign goes to the same list
    second = services.campaign_create(
        account=campaign.account,
        actor=None,
        name="Again",
        subject="Hello again",
        from_email=SENDER,
        html="<p>Encore</p>",
        lists=list(campaign.lists.all()),
    )
    services.campaign_start(campaign=second, actor=None)
    workers.wait_for(
        lambda: Campaign.objects.get(pk=second.pk).status != State.SENDING,
        timeout=60,
        what="the second campaign to finish",
    )

    # then the refused address is not even tried again
    assert not Delivery.objects.filter(campaign=second, contact__email=UNKNOWN).exists()
    assert sink.per_recipient() == dict.fromkeys(FINE, 2)
    workers.assert_no_tracebacks()
