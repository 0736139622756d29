"""Writing and sending a campaign, clicked through in a real browser, with a real Celery
worker doing the send; then a recipient unsubscribes from the link in their message."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from playwright.sync_api import Page, expect

from campaigns.models import Campaign, Delivery
from config.celery import app
from contacts import services
from contacts.models import Subscription
from tests.factories import PASSWORD, make_account, make_user, verified_domain

pytestmark = pytest.mark.usefixtures("transactional_db")

PEOPLE = [("ann@example.com", "Ann"), ("ben@example.com", "Ben"), ("cid@example.com", "Cid")]


@pytest.fixture
def worker():
    # A thread of this process: the locmem outbox it fills is the test's own.
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        yield


def unsubscribe_path(message: mail.EmailMessage) -> str:
    """The path of the https link in the message's List-Unsubscribe header."""
    header = message.message()["List-Unsubscribe"]
    link = re.search(r"<(https?://[^>]+)>", header).group(1)
    return urlsplit(link).path


def test_it_sends_a_campaign_and_a_recipient_unsubscribes(page: Page, live_server, worker) -> None:
    # Given an owner with a postal address and a list of three subscribed contacts
    owner = make_user("owner@acme.test")
    account = make_account(owner, "Acme", postal_address="1 Main Street, Springfield")
    verified_domain(account, "acme.test")  # the sender's domain, verified by DNS
    customers = services.list_create(account=account, actor=owner, name="Customers")
    for email, first_name in PEOPLE:
        services.contact_create(
            account=account, actor=owner, email=email, first_name=first_name, lists=[customers]
        )
    page.goto(live_server.url + "/accounts/login/")
    page.locator("[name=login]").fill("owner@acme.test")
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # When they start a campaign from the newsletter starter in HTML code
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Name").fill("May news")
    newsletter = page.locator("input[name=start_from][value='starter:newsletter']")
    newsletter.check()
    expect(newsletter).to_be_checked()
    page.get_by_role("button", name="Create draft").click()
    expect(page.get_by_text("Draft “May news” created.")).to_be_visible()

    # And give it a personal subject and the list
    page.get_by_label(re.compile(r"^Subject:?$")).fill("News for you, {{ first_name }}")
    page.get_by_label("Customers").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Campaign saved.")).to_be_visible()
    expect(page.locator("#readiness")).to_contain_text("3 recipients")

    # Then sending it now asks first, saying whom it reaches
    page.get_by_role("link", name="Send now…").click()
    expect(page.get_by_role("heading", name="Send “May news” now?")).to_be_visible()
    expect(page.get_by_test_id("reach")).to_contain_text("It goes to 3 recipients")
    page.get_by_role("button", name="Send now").click()

    # And the worker sends it while the progress panel follows
    expect(page.get_by_text("“May news” is being sent.")).to_be_visible()
    progress = page.locator("#campaign-progress")
    expect(progress.get_by_role("heading", name="Sent", exact=True)).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("campaign-stats")).to_contain_text("3 of 3 sent")
    campaign = Campaign.objects.get(account=account, name="May news")
    assert campaign.status == "sent"
    assert Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENT).count() == 3

    # And each contact received their own message, with a way out in the headers
    by_recipient = {message.to[0]: message for message in mail.outbox}
    assert sorted(by_recipient) == sorted(email for email, _ in PEOPLE)
    for email, first_name in PEOPLE:
        message = by_recipient[email]
        assert message.subject == f"News for you, {first_name}"
        headers = message.message()
        assert "<http" in headers["List-Unsubscribe"]
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # When Ann opens the unsubscribe link, nothing changes until she presses the button
    ann = Subscription.objects.get(contact__email="ann@example.com", contact_list=customers)
    page.goto(live_server.url + unsubscribe_path(by_recipient["ann@example.com"]))
    expect(page.get_by_role("heading", name="Unsubscribe from Acme")).to_be_visible()
    ann.refresh_from_db()
    assert ann.status == Subscription.Status.SUBSCRIBED
    page.get_by_role("button", name="Unsubscribe").click()

    # Then she is unsubscribed, and only she
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    ann.refresh_from_db()
    assert ann.status == Subscription.Status.UNSUBSCRIBED
    assert (
        Subscription.objects.filter(
            contact_list=customers, status=Subscription.Status.SUBSCRIBED
        ).count()
        == 2
    )

    # And the campaign's report opens, counting its three recipients
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/report/")
    expect(page.get_by_role("heading", name="May news")).to_be_visible()
    expect(page.get_by_test_id("recipients")).to_have_text("3")
