"""Importing a CSV file into a list, clicked through in a real browser, with a real
Celery worker doing the import."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import Page, expect

from config.celery import app
from contacts import services
from contacts.models import Contact
from tests.factories import PASSWORD, make_account, make_user

pytestmark = pytest.mark.usefixtures("transactional_db")

CSV = (
    "Email;First name;Last name\n"
    "ann@example.com;Ann;Archer\n"
    "ben@example.com;Ben;Baker\n"
    "not-an-address;Cid;Cole\n"
    "dee@example.com;Dée;Díaz\n"
).encode()


@pytest.fixture
def worker():
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        yield


def test_it_imports_a_csv_through_upload_mapping_and_progress(
    page: Page, live_server, worker
) -> None:
    # Given an owner with a list, logged in
    owner = make_user("owner@acme.test")
    account = make_account(owner, "Acme")
    services.list_create(account=account, actor=owner, name="Customers")
    page.goto(live_server.url + "/accounts/login/")
    page.locator("[name=login]").fill("owner@acme.test")
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    # When they open the list from the navigation and choose a CSV file
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Lists").click()
    page.get_by_role("link", name="Customers").click()
    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "customers.csv", "mimeType": "text/csv", "buffer": CSV}]
    )
    page.get_by_role("button", name="Upload and continue").click()

    # Then the mapping screen has guessed the columns
    expect(page.get_by_role("heading", name="Match the columns of customers.csv")).to_be_visible()
    expect(page.get_by_label("Import Email as")).to_have_value("email")
    expect(page.get_by_label("Import First name as")).to_have_value("first_name")

    # When they declare how consent was obtained and start
    page.get_by_label("How did these people agree to hear from you?").fill("Loyalty card form")
    page.get_by_role("button", name="Start the import").click()

    # Then the progress screen gives way to the summary, with the rejected row
    expect(page.locator("#import-progress")).to_be_visible()
    expect(page.get_by_text("new contacts")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("cell", name="not-an-address", exact=True)).to_be_visible()

    # And the list shows the imported contacts
    page.get_by_role("link", name="See the list").click()
    expect(page.get_by_role("link", name="dee@example.com")).to_be_visible()
    assert Contact.objects.filter(account=account).count() == 3
    assert Contact.objects.get(email="dee@example.com").last_name == "Díaz"
