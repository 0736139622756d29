"""The public archive: the campaigns an account publishes, for anyone, with no one's data
and nothing tracked; as pages and as an Atom feed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Account, AuditEntry
from campaigns import archive, sending, services
from campaigns.models import Campaign
from campaigns.states import State
from contacts import services as contact_services
from tests.factories import make_account, make_user, verified_domain
from tests.workers import BACKEND_NAME

ATOM = "{http://www.w3.org/2005/Atom}"
HTML = (
    '<p>Hello {{ first_name|default:"reader" }} ({{ email }}), '
    'from {{ attributes.city|default:"here" }}.</p>'
    '<p><a href="https://shop.example/sale">The sale</a> · '
    '<a href="{{ unsubscribe_url }}">Leave</a></p>'
)


@pytest.fixture
def published(transactional_db, start_smtp_server, settings, django_capture_on_commit_callbacks):
    """A campaign sent to Ann (of Lyon), then published; a draft, published too."""
    server = start_smtp_server()
    settings.MISSIVE_SENDING_BACKENDS = {BACKEND_NAME: f"smtp://127.0.0.1:{server.port}"}
    owner = make_user("owner@shop.example")
    account = make_account(
        owner, "Shop & Co", sending_backend=BACKEND_NAME, default_from_email="news@shop.example"
    )
    verified_domain(account, "shop.example")
    contact_services.attribute_define(account=account, actor=owner, name="city", type="text")
    news = contact_services.list_create(account=account, actor=owner, name="News")
    contact_services.contact_create(
        account=account,
        actor=owner,
        email="ann@people.example",
        first_name="Ann",
        attributes={"city": "Lyon"},
        lists=[news],
    )
    sent = services.campaign_create(
        account=account,
        actor=owner,
        name="June",
        subject='Our June news, {{ first_name|default:"friend" }}',
        html=HTML,
        lists=[news],
    )
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=sent, actor=owner)
    sending.take_snapshot(sent.pk)
    sending.send_batch(sent.pk)
    sent.refresh_from_db()
    assert sent.status == State.SENT
    draft = services.campaign_create(account=account, actor=owner, name="July", html="<p>x</p>")
    for campaign in (sent, draft):
        services.campaign_publish(campaign=campaign, actor=owner, public=True)
    return account, owner, sent, draft


def test_anyone_reads_the_published_campaigns_without_anyones_data(published):
    account, _owner, sent, draft = published
    key = archive.archive_key(account)
    anyone = Client()

    # when someone with no account opens the archive
    index = anyone.get(reverse("archive_index", args=[key]))

    # then it lists the sent campaign, not the draft, with a way to subscribe
    assert index.status_code == 200
    page = index.content.decode()
    assert "Shop &amp; Co" in page
    assert "Our June news, friend" in page
    assert "July" not in page
    assert "/subscribe/" in page
    assert "public" in index["Cache-Control"]

    # and the campaign reads as for nobody: defaults, no address, no tracking
    content = anyone.get(reverse("archive_content", args=[key, sent.pk])).content.decode()
    assert "Hello reader (), from here." in content
    assert "Ann" not in content
    assert "Lyon" not in content
    assert "@" not in content
    assert 'href="https://shop.example/sale"' in content
    assert "/t/o/" not in content
    assert "/t/c/" not in content
    assert "/u/" not in content
    assert anyone.get(reverse("archive_campaign", args=[key, sent.pk])).status_code == 200
    assert anyone.get(reverse("archive_campaign", args=[key, draft.pk])).status_code == 404


def test_the_feed_is_atom_with_one_entry_per_published_campaign(published):
    account, _owner, sent, _draft = published
    key = archive.archive_key(account)

    feed = Client().get(reverse("archive_feed", args=[key]))

    assert feed["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(feed.content)  # noqa: S314 - our own answer, in a test
    entries = root.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}title").text for e in entries] == ["Our June news, friend"]
    summary = entries[0].find(f"{ATOM}summary").text
    assert "Hello reader" in summary
    assert "Ann" not in feed.content.decode()
    assert entries[0].find(f"{ATOM}link").get("href").endswith(f"/archive/{key}/{sent.pk}/")


def test_a_campaign_taken_out_is_gone_and_a_bad_key_opens_nothing(published):
    account, owner, sent, _draft = published
    key = archive.archive_key(account)
    services.campaign_publish(campaign=sent, actor=owner, public=False)
    anyone = Client()

    assert anyone.get(reverse("archive_campaign", args=[key, sent.pk])).status_code == 404
    assert "Our June news" not in anyone.get(reverse("archive_index", args=[key])).content.decode()
    for bad in (key[:-1] + ("A" if key[-1] != "A" else "B"), "1", "x" * 300, f"{account.pk}"):
        assert anyone.get(f"/archive/{bad}/").status_code == 404
        assert anyone.get(f"/archive/{bad}/feed.atom").status_code == 404
    # a closed account's archive is closed
    Account.objects.filter(pk=account.pk).update(status=Account.Status.CLOSED)
    assert anyone.get(reverse("archive_index", args=[key])).status_code == 404
    # and each change was audited
    actions = AuditEntry.objects.filter(account=account).values_list("action", flat=True)
    assert {"campaign.published", "campaign.unpublished"} <= set(actions)


def test_another_accounts_campaign_is_not_in_this_archive(published, world):
    _account, _owner, sent, _draft = published
    other = archive.archive_key(world.account_a)
    assert Client().get(reverse("archive_campaign", args=[other, sent.pk])).status_code == 404


def test_the_campaign_page_and_the_api_publish(world, alice_client, vera_client):
    campaign = services.campaign_create(
        account=world.account_a, actor=world.alice, name="Pub", html="<p>x</p>"
    )
    page = alice_client.get(reverse("campaign_detail", args=[campaign.pk])).content.decode()
    assert 'data-testid="publish-form"' in page
    alice_client.post(reverse("campaign_publish", args=[campaign.pk]), {"public": "on"})
    assert Campaign.objects.get(pk=campaign.pk).public_archive is True
    assert vera_client.post(reverse("campaign_publish", args=[campaign.pk])).status_code == 403

    answered = alice_client.post(
        f"/api/v1/campaigns/{campaign.pk}/publish/", {"public": False}, "application/json"
    )
    assert answered.status_code == 200
    assert answered.json()["public_archive"] is False
    refused = alice_client.post(
        f"/api/v1/campaigns/{campaign.pk}/publish/", {"public": "maybe"}, "application/json"
    )
    assert refused.status_code == 400
