"""Making a journey in a real browser: a newcomer picks the welcome starter, chooses its
list, adds a wait and changes it, changes another one to a time of day, and starts it;
the steps change in place (htmx), the page never reloads for them."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from contacts import services as contact_services
from journeys import steps as stepping
from journeys.models import Journey
from tests.browser.htmx import settled
from tests.factories import PASSWORD, make_account, make_user, verified_domain

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_it_makes_a_welcome_journey_and_starts_it(page: Page, live_server):
    # given a newcomer whose account has a list and a proven sending domain
    owner = make_user("owner@shop.example")
    account = make_account(
        owner, "Shop", postal_address="1 Main Street", default_from_email="hello@shop.example"
    )
    verified_domain(account, "shop.example")
    contact_services.list_create(account=account, actor=owner, name="Newsletter")
    page.goto(live_server.url + "/accounts/login/")
    page.locator("[name=login]").fill("owner@shop.example")
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # when she opens Journeys and makes one from the welcome starter
    page.get_by_role("link", name="Journeys").first.click()
    expect(page.get_by_text("No journeys yet")).to_be_visible()
    page.get_by_role("link", name="Make your first journey").click()
    page.get_by_label("Name").fill("Welcome newcomers")
    page.get_by_test_id("starter-welcome").click()
    page.get_by_role("button", name="Make the journey").click()

    # then its page says what it still needs: the list
    expect(page.get_by_role("heading", name="Welcome newcomers", level=1)).to_be_visible()
    expect(page.get_by_test_id("start-problems")).to_contain_text("Trigger: Choose a list.")
    expect(page.get_by_test_id("step-5")).to_contain_text("Welcome 3: stay in touch")

    # when she picks the list, only the trigger's own field being shown
    expect(page.get_by_label("Event name")).to_be_hidden()
    page.get_by_label("List they subscribe to").select_option(label="Newsletter")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    expect(page.get_by_test_id("ready")).to_be_visible()

    # and adds a wait after the first email: the steps come back with its form open
    page.get_by_label("Step to add after step 1").select_option("wait")
    page.get_by_role("button", name="Add a step after step 1").click()
    settled(page)
    card = page.get_by_test_id("step-2")
    expect(card.get_by_label("How long")).to_have_value("1")
    card.get_by_label("How long").fill("2")
    card.get_by_label("Unit").select_option("hours")
    card.get_by_role("button", name="Save step 2").click()
    settled(page)

    # then the card says so in place, and the draft has it
    expect(card.get_by_test_id("step-summary")).to_have_text("Wait 2 hours")
    expect(card.get_by_role("status")).to_have_text("Saved.")
    journey = Journey.objects.get(account=account)
    assert [s["type"] for s in journey.draft] == ["email", "wait", "wait", "email", "wait", "email"]
    assert journey.draft[1] == {**journey.draft[1], "amount": 2, "unit": "hours"}

    # when she changes the starter's first wait to a time of day, its fields follow her
    # choice
    page.get_by_role("link", name="Change step 3").click()
    settled(page)
    other = page.get_by_test_id("step-3")
    expect(other.get_by_label("Time of day")).to_be_hidden()
    other.get_by_label("Until a set time").check()
    expect(other.get_by_label("How long")).to_be_hidden()
    other.get_by_label("Time of day").fill("09:30")
    other.get_by_label("Saturday").check()
    other.get_by_role("button", name="Save step 3").click()
    settled(page)
    expect(other.get_by_test_id("step-summary")).to_contain_text("Until 09:30")
    expect(other.get_by_test_id("step-summary")).to_contain_text("Saturday")

    # and starts the journey
    page.get_by_role("button", name="Start", exact=True).click()

    # then it is live, with the steps she made as its first version
    expect(page.get_by_test_id("journey-status")).to_have_text("Live")
    expect(page.get_by_text("is live: contacts enter as its trigger happens")).to_be_visible()
    journey.refresh_from_db()
    assert journey.status == Journey.Status.LIVE
    assert journey.version is not None
    waits = [s for s in stepping.walk(journey.version.steps) if s["type"] == "wait"]
    assert waits[0] == {**waits[0], "amount": 2, "unit": "hours"}
    assert waits[1]["until"] == {"time": "09:30", "weekdays": [5], "zone": "account"}
