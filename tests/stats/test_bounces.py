"""The bounce mailbox of SMTP sending: delivery status notifications (RFC 3464) and
feedback reports (RFC 5965) in the shapes real mail servers send, non-standard bounces,
mailto: unsubscribes; read from IMAP and POP3 servers or posted to /webhooks/bounces/."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from campaigns import tokens
from campaigns.messages import MessageFactory, Outgoing
from campaigns.models import Delivery
from contacts.models import Subscription, Suppression
from events.models import Event
from stats import bounces
from stats.bounces import Result
from stats.tasks import fetch_bounces_task
from tests.stats.feedback_helpers import SECRET, basic_auth, events, send, suppression
from tests.stats.mailservers import PASSWORD, USER, Store, imap_server, pop3_server

BOUNDARY = "6E4C8A2D5F.1772445600/mx.example.net"
# When the reports were written: an hour ago (whole seconds, as mail dates are).
WHEN = timezone.now().replace(microsecond=0) - timedelta(hours=1)
DATE = format_datetime(WHEN)


@pytest.fixture
def delivery(world):
    return send(world)


def _sent_bytes(delivery: Delivery) -> bytes:
    """The campaign message as it left (locmem keeps it)."""
    message = next(
        m
        for m in mail.outbox
        if m.extra_headers.get("X-Missive-Campaign", "").endswith(f"-{delivery.pk}")
    )
    return message.message().as_bytes()


def _sent_headers(delivery: Delivery) -> str:
    return _sent_bytes(delivery).split(b"\n\n", 1)[0].decode()


def _verp(delivery: Delivery) -> str:
    return f"bounces+{tokens.bounce_token(delivery.pk)}@alpha.test"


def postfix_dsn(
    delivery: Delivery,
    *,
    to: str | None = None,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <erin@alpha.test>: Recipient address rejected: User\n"
    "    unknown in virtual alias table",
    returned: str | None = None,
    date: str = DATE,
) -> bytes:
    """A delivery status notification as Postfix writes it, returning the headers."""
    to = to or _verp(delivery)
    returned = _sent_headers(delivery) if returned is None else returned
    return f"""Return-Path: <>
Delivered-To: {to}
Received: by mx.example.net (Postfix) id 6E4C8A2D5F; {date}
Date: {date}
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{BOUNDARY}"
Content-Transfer-Encoding: 7bit
Message-Id: <20260302100000.6E4C8A2D5F@mx.example.net>

This is a MIME-encapsulated message.

--{BOUNDARY}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<erin@alpha.test>: host mx.alpha.test[192.0.2.10] said: 550 5.1.1
    <erin@alpha.test>: Recipient address rejected: User unknown in virtual alias
    table (in reply to RCPT TO command)

--{BOUNDARY}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
X-Postfix-Queue-ID: 6E4C8A2D5F
X-Postfix-Sender: rfc822; {_verp(delivery)}
Arrival-Date: {date}

Final-Recipient: rfc822; erin@alpha.test
Original-Recipient: rfc822;erin@alpha.test
Action: {action}
Status: {status}
Remote-MTA: dns; mx.alpha.test
Diagnostic-Code: {diagnostic}

--{BOUNDARY}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{returned}

--{BOUNDARY}--
""".replace("\n", "\r\n").encode()


def gmail_dsn(delivery: Delivery, *, status: str, diagnostic: str) -> bytes:
    """Gmail's "Delivery Status Notification (Failure)", to the campaign's sender (no
    VERP), with the whole message returned."""
    original = _sent_bytes(delivery).decode()
    return (
        f"""Delivered-To: news@alpha.test
Return-Path: <>
Date: {DATE}
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: news@alpha.test
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
Message-ID: <65e2f8a3.050a0220.1a2b3.0001.GMR@mx.google.com>
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000d1e5f70612ab34cd"; report-type=delivery-status

--000000000000d1e5f70612ab34cd
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to erin@alpha.test because the address couldn't be found.

--000000000000d1e5f70612ab34cd
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; news@alpha.test
Arrival-Date: {DATE}
X-Original-Message-ID: <0000>

Final-Recipient: rfc822; erin@alpha.test
Action: failed
Status: {status}
Diagnostic-Code: smtp; {diagnostic}
Last-Attempt-Date: {DATE}

--000000000000d1e5f70612ab34cd
Content-Type: message/rfc822

{original}
--000000000000d1e5f70612ab34cd--
""".replace("\r\n", "\n")
        .replace("\n", "\r\n")
        .encode()
    )


def qmail_bounce(delivery: Delivery, quoted: str) -> bytes:
    """qmail's non-standard "failure notice", with the message copied into its text."""
    return f"""Return-Path: <>
Date: {DATE}
From: MAILER-DAEMON@mail.example.org
To: news@alpha.test
Subject: failure notice

Hi. This is the qmail-send program at mail.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<erin@alpha.test>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

{quoted}

Hi Erin
""".replace("\n", "\r\n").encode()


def arf_complaint(delivery: Delivery, *, mail_from: str = "") -> bytes:
    """A feedback loop's abuse report (RFC 5965), as Yahoo's and Microsoft's send."""
    return (
        f"""From: feedback@arf.mail.example.com
To: fbl@alpha.test
Date: {DATE}
Subject: FW: Offer
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="arf_boundary"

--arf_boundary
Content-Type: text/plain; charset="US-ASCII"

This is an email abuse report for an email message received from IP 192.0.2.1 on
{DATE}.

--arf_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Mail-From: <{mail_from}>
Arrival-Date: {DATE}
Reported-Domain: alpha.test
Source-IP: 192.0.2.1

--arf_boundary
Content-Type: message/rfc822

{_sent_bytes(delivery).decode()}
--arf_boundary--
""".replace("\r\n", "\n")
        .replace("\n", "\r\n")
        .encode()
    )


# -- reading reports ---------------------------------------------------------------------------


def test_a_postfix_dsn_to_the_verp_address_is_a_hard_bounce(world, delivery):
    result = bounces.process_message(postfix_dsn(delivery))

    assert result == Result.BOUNCE
    (event,) = events(delivery)
    assert event.detail["kind"] == "hard"
    assert event.detail["status"] == "5.1.1"
    assert event.detail["source"] == "bounce mailbox"
    assert "User unknown" in event.detail["diagnostic"]
    assert event.occurred_at == WHEN
    assert suppression(world).reason == Suppression.Reason.HARD_BOUNCE
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.BOUNCED


def test_the_verp_address_is_the_one_the_sender_uses(world, delivery):
    # The address messages/envelope_sender builds is the one the parser reads back.
    with override_settings(MISSIVE_RETURN_PATH="bounces@alpha.test"):
        factory = MessageFactory(delivery.campaign, positions={})
        envelope = factory.envelope_sender(
            Outgoing(delivery.pk, "erin@alpha.test", "s", "", "", "<m@x>", {})
        )

    assert envelope == _verp(delivery)
    assert bounces.process_message(postfix_dsn(delivery, to=envelope)) == Result.BOUNCE


@pytest.mark.parametrize(
    ("status", "diagnostic", "kind", "suppressed"),
    [
        (
            "5.1.1",
            "550-5.1.1 The email account that you tried to reach does not exist.",
            "hard",
            True,
        ),
        (
            "5.2.2",
            "552-5.2.2 The email account that you tried to reach is over quota.",
            "soft",
            False,
        ),
        (
            "5.7.1",
            "550-5.7.1 [192.0.2.1] Our system has detected that this message is likely "
            "unsolicited mail.",
            "policy",
            False,
        ),
    ],
)
def test_a_gmail_dsn_is_matched_by_the_returned_message_id(
    world, delivery, status, diagnostic, kind, suppressed
):
    # given a DSN sent to the campaign's sender: no VERP, the message is returned whole
    raw = gmail_dsn(delivery, status=status, diagnostic=diagnostic)

    bounces.process_message(raw)

    (event,) = events(delivery)
    assert event.detail["kind"] == kind
    assert (suppression(world) is not None) is suppressed


def test_a_delay_notification_is_a_deferral(world, delivery):
    raw = postfix_dsn(
        delivery,
        action="delayed",
        status="4.4.1",
        diagnostic="connect to mx.alpha.test[192.0.2.10]:25: Connection timed out",
    )

    assert bounces.process_message(raw) == Result.DELAY

    (event,) = events(delivery)
    assert (event.type, event.detail["kind"]) == (Event.Type.DEFERRED, "soft")
    assert suppression(world) is None


GMAIL_RATE_LIMIT = (
    "smtp; 421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of\n"
    "    unsolicited mail originating from your IP address. To protect our users from\n"
    "    spam, mail sent from your IP address has been temporarily rate limited."
)


@pytest.mark.parametrize(
    ("status", "diagnostic", "suppressed"),
    [
        ("4.7.28", GMAIL_RATE_LIMIT, False),
        ("4.2.2", "smtp; 452-4.2.2 The email account that you tried to reach is over quota.", True),
    ],
)
def test_only_a_mailboxs_delays_over_80_hours_suppress(
    world, time_machine, status, diagnostic, suppressed
):
    # given three messages to erin, each delayed by her server, 40 hours apart
    start = timezone.now().replace(microsecond=0) - timedelta(hours=80)
    for n in range(3):
        when = start + timedelta(hours=40 * n)
        time_machine.move_to(when, tick=False)
        delivery = send(world, name=f"Issue {n}")

        # when the delay notifications come back to the bounce mailbox
        raw = postfix_dsn(
            delivery,
            action="delayed",
            status=status,
            diagnostic=diagnostic,
            date=format_datetime(when),
        )
        assert bounces.process_message(raw) == Result.DELAY

    # then Gmail's rate limit leaves her subscribed; a full mailbox suppresses her
    assert Event.objects.filter(type=Event.Type.DEFERRED).count() == 3
    assert (suppression(world) is not None) is suppressed
    assert Subscription.objects.filter(
        contact__email="erin@alpha.test", status=Subscription.Status.SUBSCRIBED
    ).exists()


def test_a_message_given_up_for_the_senders_reputation_is_a_policy_rejection(world, delivery):
    # when the sending server gives up after days of Gmail's rate limit
    raw = postfix_dsn(delivery, status="4.7.28", diagnostic=GMAIL_RATE_LIMIT)

    bounces.process_message(raw)

    # then it is shown as the sender's problem, and erin is not suppressed
    (event,) = events(delivery)
    assert (event.type, event.detail["kind"], event.detail["status"]) == (
        Event.Type.REJECTED,
        "policy",
        "4.7.28",
    )
    assert suppression(world) is None
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT


def test_a_qmail_failure_notice_is_read_from_its_text(world, delivery):
    raw = qmail_bounce(delivery, _sent_headers(delivery))

    assert bounces.process_message(raw) == Result.BOUNCE

    assert [e.detail["kind"] for e in events(delivery)] == ["hard"]
    assert suppression(world) is not None


def test_a_feedback_loop_report_is_a_complaint(world, delivery):
    raw = arf_complaint(delivery, mail_from=_verp(delivery))

    assert bounces.process_message(raw) == Result.COMPLAINT

    assert [e.type for e in events(delivery)] == [Event.Type.COMPLAINT]
    assert suppression(world).reason == Suppression.Reason.COMPLAINT


def test_the_same_report_twice_counts_once(world, delivery):
    raw = postfix_dsn(delivery)

    assert bounces.process_message(raw) == Result.BOUNCE
    assert bounces.process_message(raw) == Result.DUPLICATE

    assert len(events(delivery)) == 1


@pytest.mark.parametrize(
    "body",
    [
        # an auto-reply to the VERP address
        "Subject: Out of office\r\nFrom: erin@alpha.test\r\nTo: {verp}\r\n\r\nBack Monday.\r\n",
        # a positive notification
        "Subject: Delivered\r\nFrom: MAILER-DAEMON@mx.example.net\r\nTo: {verp}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
        'boundary="b"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n'
        "Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; erin@alpha.test\r\n"
        "Action: delivered\r\nStatus: 2.0.0\r\n\r\n--b--\r\n",
    ],
)
def test_mail_that_reports_nothing_is_ignored(world, delivery, body):
    raw = body.format(verp=_verp(delivery)).encode()

    assert bounces.process_message(raw) == Result.IGNORED
    assert events(delivery) == []


# -- what a forger cannot do ---------------------------------------------------------------------


def test_an_altered_verp_token_names_nothing(world, delivery):
    token = tokens.bounce_token(delivery.pk)
    forged = f"bounces+{token[:-1]}{'A' if token[-1] != 'A' else 'B'}@alpha.test"

    result = bounces.process_message(postfix_dsn(delivery, to=forged, returned="Subject: x"))

    assert result == Result.UNMATCHED
    assert suppression(world) is None


def _support_header(delivery: Delivery) -> str:
    campaign = delivery.campaign
    return f"X-Missive-Campaign: {campaign.account_id}-{campaign.pk}-{delivery.pk}"


def test_the_support_header_names_a_delivery_only_with_its_recipient(world, delivery):
    # given a bounce quoting only the unsigned support header (the Message-ID rewritten)
    other = send(world, name="Second")
    quoted = f"Message-ID: <rewritten@relay.example.net>\n{_support_header(delivery)}"
    raw = qmail_bounce(delivery, quoted)

    # then it counts for erin, to whom the failure is addressed
    assert bounces.process_message(raw) == Result.BOUNCE

    # but a forged one, blaming another address for erin's other message, names nothing
    forged = qmail_bounce(
        other, f"Message-ID: <rewritten@relay.example.net>\n{_support_header(other)}"
    )
    forged = forged.replace(b"<erin@alpha.test>:", b"<mallory@example.org>:")
    forged = forged.replace(b"(#5.1.1)", b"(#5.1.2)")
    assert bounces.process_message(forged) == Result.UNMATCHED


def test_a_complaint_needs_more_than_the_support_header(world, delivery):
    # An abuse report could suspend an account: the unsigned header is not enough.
    raw = (
        arf_complaint(delivery)
        .replace(b"Message-ID:", b"X-Original-Message-ID:")
        .replace(b"Return-Path:", b"X-Old-Return-Path:")
    )

    assert bounces.process_message(raw) == Result.UNMATCHED
    assert events(delivery) == []


# -- mailto: unsubscribes -----------------------------------------------------------------------


def test_a_mail_to_the_unsubscribe_address_unsubscribes(world, delivery):
    token = tokens.recipient_token(delivery.pk)
    raw = (
        f"From: Erin <erin@alpha.test>\r\nTo: unsubscribe@alpha.test\r\n"
        f"Subject: unsubscribe {token}\r\nDate: {DATE}\r\n\r\n"
    ).encode()

    assert bounces.process_message(raw) == Result.UNSUBSCRIBE

    subscription = Subscription.objects.get(contact=delivery.contact)
    assert subscription.status == Subscription.Status.UNSUBSCRIBED
    (event,) = events(delivery, Event.Type.UNSUBSCRIBE)
    assert event.detail["how"] == "mailto"


def test_the_list_unsubscribe_header_carries_what_the_mailbox_reads(world, delivery):
    # The mailto: of the sent message, as a mail app turns it into a mail.
    sent = next(iter(mail.outbox))
    header = sent.extra_headers["List-Unsubscribe"]
    subject = header.split("subject=", 1)[1].rstrip(">").replace("%20", " ")
    raw = f"From: erin@alpha.test\r\nSubject: {subject}\r\n\r\n".encode()

    assert bounces.process_message(raw) == Result.UNSUBSCRIBE


def test_an_altered_unsubscribe_token_does_nothing(world, delivery):
    token = tokens.recipient_token(delivery.pk)
    raw = f"Subject: unsubscribe {token[:-2]}xx\r\n\r\n".encode()

    assert bounces.process_message(raw) in (Result.UNMATCHED, Result.IGNORED)
    subscription = Subscription.objects.get(contact=delivery.contact)
    assert subscription.status == Subscription.Status.SUBSCRIBED


# -- the endpoint --------------------------------------------------------------------------------


@override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET})
def test_the_endpoint_takes_a_report_from_the_mail_server(world, delivery, client):
    response = client.post(
        reverse("bounce_report"),
        data=postfix_dsn(delivery),
        content_type="message/rfc822",
        HTTP_AUTHORIZATION=basic_auth(),
    )

    assert response.status_code == 200
    assert response.content == b"bounce"
    assert suppression(world) is not None


@pytest.mark.parametrize(
    ("anymail", "auth"),
    [
        ({"WEBHOOK_SECRET": SECRET}, None),
        ({"WEBHOOK_SECRET": SECRET}, "missive:guessed"),
        ({}, SECRET),  # nothing configured: nothing is accepted
    ],
)
def test_the_endpoint_refuses_without_the_secret(world, delivery, client, anymail, auth):
    extra = {"HTTP_AUTHORIZATION": basic_auth(auth)} if auth else {}
    with override_settings(ANYMAIL=anymail):
        response = client.post(
            reverse("bounce_report"),
            data=postfix_dsn(delivery),
            content_type="message/rfc822",
            **extra,
        )

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert events(delivery) == []
    assert suppression(world) is None


def test_the_endpoint_answers_only_posts(client):
    assert client.get(reverse("bounce_report")).status_code == 405


# -- reading a mailbox ---------------------------------------------------------------------------


def _unsubscribe_mail(delivery: Delivery) -> bytes:
    return f"Subject: unsubscribe {tokens.recipient_token(delivery.pk)}\r\n\r\n".encode()


OUT_OF_OFFICE = b"From: someone@example.org\r\nSubject: Out of office\r\n\r\nAway.\r\n"


def test_it_reads_an_imap_mailbox_and_deletes_what_it_processed(world, delivery):
    # given a bounce, an unsubscribe and a person's reply waiting in the mailbox
    store = Store()
    store.add(postfix_dsn(delivery))
    store.add(_unsubscribe_mail(delivery))
    store.add(OUT_OF_OFFICE)

    with imap_server(store) as port:
        call_command(
            "fetch_bounces",
            mailbox=f"imap://{USER.replace('@', '%40')}:{PASSWORD}@127.0.0.1:{port}/INBOX",
        )

    # then the bounce and the unsubscribe were acted on and deleted; the reply is kept, seen
    assert store.logins == [(USER, PASSWORD)]
    assert [m.raw for m in store.messages] == [OUT_OF_OFFICE]
    assert store.messages[0].flags == {"\\Seen"}
    assert suppression(world).reason == Suppression.Reason.HARD_BOUNCE
    assert Subscription.objects.get(contact=delivery.contact).status == "unsubscribed"


def test_it_reads_a_pop3_mailbox(world, delivery):
    store = Store()
    store.add(postfix_dsn(delivery))
    store.add(OUT_OF_OFFICE)

    with pop3_server(store) as port:
        counts = bounces.fetch_mailbox(f"pop3://{USER}:{PASSWORD}@127.0.0.1:{port}")

    assert counts == {"bounce": 1, "ignored": 1}
    assert store.messages == []  # POP3 keeps no flags: what was read is gone
    assert suppression(world) is not None


def test_a_message_that_fails_stays_for_the_next_run(world, delivery, monkeypatch):
    store = Store()
    store.add(postfix_dsn(delivery))
    monkeypatch.setattr(bounces, "process_message", lambda raw: 1 / 0)

    with imap_server(store) as port:
        counts = bounces.fetch_mailbox(f"imap://{USER}:{PASSWORD}@127.0.0.1:{port}")

    assert counts == {"error": 1}
    assert len(store.messages) == 1
    assert store.messages[0].flags == set()


def test_the_beat_task_reads_the_configured_mailbox(world, delivery):
    store = Store()
    store.add(postfix_dsn(delivery))

    with imap_server(store) as port:
        url = f"imap://{USER}:{PASSWORD}@127.0.0.1:{port}"
        with override_settings(MISSIVE_BOUNCE_MAILBOX=url):
            assert fetch_bounces_task() == {"bounce": 1}

    assert store.messages == []


@override_settings(MISSIVE_BOUNCE_MAILBOX="")
def test_the_beat_task_does_nothing_without_a_mailbox(db):
    assert fetch_bounces_task() == {}


def test_the_command_needs_a_mailbox(db):
    with (
        override_settings(MISSIVE_BOUNCE_MAILBOX=""),
        pytest.raises(CommandError, match="No mailbox"),
    ):
        call_command("fetch_bounces")
    with pytest.raises(CommandError, match="imaps://"):
        call_command("fetch_bounces", mailbox="https://example.org/")


def test_it_reads_mailbox_addresses():
    imaps = bounces.parse_mailbox_url("imaps://bounces%40alpha.test:p%3Ass@imap.alpha.test/Bounces")
    pop3s = bounces.parse_mailbox_url("pop3s://u:p@pop.alpha.test")
    plain = bounces.parse_mailbox_url("imap://u:p@localhost:1143?starttls=true")

    assert (imaps.host, imaps.port, imaps.user, imaps.password, imaps.folder) == (
        "imap.alpha.test",
        993,
        "bounces@alpha.test",
        "p:ss",
        "Bounces",
    )
    assert (pop3s.is_imap, pop3s.port, pop3s.is_tls) == (False, 995, True)
    assert (plain.port, plain.starttls, plain.is_tls, plain.folder) == (1143, True, False, "INBOX")
