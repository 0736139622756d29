"""Addresses a server may refuse to carry, under a real Celery worker delivering over SMTP
to a server on loopback: a recipient whose address cannot go out fails alone, with the
reason shown to the customer, and the campaign goes on to the end.

An internationalized local part (RFC 6531) needs SMTPUTF8: it goes out where the server
announces it and fails alone where it does not.
"""

from __future__ import annotations

import email
import email.policy

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Delivery
from campaigns.states import State
from contacts import services as contact_services
from contacts.models import Contact, Subscription
from tests.factories import make_account, make_user, verified_domain
from tests.workers import BACKEND_NAME, SmtpServer

SENDER = "news@letters.example"
ORDINARY = [f"r{n}@example.net" for n in range(6)]
INTERNATIONAL = ["jürgen@example.net", "用户@example.net"]
# In the order of the ledger, the internationalized ones in the middle of the batch.
FIRST_NAMES = {
    address: f"P{n}" for n, address in enumerate(ORDINARY[:3] + INTERNATIONAL + ORDINARY[3:])
}
NO_SMTPUTF8 = "The server does not accept internationalized addresses (SMTPUTF8)."
D = Delivery.Status


@pytest.fixture
def smtp_sink(request, start_smtp_server) -> SmtpServer:
    """The workers' SMTP server (overriding tests/workers.py's), announcing SMTPUTF8 or
    not as the test's parameter says."""
    return start_smtp_server(smtputf8=request.param)


@pytest.fixture
def owner_and_campaign(transactional_db):
    """An account sending through the test's SMTP server, and a campaign started to a list
    where two addresses have a local part that is not ASCII, among ordinary ones."""
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
        Contact(account=account, email=address, first_name=first_name)
        for address, first_name in FIRST_NAMES.items()
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
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name="Addresses",
        subject="Hello {{ first_name }}",
        from_email=SENDER,
        html="<p>Bonjour {{ first_name }}</p>",
        lists=[contact_list],
    )
    return owner, campaign


def status_of(campaign: Campaign) -> str:
    return Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk)


def send_campaign(campaign: Campaign, workers, sink: SmtpServer) -> None:
    """Start the campaign, with one worker to send it in one batch, until it is over."""
    workers.start("--pool=solo", MISSIVE_SEND_BATCH_SIZE=20)
    services.campaign_start(campaign=campaign, actor=None)
    workers.wait_for(
        lambda: status_of(campaign) != State.SENDING,
        timeout=60,
        what=lambda: f"campaign to finish ({len(sink)} messages received so far)",
    )
    campaign.refresh_from_db()


@pytest.mark.parametrize("smtp_sink", [True], indirect=True)
def test_it_sends_internationalized_addresses_where_the_server_takes_smtputf8(
    owner_and_campaign, workers, smtp_sink
):
    # given a server announcing SMTPUTF8
    _, campaign = owner_and_campaign
    sink = smtp_sink

    # when the campaign is sent
    send_campaign(campaign, workers, sink)

    # then everyone got their message once, the internationalized addresses too
    assert campaign.status == State.SENT, campaign.failure_reason
    assert sink.per_recipient() == dict.fromkeys(ORDINARY + INTERNATIONAL, 1)
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        D.SENT
    }
    assert (campaign.sent_count, campaign.failed_count) == (8, 0)
    # and each To header is the address, in UTF-8 where it must be (RFC 6532)
    for message in sink.messages:
        (to,) = message.rcpt_tos
        parsed = email.message_from_bytes(message.raw, policy=email.policy.SMTPUTF8)
        assert str(parsed["To"]) == to
        assert not parsed.defects
        assert parsed["Subject"] == f"Hello {FIRST_NAMES[to]}"
    workers.assert_no_tracebacks()


@pytest.mark.parametrize("smtp_sink", [False], indirect=True)
def test_it_fails_only_the_addresses_a_server_without_smtputf8_cannot_take(
    owner_and_campaign, workers, smtp_sink
):
    # given a server that does not announce SMTPUTF8
    owner, campaign = owner_and_campaign
    sink = smtp_sink

    # when the campaign is sent
    send_campaign(campaign, workers, sink)

    # then the campaign is sent, and every ordinary address got its message once
    assert campaign.status == State.SENT, campaign.failure_reason
    assert sink.per_recipient() == dict.fromkeys(ORDINARY, 1)
    statuses = dict(
        Delivery.objects.filter(campaign=campaign).values_list("contact__email", "status")
    )
    assert {statuses[a] for a in ORDINARY} == {D.SENT}
    assert (campaign.sent_count, campaign.failed_count) == (6, 2)
    # and the internationalized ones failed alone, with the reason
    failed = Delivery.objects.filter(campaign=campaign, status=D.FAILED)
    assert set(failed.values_list("contact__email", "error")) == {
        (address, NO_SMTPUTF8) for address in INTERNATIONAL
    }
    # which the customer sees on the campaign's page
    client = Client()
    client.force_login(owner, backend="allauth.account.auth_backends.AuthenticationBackend")
    page = client.get(reverse("campaign_detail", args=[campaign.pk]))
    assert page.status_code == 200
    assert NO_SMTPUTF8 in page.content.decode()
    assert "jürgen@example.net" in page.content.decode()
    workers.assert_no_tracebacks()
