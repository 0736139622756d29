"""Searching and paging the contacts in a real browser: the filters live in the address,
so reloading, going back and sharing the link keep them; pages turn both ways."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from contacts.models import Contact
from tests.factories import PASSWORD, World, build_world

pytestmark = pytest.mark.usefixtures("transactional_db")


@pytest.fixture
def crowded_world() -> World:
    """The personas' world, with 60 "ann" contacts and 5 "bea" ones in alice's account."""
    world = build_world()
    Contact.objects.bulk_create(
        [Contact(account=world.account_a, email=f"ann{n:02}@example.com") for n in range(60)]
        + [Contact(account=world.account_a, email=f"bea{n}@example.com") for n in range(5)]
    )
    return world


def _rows(page: Page) -> list[str]:
    return page.locator("#contacts-table tbody td a").all_inner_texts()


def test_it_keeps_the_search_in_the_address_and_pages_both_ways(
    page: Page, live_server, crowded_world: World
) -> None:
    # given alice, logged in, on the contacts page
    page.goto(live_server.url + "/accounts/login/")
    page.locator("[name=login]").fill(crowded_world.alice.email)
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.goto(live_server.url + "/contacts/")

    # when she searches, newest address first
    page.get_by_label("Search").fill("ann")
    expect(page).to_have_url(re.compile(r"q=ann"))
    page.get_by_label("Sort").select_option("-email")
    expect(page).to_have_url(re.compile(r"sort=-email"))
    expect(page.locator("#contacts-table tbody tr").first).to_contain_text("ann59@")

    # then reloading keeps the search, the order and the results
    page.reload()
    expect(page.get_by_label("Search")).to_have_value("ann")
    expect(page.get_by_label("Sort")).to_have_value("-email")
    first_page = _rows(page)
    assert first_page[0] == "ann59@example.com"
    assert not any(row.startswith("bea") for row in first_page)

    # and the next page keeps them too, in the address as well
    page.get_by_role("link", name="Next page →").click()
    expect(page).to_have_url(re.compile(r"after="))
    expect(page.locator("#contacts-table tbody tr").first).to_contain_text("ann09@")
    assert re.search(r"q=ann", page.url)
    assert re.search(r"sort=-email", page.url)
    assert _rows(page) == [f"ann{n:02}@example.com" for n in range(9, -1, -1)]

    # and "previous" comes back to the first page, in the same order
    page.get_by_role("link", name="← Previous page").click()
    expect(page.locator("#contacts-table tbody tr").first).to_contain_text("ann59@")
    assert _rows(page) == first_page
    expect(page.get_by_role("link", name="← Previous page")).to_have_count(0)

    # and the browser's back button returns to the second page, whole
    page.go_back()
    expect(page.locator("#contacts-table tbody tr").first).to_contain_text("ann09@")
    expect(page.get_by_label("Search")).to_have_value("ann")
