"""Team: invitations, roles, removal — and who may do each."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditEntry, Invitation, MailFailure, Membership, User
from tests.factories import make_invitation


def _token_from(message) -> str:
    match = re.search(r"/invitations/([\w-]+)/", message.body)
    assert match, message.body
    return match.group(1)


def test_it_invites_a_teammate_by_email_with_a_role(
    alice_client, world, django_capture_on_commit_callbacks, tasks_inline
):
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(
            "/team/invite/", {"email": "Dana@Example.com", "role": "viewer"}
        )

    assert response.status_code == 302
    invitation = Invitation.objects.get(email="dana@example.com")
    assert invitation.role == "viewer"
    assert invitation.account == world.account_a
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dana@example.com"]
    assert mail.outbox[0].subject == "[Missive] You're invited to join a team on Missive"
    assert "Alpha Sentinel Corp" in mail.outbox[0].body
    assert AuditEntry.objects.filter(account=world.account_a, action="member.invited").exists()


def test_it_refuses_an_invitation_from_an_editor(bob_client, world):
    response = bob_client.post("/team/invite/", {"email": "eve@example.com", "role": "viewer"})

    assert response.status_code == 403
    assert not Invitation.objects.filter(email="eve@example.com").exists()


def test_it_refuses_to_invite_an_existing_member(alice_client, world):
    response = alice_client.post("/team/invite/", {"email": "bob@alpha.test", "role": "viewer"})

    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    assert not Invitation.objects.filter(email__iexact="bob@alpha.test").exists()
    assert Membership.objects.get(user=world.bob, account=world.account_a).role == "editor"


def test_it_lets_a_newcomer_join_by_setting_a_password(client, world):
    _invitation, token = make_invitation(world.account_a, "newcomer@example.com", role="viewer")

    page = client.get(f"/invitations/{token}/")
    assert page.status_code == 200
    assert "Alpha Sentinel Corp" in page.content.decode()

    response = client.post(
        f"/invitations/{token}/", {"first_name": "New", "password": "Tr1cky!pass"}
    )

    assert response.status_code == 302
    user = User.objects.get(email="newcomer@example.com")
    assert user.check_password("Tr1cky!pass")
    assert Membership.objects.get(user=user).role == "viewer"
    # the link is spent
    assert client.get(f"/invitations/{token}/").status_code == 404


def test_it_asks_an_existing_user_to_log_in_before_joining(world):
    _invitation, token = make_invitation(world.account_b, "alice@alpha.test", role="editor")
    anonymous = Client()
    assert "Log in to accept" in anonymous.get(f"/invitations/{token}/").content.decode()

    alice = Client()
    alice.force_login(world.alice, backend="allauth.account.auth_backends.AuthenticationBackend")
    response = alice.post(f"/invitations/{token}/")

    assert response.status_code == 302
    assert Membership.objects.filter(user=world.alice, account=world.account_b).exists()


def test_it_refuses_an_invitation_meant_for_someone_else(world, bob_client):
    _invitation, token = make_invitation(world.account_b, "someone@example.com")

    response = bob_client.post(f"/invitations/{token}/")

    assert response.status_code == 403
    assert not Membership.objects.filter(user=world.bob, account=world.account_b).exists()


def test_it_answers_a_forged_invitation_token_with_a_friendly_404(client, db):
    response = client.get("/invitations/not-a-real-token/")

    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_it_changes_a_role_and_keeps_at_least_one_owner(alice_client, world):
    response = alice_client.post(
        f"/team/members/{world.bob_membership.pk}/role/", {"role": "admin"}
    )
    assert response.status_code == 302
    world.bob_membership.refresh_from_db()
    assert world.bob_membership.role == "admin"

    alice_membership = Membership.objects.get(user=world.alice, account=world.account_a)
    # bob, now admin, cannot demote the owner above him
    bob = Client()
    bob.force_login(world.bob, backend="allauth.account.auth_backends.AuthenticationBackend")
    bob.post(f"/team/members/{alice_membership.pk}/role/", {"role": "viewer"})
    alice_membership.refresh_from_db()
    assert alice_membership.role == "owner"


def test_it_confirms_before_removing_a_member(alice_client, world):
    url = f"/team/members/{world.bob_membership.pk}/remove/"

    page = alice_client.get(url)
    assert page.status_code == 200
    assert "Remove bob@alpha.test?" in page.content.decode()
    assert Membership.objects.filter(pk=world.bob_membership.pk).exists()

    alice_client.post(url)
    assert not Membership.objects.filter(pk=world.bob_membership.pk).exists()


def test_it_does_not_let_the_last_owner_leave(alice_client, world):
    alice_membership = Membership.objects.get(user=world.alice, account=world.account_a)

    response = alice_client.post(f"/team/members/{alice_membership.pk}/remove/", follow=True)

    assert "at least one owner" in response.content.decode()
    assert Membership.objects.filter(pk=alice_membership.pk).exists()


def test_it_offers_no_leave_to_the_only_owner_and_says_why(alice_client, bob_client, world):
    # Given alice is account A's only owner, and bob an editor in it
    alice_membership = Membership.objects.get(user=world.alice, account=world.account_a)
    remove_url = f"/team/members/{alice_membership.pk}/remove/"

    # When alice opens the team page, and then the Leave address anyway
    page = alice_client.get("/team/").content.decode()
    confirm = alice_client.get(remove_url, follow=True)

    # Then she sees why she cannot leave, no Leave button and no confirmation page
    assert "only owner" in page
    assert f'href="{remove_url}"' not in page
    assert "Leave this account?" not in confirm.content.decode()
    assert "only owner" in confirm.content.decode()
    assert Membership.objects.filter(pk=alice_membership.pk).exists()
    # while bob, who may leave, is still offered it
    bob_membership = Membership.objects.get(user=world.bob, account=world.account_a)
    assert f"/team/members/{bob_membership.pk}/remove/" in bob_client.get("/team/").content.decode()


def test_it_shows_the_members_page_to_every_role(bob_client, world):
    response = bob_client.get("/team/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "alice@alpha.test" in body
    assert "Invite a teammate" not in body  # editors cannot invite


def test_it_lets_a_member_without_account_create_one(db):
    from tests.factories import make_user

    user = make_user("solo@example.com")
    client = Client()
    client.force_login(user, backend="allauth.account.auth_backends.AuthenticationBackend")

    assert client.get("/").url == "/account/new/"
    response = client.post(
        "/account/new/",
        {"name": "Solo Inc", "time_zone": "Europe/Paris", "default_from_email": "solo@example.com"},
    )
    assert response.status_code == 302
    assert Membership.objects.get(user=user).account.name == "Solo Inc"


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_invitation_when_the_mail_server_refuses(
    alice_client, world, settings, tasks_inline
):
    # given a mail server that never answers (the task's tries run at once here)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9  # nothing listens there
    settings.EMAIL_TIMEOUT = 2

    # when alice invites dana
    response = alice_client.post("/team/invite/", {"email": "dana@example.com", "role": "viewer"})

    # then the invitation stays, the last failure is recorded, and the page says so
    assert response.status_code == 302
    invitation = Invitation.objects.get(email="dana@example.com")
    assert invitation.email_error
    failure = MailFailure.objects.get(kind="invitation")
    assert failure.recipients == "dana@example.com"
    assert failure.attempts == settings.MISSIVE_NOTICE_MAX_ATTEMPTS
    page = alice_client.get("/team/").content.decode()
    assert "could not be sent" in page
    assert "Send again" in page


@pytest.mark.django_db(transaction=True)
def test_sending_an_invitation_again_clears_its_send_error(
    alice_client, world, settings, tasks_inline
):
    # given an invitation whose mail could not be sent
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9
    settings.EMAIL_TIMEOUT = 2
    alice_client.post("/team/invite/", {"email": "dana@example.com", "role": "viewer"})
    invitation = Invitation.objects.get(email="dana@example.com")
    assert invitation.email_error

    # when the mail server is back and alice sends it again
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    alice_client.post(f"/team/invitations/{invitation.pk}/resend/")

    # then it is mailed and the page no longer shows the error
    invitation.refresh_from_db()
    assert invitation.email_error == ""
    assert [m.to for m in mail.outbox] == [["dana@example.com"]]
    assert "could not be sent" not in alice_client.get("/team/").content.decode()


def test_it_sends_an_invitation_again_with_a_new_link(
    alice_client, world, django_capture_on_commit_callbacks, tasks_inline
):
    invitation, old_token = make_invitation(world.account_a, "late@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/team/invitations/{invitation.pk}/resend/")

    assert len(mail.outbox) == 1
    new_token = _token_from(mail.outbox[0])
    assert new_token != old_token
    assert Client().get(f"/invitations/{old_token}/").status_code == 404
    assert Client().get(f"/invitations/{new_token}/").status_code == 200


def test_it_shows_an_admin_no_controls_over_an_owner(world):
    world.bob_membership.role = "admin"
    world.bob_membership.save()
    bob = Client()
    bob.force_login(world.bob, backend="allauth.account.auth_backends.AuthenticationBackend")

    page = bob.get("/team/").content.decode()

    alice_row = page.split('data-member="alice@alpha.test"')[1].split("</tr>")[0]
    assert "<select" not in alice_row
    assert "Remove" not in alice_row


def test_it_ignores_a_closed_account(world, alice_client):
    world.account_a.status = "closed"
    world.account_a.save()

    # alice's only account is closed: nothing of it is reachable but the closure page
    assert alice_client.get("/").url == "/account/closed/"
    assert alice_client.post("/settings/", {"name": "Renamed"}).status_code == 302
    world.account_a.refresh_from_db()
    assert world.account_a.name == "Alpha Sentinel Corp"
    assert alice_client.get("/api/v1/account/").status_code == 403
