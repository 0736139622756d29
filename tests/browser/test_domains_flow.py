"""Proving a sending domain, clicked through in a real browser: add it, copy the records
the page shows into a DNS server on loopback, check, and see the campaign page's verdict
turn from refused to ready."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Campaign
from config.devdns import LoopbackDNS
from tests.factories import PASSWORD, make_account, make_user

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_it_verifies_a_domain_from_the_records_it_shows(page: Page, live_server, dns: LoopbackDNS):
    owner = make_user("owner@news.example.test")
    account = make_account(owner, "News Co", postal_address="1 Main Street")
    campaign = Campaign.objects.create(
        account=account,
        name="Spring",
        subject="Spring",
        from_email="letters@news.example.test",
        html="<p>Hi</p>",
    )
    page.goto(live_server.url + "/accounts/login/")
    page.locator("[name=login]").fill("owner@news.example.test")
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # the campaign page says the sender's domain is not verified, and where to go
    page.goto(live_server.url + f"/campaigns/{campaign.pk}/")
    expect(page.get_by_test_id("campaign-readiness")).to_contain_text(
        "news.example.test, which is not a verified sending domain"
    )

    # when the owner adds the domain in Settings
    page.goto(live_server.url + "/settings/domains/")
    expect(page.get_by_text("No sending domain yet")).to_be_visible()
    page.get_by_label("Domain").fill("news.example.test")
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_text("news.example.test added.")).to_be_visible()

    # and copies each record shown into their DNS, then checks
    names = page.get_by_test_id("record-name").all_inner_texts()
    values = page.get_by_test_id("record-value").all_inner_texts()
    types = [row.split("\t")[1] for row in page.locator("tbody tr").all_inner_texts()[: len(names)]]
    assert any(name.endswith("._domainkey.news.example.test") for name in names)
    for name, rtype, value in zip(names, types, values, strict=True):
        dns.publish(name.strip(), rtype.strip(), value.strip())
    page.get_by_role("button", name="Check now").click()

    # then the domain is verified, and the campaign page finds it ready
    expect(page.get_by_text("is verified: campaigns can be sent from it")).to_be_visible()
    expect(page.locator(".badge", has_text=re.compile("^verified$"))).to_be_visible()
    page.goto(live_server.url + f"/campaigns/{campaign.pk}/")
    expect(page.get_by_test_id("campaign-readiness")).to_contain_text("ready")
