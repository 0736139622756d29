"""Building a segment in a real browser: "city is Lyon and opened in the last 30 days",
the count changing as the conditions change, saved, then chosen as a campaign's
audience."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from audiences.models import Segment
from campaigns.engagement import record_engagement
from campaigns.models import Campaign, Delivery
from campaigns.states import State
from contacts import services as contact_services
from events.models import Event
from tests.browser.htmx import settled
from tests.factories import PASSWORD, make_account, make_user

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_it_builds_a_segment_and_counts_as_it_goes(page: Page, live_server):
    # given an account with people in Lyon and Paris, two of whom opened a campaign lately
    owner = make_user("owner@shop.example")
    account = make_account(owner, "Shop", postal_address="1 Main Street")
    contact_services.attribute_define(account=account, actor=owner, name="city", type="text")
    news = contact_services.list_create(account=account, actor=owner, name="News")
    earlier = Campaign.objects.create(
        account=account,
        name="Earlier",
        status=State.SENT,
        started_at=timezone.now() - timedelta(days=5),
    )
    for n, (city, opened) in enumerate(
        [("Lyon", True), ("Lyon", True), ("Lyon", False), ("Paris", True)]
    ):
        contact = contact_services.contact_create(
            account=account,
            actor=owner,
            email=f"p{n}@people.example",
            attributes={"city": city},
            lists=[news],
        )
        delivery = Delivery.objects.create(
            campaign=earlier, contact=contact, status=Delivery.Status.SENT
        )
        if opened:
            record_engagement(
                Event.Type.OPEN,
                account_id=account.pk,
                campaign_id=earlier.pk,
                delivery_id=delivery.pk,
                personal=True,
                machine=False,
                at=timezone.now() - timedelta(days=4),
            )
    page.goto(live_server.url + "/accounts/login/")
    page.locator("[name=login]").fill("owner@shop.example")
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # when the owner opens Segments, starts one and asks for the city
    page.get_by_role("link", name="Segments").first.click()
    expect(page.get_by_text("No segments yet")).to_be_visible()
    page.get_by_role("link", name="Build your first segment").click()
    page.locator("#segment-name").fill("Lyon openers")
    page.locator("[name='r_0-field']").select_option("attributes.city")
    expect(page.locator("[name='r_0-field']")).to_have_value("attributes.city")
    settled(page)
    page.locator("[name='r_0-op']").select_option("is")
    settled(page)
    value = page.locator("[name='r_0-value']")
    value.fill("Lyon")
    value.press("Tab")

    # then the count says three
    count = page.get_by_test_id("live-count")
    expect(count).to_have_text("3")

    # and with "opened in the last 30 days" added, two
    page.get_by_role("button", name="+ Condition").first.click()
    settled(page)
    page.locator("[name='r_1-field']").select_option("opened")
    settled(page)
    page.locator("[name='r_1-op']").select_option("in_last_days")
    settled(page)
    days = page.locator("[name='r_1-value']")
    days.fill("30")
    days.press("Tab")
    expect(count).to_have_text("2")

    # saved, it is listed with its count, and a campaign can be sent to it
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_text("Segment “Lyon openers” saved.")).to_be_visible()
    segment = Segment.objects.get(account=account)
    assert segment.definition["conditions"][1] == {
        "field": "opened",
        "op": "in_last_days",
        "value": 30,
    }
    page.get_by_role("link", name="Segments", exact=True).first.click()
    expect(page.get_by_test_id("segment-count")).to_have_text("2")
