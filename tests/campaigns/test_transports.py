"""The transports behind one interface: SMTP written directly (with each server answer
classified) and any Django/anymail backend, chosen per account by the operator."""

from __future__ import annotations

import email
import email.policy

import dkim
import pytest
from anymail import exceptions as anymail_exceptions
from django.core.exceptions import ValidationError

from campaigns import sending, services, transports
from campaigns.messages import MessageFactory, Recipient
from campaigns.models import Delivery
from campaigns.transports import ConnectionLost, Result
from contacts.models import Contact, Subscription
from tests.factories import shared_key


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
def smtp_server(start_smtp_server):
    server = start_smtp_server(Handler())
    return server.handler, server.port


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
    assert results["gone@example.net"] == Result(
        Result.FAILED, "550 5.1.1 No such user", recipient_refused=True
    )
    assert results["busy@example.net"].outcome == Result.RETRY
    assert len(handler.received) == 1
    parsed = email.message_from_bytes(handler.received[0], policy=email.policy.default)
    assert parsed["Subject"] == "Hello Ann"
    assert not parsed.defects


class RefusingSender(Handler):
    """Refuses the sender of every message, as a relay whose checks fail on the return
    path would (Postfix's reject_unknown_sender_domain)."""

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        return "553 5.1.8 <news@alpha.test>: Sender address rejected: Domain not found"


def test_a_refused_sender_is_not_a_refused_recipient(start_smtp_server, campaign):
    # given a server that refuses the sender
    server = start_smtp_server(RefusingSender())
    transport = transports.SmtpTransport({"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": server.port})
    factory = MessageFactory(campaign, positions={})

    # when a message goes out
    transport.open()
    result = transport.send(factory, factory.build(Recipient(1, "ok@example.net", "", "", {})))
    transport.close()

    # then it failed with the server's words, but nothing holds it against the recipient
    assert result.outcome == Result.FAILED
    assert result.detail.startswith("553 5.1.8")
    assert not result.recipient_refused


def test_only_refused_recipients_are_handed_to_the_bounce_rules(
    campaign, enqueued, django_capture_on_commit_callbacks
):
    # given a batch where the server refused one recipient's address and, for another
    # message, the sender
    second_contact = Contact.objects.create(account=campaign.account, email="sam@example.net")
    Subscription.objects.create(
        contact=second_contact,
        contact_list=campaign.lists.get(),
        status=Subscription.Status.SUBSCRIBED,
    )
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)
    claimed = sending.claim_batch(campaign, list(campaign.lists.values_list("pk", flat=True)), 2)
    first, second = (r.delivery_id for r in claimed.recipients)
    outcomes = sending.Outcomes(
        failed=[(first, "550 5.1.1 No such user"), (second, "553 5.1.8 Sender rejected")],
        refused={first},
    )

    # when the outcomes are written
    with django_capture_on_commit_callbacks(execute=True):
        sending.flush(campaign, outcomes, claimed.attempts)

    # then both failed, and only the refused address goes to the bounce rules
    assert set(
        Delivery.objects.filter(campaign=campaign, status=Delivery.Status.FAILED).values_list(
            "pk", flat=True
        )
    ) == {first, second}
    assert enqueued == [("stats.record_send_refusals", [[(first, "550 5.1.1 No such user")]], {})]


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


# -- one unsendable message is that message's outcome, never the batch's -----------------------


@pytest.fixture
def smtputf8_server(start_smtp_server):
    """A server announcing SMTPUTF8 (RFC 6531) in its EHLO answer."""
    server = start_smtp_server(Handler(), smtputf8=True)
    return server.handler, server.port


@pytest.fixture
def ascii_only_server(start_smtp_server):
    """A server that does not announce SMTPUTF8."""
    server = start_smtp_server(Handler(), smtputf8=False)
    return server.handler, server.port


def send_each(port: int, campaign, addresses: list[str]) -> dict[str, Result]:
    transport = transports.SmtpTransport({"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port})
    factory = MessageFactory(campaign, positions={})
    results = {}
    transport.open()
    try:
        for n, address in enumerate(addresses):
            message = factory.build(Recipient(n + 1, address, "Ann", "", {}))
            results[address] = transport.send(factory, message)
    finally:
        transport.close()
    return results


def test_it_fails_an_internationalized_address_alone_when_the_server_lacks_smtputf8(
    ascii_only_server, campaign
):
    # given a server that does not announce SMTPUTF8
    handler, port = ascii_only_server

    # when a batch holds addresses whose local part is not ASCII among ordinary ones
    results = send_each(
        port, campaign, ["a@example.net", "jürgen@example.net", "用户@example.net", "b@example.net"]
    )

    # then each of those fails with the reason, and the others are delivered
    reason = "The server does not accept internationalized addresses (SMTPUTF8)."
    assert results["jürgen@example.net"] == Result(Result.FAILED, reason)
    assert results["用户@example.net"] == Result(Result.FAILED, reason)
    assert results["a@example.net"].outcome == Result.SENT
    assert results["b@example.net"].outcome == Result.SENT
    assert len(handler.received) == 2


def test_it_sends_internationalized_addresses_with_smtputf8_when_the_server_offers_it(
    smtputf8_server, campaign
):
    # given a server that announces SMTPUTF8
    handler, port = smtputf8_server

    # when messages go to addresses whose local part is not ASCII
    results = send_each(port, campaign, ["jürgen@example.net", "用户@example.net", "a@example.net"])

    # then all are delivered, each To header in UTF-8 (RFC 6532) and well formed
    assert {r.outcome for r in results.values()} == {Result.SENT}
    parsed = [
        email.message_from_bytes(raw, policy=email.policy.SMTPUTF8) for raw in handler.received
    ]
    assert [str(p["To"]) for p in parsed] == [
        "jürgen@example.net",
        "用户@example.net",
        "a@example.net",
    ]
    assert all(not p.defects for p in parsed)
    assert "jürgen@example.net".encode() in handler.received[0]


def test_it_writes_a_domain_name_that_is_not_ascii_in_punycode(ascii_only_server, campaign):
    # given a server without SMTPUTF8
    handler, port = ascii_only_server

    # when the address's domain, not its local part, is internationalized
    results = send_each(port, campaign, ["ann@bücher.example"])

    # then it goes out with the domain in its ASCII form, SMTPUTF8 or not
    assert results["ann@bücher.example"].outcome == Result.SENT
    parsed = email.message_from_bytes(handler.received[0], policy=email.policy.default)
    assert parsed["To"] == "ann@xn--bcher-kva.example"


class ExplodingBackend:
    """A Django email backend that breaks on one recipient in a way nobody foresaw."""

    sent: list[str] = []

    def __init__(self, **kwargs) -> None:
        pass

    def open(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def send_messages(self, messages) -> int:
        for message in messages:
            if message.to[0].startswith("boom@"):
                raise TypeError("unexpected value in a header")
            ExplodingBackend.sent.append(message.to[0])
        return len(messages)


def test_it_makes_a_backend_error_on_one_message_that_messages_outcome(campaign):
    # given a backend that raises an unforeseen exception for one recipient
    ExplodingBackend.sent = []
    transport = transports.DjangoTransport(f"{__name__}.ExplodingBackend", {})
    factory = MessageFactory(campaign, positions={})

    # when a batch goes through it
    transport.open()
    results = [
        transport.send(factory, factory.build(Recipient(n + 1, address, "Ann", "", {})))
        for n, address in enumerate(["a@example.net", "boom@example.net", "b@example.net"])
    ]
    transport.close()

    # then that message failed with the reason, and the batch went on
    assert [r.outcome for r in results] == [Result.SENT, Result.FAILED, Result.SENT]
    assert results[1].detail == "TypeError: unexpected value in a header"
    assert ExplodingBackend.sent == ["a@example.net", "b@example.net"]


class _Answer:
    """Enough of a requests.Response for anymail's error to describe it."""

    def __init__(self, status: int) -> None:
        self.status_code = status
        self.reason = "Reason"
        self.text = '{"message": "the provider says"}'

    def json(self) -> dict:
        return {"message": "the provider says"}


def _api_error(status: int) -> Exception:
    from anymail.exceptions import AnymailRequestsAPIError

    return AnymailRequestsAPIError("Sending a message failed", response=_Answer(status))


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        pytest.param(
            lambda: anymail_exceptions.AnymailUnsupportedFeature(
                "Postal does not support metadata"
            ),
            Result.FAILED,
            id="unsupported-feature",
        ),
        pytest.param(
            lambda: anymail_exceptions.AnymailInvalidAddress("Invalid email address 'x@'"),
            Result.FAILED,
            id="invalid-address",
        ),
        pytest.param(
            lambda: anymail_exceptions.AnymailConfigurationError("POSTAL_API_URL is missing"),
            Result.FAILED,
            id="configuration",
        ),
        pytest.param(
            lambda: anymail_exceptions.AnymailRecipientsRefused(), Result.FAILED, id="refused"
        ),
        pytest.param(lambda: _api_error(400), Result.FAILED, id="400"),
        pytest.param(lambda: _api_error(422), Result.FAILED, id="422"),
        pytest.param(lambda: _api_error(408), Result.RETRY, id="408"),
        pytest.param(lambda: _api_error(429), Result.RETRY, id="429"),
        pytest.param(lambda: _api_error(502), Result.RETRY, id="502"),
        pytest.param(
            lambda: anymail_exceptions.AnymailRequestsAPIError("Connection refused"),
            Result.RETRY,
            id="no-answer",
        ),
        pytest.param(
            lambda: anymail_exceptions.AnymailError("Cannot call Mailgun unknown sender domain"),
            Result.FAILED,
            id="anymail-refusal",
        ),
        pytest.param(lambda: TimeoutError("timed out"), Result.RETRY, id="timeout"),
        pytest.param(lambda: KeyError("Message-ID"), Result.FAILED, id="unforeseen"),
    ],
)
def test_it_fails_at_once_only_what_retrying_cannot_mend(error, outcome):
    # given what a provider's backend raised for one message
    raised = error()

    # when it is classified
    result = transports._provider_result(raised)

    # then it is retried or failed, with the provider's words kept
    assert result.outcome == outcome
    assert result.detail.startswith(type(raised).__name__)
    assert str(raised)[:100] in result.detail


def test_messages_prepared_ahead_go_out_signed_each_to_its_own_recipient(smtp_server, campaign):
    """The worker hands each message to ``prepare`` before the one ahead of it is sent, and
    the transport signs it on its own thread meanwhile: what reaches the server is that
    signature, over that recipient's message, in order."""
    handler, port = smtp_server
    factory = MessageFactory(campaign, positions={})
    assert factory.signer is not None, "alpha.test is a verified domain of the account"
    transport = transports.SmtpTransport({"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port})
    addresses = [f"reader{n}@example.net" for n in range(5)]
    messages = [
        factory.build(Recipient(n + 1, address, f"Reader {n}", "", {}))
        for n, address in enumerate(addresses)
    ]
    transport.open()
    try:
        transport.prepare(factory, messages[0])
        for n, message in enumerate(messages):
            if n + 1 < len(messages):
                transport.prepare(factory, messages[n + 1])
            assert message.prepared is not None
            assert transport.send(factory, message).outcome == Result.SENT
    finally:
        transport.close()

    _pem, public = shared_key()
    record = f"v=DKIM1; k=rsa; p={public}".encode()
    assert len(handler.received) == len(addresses)
    for address, message, raw in zip(addresses, messages, handler.received, strict=True):
        assert message.prepared is not None
        assert raw.replace(b"\r\n", b"\n") == message.prepared.result().replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert parsed["To"].addresses[0].addr_spec == address
        assert parsed["Message-ID"] == message.message_id
        assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)


def test_an_unsigned_message_is_written_when_it_is_sent(smtp_server, campaign):
    handler, port = smtp_server
    factory = MessageFactory(campaign, positions={})
    factory.signer = None  # as for a domain the provider signs
    transport = transports.SmtpTransport({"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port})
    message = factory.build(Recipient(1, "reader@example.net", "Reader", "", {}))
    transport.open()
    try:
        transport.prepare(factory, message)
        assert message.prepared is None
        assert transport.send(factory, message).outcome == Result.SENT
    finally:
        transport.close()
    assert b"DKIM-Signature" not in handler.received[0]
    assert b"To: reader@example.net" in handler.received[0]
