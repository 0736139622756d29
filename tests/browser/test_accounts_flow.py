"""Sign-up, login, invitations and logout, clicked through in a real browser."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from accounts.models import Account, Membership, User
from accounts.roles import Role
from tests.factories import PASSWORD, make_account, make_invitation, make_user

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_it_refuses_a_weak_password_at_sign_up_and_accepts_a_strong_one(
    page: Page, live_server
) -> None:
    # Given the sign-up page
    page.goto(live_server.url + "/accounts/signup/")

    # When a newcomer signs up with a password that has no special character
    page.locator("[name=company]").fill("Northwind Traders")
    page.locator("[name=email]").fill("founder@northwind.test")
    page.locator("[name=password1]").fill("abcd1234")
    page.get_by_role("button", name="Sign Up").click()

    # Then the form says what is missing, and nobody was created
    error = page.get_by_text(re.compile(r"^This password must contain .*special character"))
    expect(error).to_be_visible()
    assert not User.objects.filter(email="founder@northwind.test").exists()

    # When they try again with a strong password
    page.locator("[name=password1]").fill("Tr1cky!pass")
    page.get_by_role("button", name="Sign Up").click()

    # Then they are asked to confirm their address, and the mail to do so arrives
    expect(page).to_have_url(re.compile(r"/accounts/confirm-email/"))
    assert [message.to for message in mail.outbox] == [["founder@northwind.test"]]
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+)", mail.outbox[0].body)
    assert link, mail.outbox[0].body

    # When they open the link and confirm
    page.goto(live_server.url + link.group(1))
    page.get_by_role("button", name="Confirm").click()

    # Then they land on the dashboard of their new account, as its owner
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("main")).to_contain_text("Northwind Traders")
    account = Account.objects.get(name="Northwind Traders")
    membership = Membership.objects.get(account=account, user__email="founder@northwind.test")
    assert membership.role == Role.OWNER


def test_it_logs_in_invites_a_teammate_and_logs_out(page: Page, live_server, tasks_inline) -> None:
    # Given an owner of an account
    owner = make_user("owner@acme.test")
    make_account(owner, "Acme")

    # When they log in
    page.goto(live_server.url + "/accounts/login/")
    page.locator("[name=login]").fill("owner@acme.test")
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(live_server.url + "/")

    # And invite a teammate from the Team page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
    expect(page.get_by_role("heading", name="Team", level=1)).to_be_visible()
    page.get_by_label("Email").fill("teammate@example.com")
    page.get_by_label("Role").select_option("editor")
    page.get_by_role("button", name="Send invitation").click()

    # Then the page confirms it and lists the invitation as pending
    expect(page.get_by_role("status")).to_have_text("Invitation sent to teammate@example.com.")
    pending = page.locator("section", has=page.get_by_role("heading", name="Pending invitations"))
    expect(pending).to_contain_text("teammate@example.com")

    # And the teammate received the link to accept it
    assert [message.to for message in mail.outbox] == [["teammate@example.com"]]
    assert re.search(r"https?://[^/\s]+/invitations/[\w-]+/", mail.outbox[0].body)

    # When they log out from the user menu
    page.locator("details.menu > summary").click()
    page.get_by_test_id("logout").click()
    expect(page).to_have_url(re.compile(r"/accounts/(login|logout)/"))
    if page.url.endswith("/accounts/logout/"):
        # allauth asks for a confirmation when the POST did not log out by itself
        page.get_by_role("button", name="Sign Out").click()

    # Then they are on the login page, and the dashboard sends them back there
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_it_lets_an_invited_person_join_with_a_strong_password(page: Page, live_server) -> None:
    # Given an invitation to an account, for someone without a login
    account = make_account(make_user("owner@acme.test"), "Acme")
    _invitation, token = make_invitation(account, "newcomer@example.com", Role.EDITOR)
    page.goto(f"{live_server.url}/invitations/{token}/")
    expect(page.get_by_role("heading", name="Join Acme")).to_be_visible()

    # When they choose a password one character too short
    page.get_by_label("Password").fill("short1!")
    page.get_by_role("button", name="Create my login and join").click()

    # Then the form names the minimum length, and they are not a member yet
    error = page.get_by_text(re.compile(r"^This password is too short.*at least 8 characters"))
    expect(error).to_be_visible()
    assert not Membership.objects.filter(user__email="newcomer@example.com").exists()

    # When they choose a strong one
    page.get_by_label("Password").fill("Str0ng!pass")
    page.get_by_role("button", name="Create my login and join").click()

    # Then they land on the account's dashboard, as an editor
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("main")).to_contain_text("Acme · you are editor")
    membership = Membership.objects.get(account=account, user__email="newcomer@example.com")
    assert membership.role == Role.EDITOR


def test_it_changes_a_members_role_in_place(page: Page, live_server) -> None:
    # Given an owner with an editor on the team, on the Team page
    owner = make_user("owner@acme.test")
    account = make_account(owner, "Acme")
    editor = make_user("editor@acme.test")
    Membership.objects.create(account=account, user=editor, role=Role.EDITOR)
    page.goto(live_server.url + "/accounts/login/")
    page.locator("[name=login]").fill("owner@acme.test")
    page.locator("[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.goto(live_server.url + "/team/")

    # When they pick another role in the editor's row (htmx posts it, no reload)
    page.get_by_label("Role of editor@acme.test").select_option("viewer")

    # Then the page confirms it in place, and the database agrees
    expect(page.get_by_role("status")).to_have_text("editor@acme.test is now Viewer.")
    assert Membership.objects.get(account=account, user=editor).role == Role.VIEWER
