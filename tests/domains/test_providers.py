"""Mailbox providers: by the domain's name, or by its mail exchangers looked up over a real
DNS server on loopback and kept for sends and segments that never wait for the DNS."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Account
from audiences import selectors as segments
from campaigns import sending
from campaigns import services as campaign_services
from contacts import services as contact_services
from contacts.models import Contact
from domains import pacing, providers
from domains.models import MailboxDomain
from domains.tasks import classify_mailbox_domains
from tests.factories import verified_domain
from tests.workers import BACKEND_NAME


@pytest.mark.parametrize(
    ("address", "provider"),
    [
        ("ana@gmail.com", "gmail"),
        ("ana@googlemail.com", "gmail"),
        ("ana@GMAIL.COM", "gmail"),
        ("gmail.com", "gmail"),
        ("GoogleMail.com.", "gmail"),
        ("ana@gmail.example", "other"),  # gmail has no domain per country
        ("ana@hotmail.fr", "microsoft"),
        ("ana@outlook.com", "microsoft"),
        ("ana@live.co.uk", "microsoft"),
        ("ana@msn.com", "microsoft"),
        ("ana@outlook", "other"),  # a brand is a domain's first label, before a dot
        ("ana@myhotmail.com", "other"),
        ("ana@yahoo.co.uk", "yahoo"),
        ("ana@aol.com", "yahoo"),
        ("ana@aim.com", "yahoo"),
        ("ana@ymail.com", "yahoo"),
        ("ana@rocketmail.com", "yahoo"),
        ("ana@icloud.com", "apple"),
        ("ana@me.com", "apple"),
        ("ana@mac.com", "apple"),
        ("ana@icloud.fr", "other"),
        ("ana@example.org", "other"),
        ('"a@b"@yahoo.com', "yahoo"),  # the domain is after the last @
    ],
)
def test_it_names_the_provider_an_address_domain_says(address, provider):
    assert providers.by_name(address) == provider


@pytest.mark.parametrize(
    ("exchangers", "provider"),
    [
        (["aspmx.l.google.com"], "gmail"),
        (["ALT1.ASPMX.L.GOOGLE.COM."], "gmail"),
        (["example-com.mail.protection.outlook.com"], "microsoft"),
        (["mta5.am0.yahoodns.net"], "yahoo"),
        (["mx01.mail.icloud.com"], "apple"),
        (["mx.example.com", "aspmx.l.google.com"], "gmail"),
        (["mx.notgoogle.com"], "other"),  # a suffix is whole labels
        (["google.com.evil.example"], "other"),
        ([], "other"),
    ],
)
def test_it_names_the_provider_whose_servers_the_exchangers_are(exchangers, provider):
    assert providers.by_exchangers(exchangers) == provider


@pytest.fixture
def company(db):
    """An account with people at a company on Google Workspace, at one that keeps its
    own mail, at Gmail itself, and at a domain whose DNS never answers."""
    from tests.factories import make_account, make_user

    account = make_account(make_user("owner@shop.example"), "Shop")
    for email in (
        "ana@hosted.example",
        "bob@hosted.example",
        "cy@own.example",
        "di@gmail.com",
        "ed@broken.example",
    ):
        contact_services.contact_create(account=account, actor=None, email=email)
    return account


def test_the_beat_classifies_the_contacts_unnamed_domains_by_their_exchangers(company, dns):
    # given the DNS of the two company domains; broken.example's servers do not answer
    dns.publish("hosted.example", "MX", "1 aspmx.l.google.com.")
    dns.publish("hosted.example", "MX", "5 alt1.aspmx.l.google.com.")
    dns.publish("own.example", "MX", "10 mx.own.example.")
    dns.fail("broken.example")

    # when the beat's task runs
    looked_up = classify_mailbox_domains()

    # then each domain whose name says nothing was looked up once, gmail.com never
    assert looked_up == 3
    assert dict(MailboxDomain.objects.values_list("name", "provider")) == {
        "hosted.example": "gmail",
        "own.example": "other",
        "broken.example": "other",
    }
    # and only what failed is due again the next day; the rest after a month
    tomorrow = timezone.now() + dt.timedelta(days=1, minutes=1)
    assert providers.due(limit=10, now=tomorrow) == ["broken.example"]
    assert set(providers.due(limit=10, now=timezone.now() + dt.timedelta(days=31))) == {
        "hosted.example",
        "own.example",
        "broken.example",
    }


def test_it_forgets_a_domain_no_contact_has_any_more(company, dns):
    # given a classified domain that no contact has had for three months
    dns.publish("own.example", "MX", "10 mx.own.example.")
    long_ago = timezone.now() - providers.FORGET - dt.timedelta(days=1)
    MailboxDomain.objects.create(name="gone.example", provider="gmail", checked_at=long_ago)

    # when the beat's task runs
    providers.classify_due(limit=0)

    # then it is gone
    assert not MailboxDomain.objects.filter(name="gone.example").exists()


def test_sends_and_segments_take_the_classified_provider(company, dns):
    # given hosted.example classified as Google's
    dns.publish("hosted.example", "MX", "1 aspmx.l.google.com.")
    providers.classify("hosted.example")

    # then an address there is Gmail's for pacing, in one query for the whole batch
    found = providers.of_addresses(["ana@hosted.example", "cy@own.example", "di@gmail.com"])
    assert found == {
        "ana@hosted.example": "gmail",
        "cy@own.example": "other",
        "di@gmail.com": "gmail",
    }
    # and for a segment, whose "other" leaves it out
    gmail = {"conditions": [{"field": "mailbox_provider", "op": "is", "value": "gmail"}]}
    other = {"conditions": [{"field": "mailbox_provider", "op": "is", "value": "other"}]}
    not_gmail = {"conditions": [{"field": "mailbox_provider", "op": "is_not", "value": "gmail"}]}

    def emails(definition):
        return set(segments.matching(company, definition).values_list("email", flat=True))

    assert emails(gmail) == {"ana@hosted.example", "bob@hosted.example", "di@gmail.com"}
    assert emails(other) == {"cy@own.example", "ed@broken.example"}
    assert emails(not_gmail) == emails(other)


def test_a_batch_goes_on_the_classified_providers_connections(
    company, dns, settings, start_smtp_server, django_capture_on_commit_callbacks
):
    # given hosted.example classified as Google's, and every Gmail connection in use
    dns.publish("hosted.example", "MX", "1 aspmx.l.google.com.")
    providers.classify("hosted.example")
    server = start_smtp_server()
    settings.MISSIVE_SENDING_BACKENDS = {BACKEND_NAME: f"smtp://127.0.0.1:{server.port}"}
    settings.MISSIVE_PROVIDER_LIMITS = {
        **settings.MISSIVE_PROVIDER_LIMITS,
        "gmail": {"connections": 1, "per_connection": 20, "rate": None},
    }
    settings.MISSIVE_CONNECTION_SLOT_WAIT = 0
    Account.objects.filter(pk=company.pk).update(sending_backend=BACKEND_NAME)
    verified_domain(company, "shop.example")
    readers = contact_services.list_create(account=company, actor=None, name="Readers")
    ana = Contact.objects.get(account=company, email="ana@hosted.example")
    contact_services.subscription_subscribe(contact=ana, contact_list=readers)
    campaign = campaign_services.campaign_create(
        account=company,
        actor=None,
        name="Hosted",
        subject="Hello",
        from_email="news@shop.example",
        html="<p>Hello</p>",
        lists=[readers],
    )
    with django_capture_on_commit_callbacks(execute=False):
        campaign_services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)
    held = pacing.acquire_slot("gmail")

    # when a batch sends to ana@hosted.example, it waits for a Gmail connection
    assert sending.send_batch(campaign.pk).sent == 0
    assert len(server) == 0

    # and goes once one is free
    pacing.release_slot(held)
    campaign.deliveries.update(retry_at=None)
    assert sending.send_batch(campaign.pk).sent == 1
    assert len(server) == 1
