"""Previewing a campaign as a contact in a real browser: the search answers as one types
(htmx), a result reloads the preview and the inbox line for that contact, and the width
toggle narrows the message to a phone's without any script of ours."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from campaigns import services as campaign_services
from contacts import services
from tests.factories import PASSWORD, make_account, make_user, verified_domain

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_it_previews_the_campaign_as_a_contact_found_by_name(page: Page, live_server) -> None:
    # Given a draft to a list with a contact who has a city
    owner = make_user("owner@acme.test")
    account = make_account(owner, "Acme", postal_address="1 Main Street, Springfield")
    verified_domain(account, "acme.test")
    services.attribute_define(account=account, actor=owner, name="city", type="text")
    customers = services.list_create(account=account, actor=owner, name="Customers")
    services.contact_create(
        account=account,
        actor=owner,
        email="nora@example.com",
        first_name="Nora",
        last_name="Quist",
        attributes={"city": "Oslo"},
        lists=[customers],
    )
    campaign = campaign_services.campaign_create(
        account=account,
        actor=owner,
        name="Winter",
        subject="Winter in {{ attributes.city }}",
        preheader="For {{ first_name }}",
        from_name="Acme",
        from_email="news@acme.test",
        html="<p>Hello {{ first_name }} in {{ attributes.city }}</p>",
        lists=[customers],
    )
    page.goto(live_server.url + "/accounts/login/")
    page.locator("[name=login]").fill("owner@acme.test")
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.goto(live_server.url + f"/campaigns/{campaign.pk}/")
    expect(page.get_by_test_id("inbox-line")).to_contain_text("For Jane")

    # When the owner types part of her name, and picks her from the results
    page.get_by_label("Preview as one of your contacts").press_sequentially("quis")
    result = page.locator("#preview-results").get_by_role("link", name="nora@example.com")
    expect(result).to_be_visible()
    result.click()

    # Then the inbox line and the preview are hers
    expect(page.get_by_test_id("inbox-line")).to_contain_text("Winter in Oslo")
    expect(page.get_by_test_id("inbox-line")).to_contain_text("For Nora")
    expect(page.frame_locator("#preview-frame").get_by_text("Hello Nora in Oslo")).to_be_visible()

    # And the mobile toggle narrows the message to a phone's width
    frame = page.locator("#preview-frame")
    page.get_by_text("Mobile", exact=True).click()
    expect(frame).to_have_css("width", "375px")
    page.get_by_text("Desktop", exact=True).click()
    assert frame.bounding_box()["width"] > 375
