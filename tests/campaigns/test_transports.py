"""The transports behind one interface: SMTP written directly (with each server answer
classified) and any Django/anymail backend, chosen per account by the operator."""

from __future__ import annotations

import email
import email.policy

import pytest
from aiosmtpd.controller import Controller
from django.core.exceptions import ValidationError

from campaigns import sending, services, transports
from campaigns.messages import MessageFactory, Recipient
from campaigns.models import Delivery
from campaigns.transports import ConnectionLost, Result


class Handler:
    """Accepts everyone but two addresses: one refused for good, one for now."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("gone@"):
            return "550 5.1.1 No such user"
        if address.startswith("busy@"):
            return "451 4.7.1 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.original_content or envelope.content)
        return "250 Message accepted"


@pytest.fixture
def smtp_server(free_port):
    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port)
    controller.start()
    yield handler, free_port
    controller.stop()


@pytest.fixture
def campaign(world):
    world.account_a.postal_address = "1 Alpha Road"
    world.account_a.save()
    return services.campaign_create(
        account=world.account_a,
        actor=None,
        name="T",
        subject="Hello {{ first_name }}",
        from_email="news@alpha.test",
        html='<p>Hi <a href="https://example.com/x">x</a></p>',
        lists=[world.extras["list"]],
    )


def test_smtp_answers_are_classified(smtp_server, campaign):
    handler, port = smtp_server
    transport = transports.SmtpTransport({"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port})
    factory = MessageFactory(campaign, positions={"https://example.com/x": 0})
    results = {}
    transport.open()
    for n, address in enumerate(["ok@example.net", "gone@example.net", "busy@example.net"]):
        message = factory.build(Recipient(n + 1, address, "Ann", "", {}))
        results[address] = transport.send(factory, message)
    transport.close()

    assert results["ok@example.net"].outcome == Result.SENT
    assert results["gone@example.net"] == Result(Result.FAILED, "550 5.1.1 No such user")
    assert results["busy@example.net"].outcome == Result.RETRY
    assert len(handler.received) == 1
    parsed = email.message_from_bytes(handler.received[0], policy=email.policy.default)
    assert parsed["Subject"] == "Hello Ann"
    assert not parsed.defects


def test_an_unreachable_server_is_a_lost_connection_not_a_failure(free_port, campaign):
    transport = transports.SmtpTransport({"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": free_port})
    with pytest.raises(ConnectionLost):
        transport.open()


def test_a_batch_retries_later_when_the_server_is_down(
    free_port, campaign, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)

    report = sending.send_batch(campaign.pk)

    assert report.sent == 0
    delivery = Delivery.objects.get(campaign=campaign)
    assert delivery.status == Delivery.Status.QUEUED
    assert delivery.retry_at is not None
    assert "Cannot reach the mail server" in delivery.error
    assert not report.more  # not due yet: the sweeper picks it up when it is


def test_the_operator_can_give_an_account_another_backend(
    campaign, settings, django_capture_on_commit_callbacks
):
    settings.MISSIVE_SENDING_BACKENDS = {"provider": "esp:test"}  # anymail's test backend
    settings.ANYMAIL = {"TEST_SEND_DEFAULTS": {}}
    account = campaign.account
    account.sending_backend = "provider"
    account.save()
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)

    transport = transports.transport_for(account)
    sending.send_batch(campaign.pk)

    assert isinstance(transport, transports.DjangoTransport)
    assert transport.backend == "anymail.backends.test.EmailBackend"
    delivery = Delivery.objects.get(campaign=campaign)
    assert delivery.status == Delivery.Status.SENT
    assert delivery.esp_message_id  # the provider's id, as anymail reports it


def test_an_unknown_backend_name_retries_rather_than_losing_mail(
    campaign, settings, django_capture_on_commit_callbacks
):
    account = campaign.account
    account.sending_backend = "nowhere"
    account.save()
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)

    with pytest.raises(ConnectionLost):
        transports.transport_for(account)
    sending.send_batch(campaign.pk)
    assert Delivery.objects.get(campaign=campaign).status == Delivery.Status.QUEUED


def test_schedule_needs_a_future_time(campaign):
    from datetime import timedelta

    from django.utils import timezone

    with pytest.raises(ValidationError):
        services.campaign_schedule(
            campaign=campaign, actor=None, when=timezone.now() - timedelta(minutes=5)
        )


def test_bounces_come_back_to_a_signed_return_path(smtp_server, campaign, settings):
    from campaigns import tokens

    settings.MISSIVE_RETURN_PATH = "bounces@mail.missive.test"
    factory = MessageFactory(campaign, positions={})
    message = factory.build(Recipient(42, "ok@example.net", "Ann", "", {}))

    sender = factory.envelope_sender(message)

    local, domain = sender.split("@")
    assert domain == "mail.missive.test"
    assert local.startswith("bounces+")
    assert tokens.read_bounce_token(local.removeprefix("bounces+")) == 42
