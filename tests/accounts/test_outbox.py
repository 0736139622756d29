"""The local mail catcher and the staff Outbox, over a real SMTP connection."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client, override_settings

from accounts import outbox
from accounts.management.commands.mailcatcher import start_catcher
from accounts.models import User
from campaigns import sending
from campaigns import services as campaign_services
from events.models import Event
from tests.factories import PASSWORD


@pytest.fixture
def catcher(tmp_path, free_port, settings):
    """A real SMTP server on loopback, and Django sending to it."""
    controller = start_catcher(tmp_path, port=free_port)
    settings.MAIL_CATCHER_DIR = str(tmp_path)
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=free_port,
        EMAIL_USE_TLS=False,
        EMAIL_USE_SSL=False,
    ):
        yield tmp_path
    controller.stop()


@pytest.fixture
def staff_client(db) -> Client:
    staff = User.objects.create_user(email="ops@missive.test", password=PASSWORD, is_staff=True)
    client = Client()
    client.force_login(staff, backend="allauth.account.auth_backends.AuthenticationBackend")
    return client


def test_it_shows_a_password_reset_mail_in_the_outbox(catcher, world, staff_client):
    # given a person who forgot their password asks for a reset
    Client().post("/accounts/password/reset/", {"email": "alice@alpha.test"})

    # then the mail went through SMTP to the catcher…
    items, total = outbox.newest()
    assert total == 1
    caught = items[0]
    assert caught.rcpt_tos == ["alice@alpha.test"]
    assert "Password Reset" in caught.subject

    # …and a staff member reads it in the Outbox: list, text part and headers
    listing = staff_client.get("/staff/outbox/")
    assert "Password Reset" in listing.content.decode()
    detail = staff_client.get(f"/staff/outbox/{caught.id}/")
    body = detail.content.decode()
    assert "/accounts/password/reset/key/" in body
    assert "Message-ID" in body
    parsed = message_from_bytes(caught.raw, policy=policy.default)
    assert not parsed.defects


def test_it_renders_the_html_part_in_a_sandbox(catcher, staff_client):
    message = mail.EmailMultiAlternatives("Hello", "plain text", to=["x@example.com"])
    message.attach_alternative("<p>Hi <script>alert(1)</script></p>", "text/html")
    message.send()
    caught = outbox.newest()[0][0]

    response = staff_client.get(f"/staff/outbox/{caught.id}/html/")

    assert response.status_code == 200
    assert "sandbox" in response["Content-Security-Policy"]
    assert "script-src" not in response["Content-Security-Policy"]  # default-src 'none' rules
    assert (
        'sandbox title="HTML part"'
        in staff_client.get(f"/staff/outbox/{caught.id}/").content.decode()
    )


def test_it_empties_the_outbox_after_confirmation(catcher, staff_client):
    mail.send_mail("One", "body", None, ["x@example.com"])
    assert "Empty the Outbox?" in staff_client.get("/staff/outbox/clear/").content.decode()

    staff_client.post("/staff/outbox/clear/")

    assert outbox.newest() == ([], 0)


def test_it_keeps_the_outbox_from_customers(catcher, alice_client):
    mail.send_mail("Secret", "body", None, ["x@example.com"])
    caught = outbox.newest()[0][0]

    assert alice_client.get("/staff/outbox/").status_code == 403
    assert alice_client.get(f"/staff/outbox/{caught.id}/").status_code == 403


def test_it_answers_404_for_a_forged_message_id(catcher, staff_client):
    assert staff_client.get("/staff/outbox/../../etc/passwd/").status_code == 404
    assert staff_client.get("/staff/outbox/00000000000000000-deadbeef/").status_code == 404


def test_it_shows_a_campaign_message_without_firing_its_tracking(
    catcher, free_port, settings, world, staff_client, django_capture_on_commit_callbacks
):
    # given a campaign with a tracked link and the open pixel, sent over SMTP to the catcher
    settings.MISSIVE_SENDING_BACKENDS = {
        **settings.MISSIVE_SENDING_BACKENDS,
        "catcher": f"smtp://127.0.0.1:{free_port}",
    }
    account = world.account_a
    account.sending_backend = "catcher"
    account.save()
    campaign = campaign_services.campaign_create(
        account=account,
        actor=None,
        name="Tracked",
        subject="Tracked news",
        from_email="news@alpha.test",
        html='<p>Hi <a href="https://example.com/offer">the offer</a></p>',
        lists=[world.extras["list"]],
    )
    with django_capture_on_commit_callbacks(execute=False):
        campaign_services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)
    sending.send_batch(campaign.pk)
    (caught,) = outbox.newest()[0]
    assert b"/t/o/" in caught.raw.replace(b"=\r\n", b"")  # the message itself is tracked

    # when a staff member views it, the frame loading its images and every link clicked
    detail = staff_client.get(f"/staff/outbox/{caught.id}/")
    frame = staff_client.get(f"/staff/outbox/{caught.id}/html/")
    html = frame.content.decode()
    browser = Client()
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        if urlsplit(url).scheme not in ("http", "https"):
            continue
        page = browser.get(urlsplit(url).path)
        # …and whatever page a link opened loads its images in turn
        if page["Content-Type"].startswith("text/html"):
            for inner in re.findall(r'src="([^"]+)"', page.content.decode()):
                browser.get(urlsplit(inner).path)

    # then no open or click is recorded, and the frame can run nothing
    assert detail.status_code == frame.status_code == 200
    assert "the offer" in html
    assert list(Event.objects.filter(campaign_id=campaign.pk).values_list("type", flat=True)) == [
        Event.Type.SENT
    ]
    assert "sandbox" in frame["Content-Security-Policy"]
