"""Invitations are Missive's own mail to any address an account types: a fixed subject,
the account's name only in the body, cleaned and bounded, and a limit per hour."""

from __future__ import annotations

import pytest
from django.core import mail

from accounts import services
from accounts.models import Invitation


@pytest.fixture(autouse=True)
def _mail_inline(tasks_inline):
    """The mail is sent by a task; what it says is the subject here, so it runs in place."""


def _invite(client, email: str, capture) -> object:
    with capture(execute=True):
        return client.post("/team/invite/", {"email": email, "role": "viewer"})


def test_it_keeps_the_account_name_out_of_the_subject(
    alice_client, world, django_capture_on_commit_callbacks
):
    # given an account named like an advertisement
    world.account_a.name = "WIN $1000 NOW at https://prize.example.com/claim?id=1 hurry up today"
    world.account_a.save()

    # when it invites a stranger
    _invite(alice_client, "stranger@example.com", django_capture_on_commit_callbacks)

    # then the subject is Missive's own, and the body shows the name defused and bounded
    message = mail.outbox[0]
    assert message.subject == "[Missive] You're invited to join a team on Missive"
    html = message.alternatives[0][0]
    for part in (message.body, html):
        assert "https://prize" not in part
        assert "prize.example.com" not in part
        assert "WIN $1000 NOW at prize\u2024example\u2024com/clai…" in part


def test_it_escapes_the_account_name_in_the_html_body(
    alice_client, world, django_capture_on_commit_callbacks
):
    world.account_a.name = '<a href="x">Click</a>'
    world.account_a.save()

    _invite(alice_client, "stranger@example.com", django_capture_on_commit_callbacks)

    html = mail.outbox[0].alternatives[0][0]
    assert '<a href="x">' not in html
    assert "&lt;a href=&quot;x&quot;&gt;Click&lt;/a&gt;" in html


def test_it_removes_control_characters_from_the_name():
    assert (
        services.mail_safe_name("Acme\r\nBcc: x@example.com\u202e")
        == "Acme Bcc: x@example\u2024com"
    )
    assert services.mail_safe_name("Acme Inc.") == "Acme Inc."


def test_it_limits_invitations_per_account_and_hour(
    alice_client, world, django_capture_on_commit_callbacks
):
    # given an account that sent 20 invitations this hour
    for n in range(20):
        response = _invite(alice_client, f"p{n}@example.com", django_capture_on_commit_callbacks)
        assert response.status_code == 302
    mail.outbox.clear()

    # when it sends a 21st, or sends one again
    response = _invite(alice_client, "p20@example.com", django_capture_on_commit_callbacks)
    pending = Invitation.objects.filter(account=world.account_a, email="p0@example.com").get()
    with django_capture_on_commit_callbacks(execute=True):
        resent = alice_client.post(f"/team/invitations/{pending.pk}/resend/", follow=True)

    # then both are refused, saying why, and nothing is mailed
    assert response.status_code == 400
    assert "20 invitations an hour" in response.content.decode()
    assert "20 invitations an hour" in resent.content.decode()
    assert not Invitation.objects.filter(email="p20@example.com").exists()
    assert mail.outbox == []


def test_it_counts_the_invitation_limit_per_account(
    alice_client, charlie_client, world, django_capture_on_commit_callbacks
):
    for n in range(20):
        _invite(alice_client, f"p{n}@example.com", django_capture_on_commit_callbacks)
    mail.outbox.clear()

    response = _invite(charlie_client, "friend@example.com", django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["friend@example.com"]]
