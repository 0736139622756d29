"""The providers' webhooks, replayed with the sample payloads of their documentation (as
django-anymail's own tests use them): the right events and suppressions, authentication
refused with a 4xx that stores nothing, and a replayed event stored once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Delivery
from contacts.models import Subscription, Suppression
from events.models import Event
from tests.stats.feedback_helpers import SECRET, basic_auth, events, send, suppression, with_esp_id

pytestmark = pytest.mark.filterwarnings(
    "ignore::anymail.exceptions.AnymailNotSupportedWarning",  # SendGrid, see stats/apps.py
    "ignore::anymail.exceptions.AnymailInsecureWebhookWarning",
)

MAILGUN_KEY = "TEST_WEBHOOK_SIGNING_KEY"
_POSTAL_PRIVATE = rsa.generate_private_key(public_exponent=65537, key_size=2048)
POSTAL_KEY = base64.b64encode(
    _POSTAL_PRIVATE.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
CONFIGURED = {
    "WEBHOOK_SECRET": SECRET,
    "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
    "POSTAL_WEBHOOK_KEY": POSTAL_KEY,
}


@pytest.fixture(autouse=True)
def _amazon_ses_without_boto3(monkeypatch):
    """anymail's Amazon SES webhook reads its boto3 settings when it starts, to confirm
    SNS subscriptions by itself; boto3 comes with django-anymail[amazon-ses], which an
    installation sending through SES has, and this test environment has not. Notifications
    need none of it."""
    monkeypatch.setattr(
        "anymail.webhooks.amazon_ses._get_anymail_boto3_params", lambda **kwargs: ({}, {})
    )


# -- sample payloads -----------------------------------------------------------------------------

POSTMARK_HARD_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 901542550,
    "Type": "HardBounce",
    "TypeCode": 1,
    "ServerID": 23,
    "Name": "Hard bounce",
    "MessageID": "2706ee8a-737c-4285-b032-ccd317af53ed",
    "Description": "The server was unable to deliver your message (ex: unknown user, mailbox "
    "not found).",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    "Email": "bounce@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2016-04-27T16:28:50.3963933-04:00",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "Postmark event test",
    "Content": "...",
}
POSTMARK_SPAM_COMPLAINT = {
    "RecordType": "SpamComplaint",
    "ID": 901542551,
    "Type": "SpamComplaint",
    "TypeCode": 512,
    "Name": "Spam complaint",
    "Tag": "Test",
    "MessageID": "2706ee8a-737c-4285-b032-ccd317af53ed",
    "ServerID": 1234,
    "Description": "",
    "Details": "Test spam complaint details",
    "Email": "spam@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2016-04-27T16:28:50.3963933-04:00",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": False,
    "Subject": "Postmark event test",
}
MAILJET_HARD_BOUNCE = [
    {
        "event": "bounce",
        "time": 1498093527,
        "MessageID": 12345678901234567,
        "email": "invalid@invalid",
        "mj_campaign_id": 1234567890,
        "mj_contact_id": 9876543210,
        "customcampaign": "",
        "blocked": True,
        "hard_bounce": True,
        "error_related_to": "domain",
        "error": "invalid domain",
    }
]
MAILJET_GREYLISTED = [
    {
        "event": "bounce",
        "time": 1498093527,
        "MessageID": 12345678901234567,
        "email": "protected@example.com",
        "mj_campaign_id": 1234567890,
        "mj_contact_id": 9876543210,
        "customcampaign": "",
        "blocked": True,
        "hard_bounce": False,
        "error_related_to": "domain",
        "error": "greylisted",
    }
]
MAILJET_SPAM = [
    {
        "event": "spam",
        "time": 1498093527,
        "MessageID": 12345678901234567,
        "email": "spam@example.com",
        "mj_campaign_id": 1234567890,
        "mj_contact_id": 9876543210,
        "customcampaign": "",
        "source": "greylisted",
    }
]
MAILJET_SENT = [
    {
        "event": "sent",
        "time": 1498093527,
        "MessageID": 12345678901234567,
        "email": "recipient@example.com",
        "mj_campaign_id": 1234567890,
        "mj_contact_id": 9876543210,
        "customcampaign": "tag1",
        "mj_message_id": "12345678901234567",
        "smtp_reply": "sent (250 2.0.0 OK 1498093527 a67bc12345def.22 - gsmtp)",
        "Payload": '{"meta1": "simple string", "meta2": 2}',
    }
]
BREVO_HARD_BOUNCE = {
    "event": "hard_bounce",
    "email": "not-a-user@example.com",
    "ts_epoch": 1520363423000,
    "message-id": "<201803011158.9876543210@smtp-relay.mailin.fr>",
    "reason": " RecipientError: 550 5.5.0 Requested action not taken: mailbox unavailable.",
    "tag": "header-tag",
}
BREVO_SOFT_BOUNCE = {
    "event": "soft_bounce",
    "email": "recipient@no-mx.example.com",
    "ts_epoch": 1520363423000,
    "message-id": "<201803011158.9876543210@smtp-relay.mailin.fr>",
    "reason": "undefined Unable to find MX of domain no-mx.example.com",
}
BREVO_BLOCKED = {
    "event": "blocked",
    "email": "recipient@example.com",
    "ts_epoch": 1520363423000,
    "message-id": "<201803011158.9876543210@smtp-relay.mailin.fr>",
    "reason": "blocked : due to blacklist user",
}
SES_BOUNCE = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "reportingMTA": "dns; email.example.com",
        "bouncedRecipients": [
            {
                "emailAddress": "jane@example.com",
                "status": "5.1.1",
                "action": "failed",
                "diagnosticCode": "smtp; 550 5.1.1 <jane@example.com>... User unknown",
            }
        ],
        "bounceSubType": "General",
        "timestamp": "2016-01-27T14:59:44.101Z",
        "feedbackId": "00000138111222aa-44455566-cccc-cccc-cccc-ddddaaaa068a-000000",
        "remoteMtaIp": "127.0.2.0",
    },
    "mail": {
        "timestamp": "2016-01-27T14:59:38.237Z",
        "source": "john@example.com",
        "sourceArn": "arn:aws:ses:us-west-2:888888888888:identity/example.com",
        "sourceIp": "127.0.3.0",
        "sendingAccountId": "123456789012",
        "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        "destination": ["jane@example.com", "mary@example.com", "richard@example.com"],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": '"John Doe" <john@example.com>'},
            {
                "name": "To",
                "value": '"Jane Doe" <jane@example.com>, "Mary Doe" <mary@example.com>, '
                '"Richard Doe" <richard@example.com>',
            },
            {"name": "Message-ID", "value": "custom-message-ID"},
            {"name": "Subject", "value": "Hello"},
        ],
    },
}
SES_REJECT = {
    "eventType": "Reject",
    "mail": {
        "timestamp": "2016-10-14T17:38:15.211Z",
        "messageId": "7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
        "destination": ["recipient@example.com"],
    },
    "reject": {"reason": "Bad content"},
}
MAILGUN_FAILED_PERMANENT = {
    "event-data": {
        "event": "failed",
        "severity": "permanent",
        "reason": "bounce",
        "recipient": "invalid@example.com",
        "timestamp": 1534110422.389832,
        "log-level": "error",
        "message": {
            "headers": {
                "to": "invalid@example.com",
                "message-id": "20180812214658.1.0DF563D0B3597700@example.org",
                "from": "Test Sender ",
            },
        },
        "delivery-status": {
            "tls": True,
            "mx-host": "aspmx.l.example.org",
            "attempt-no": 1,
            "description": "",
            "session-seconds": 2.952177047729492,
            "utf8": True,
            "code": 550,
            "message": "5.1.1 The email account that you tried to reach does not exist. "
            "Please try\n5.1.1 double-checking the recipient's email address for typos",
            "certificate-verified": True,
        },
    },
}
SENDGRID_BOUNCE = [
    {
        "ip": "167.89.17.173",
        "status": "5.1.1",
        "smtp-id": "<wrfRRvF7Q0GgwUo2CvDmEA@ismtpd0006p1sjc2.sendgrid.net>",
        "sg_event_id": "lC0Rc-FuQmKbnxCWxX1jRQ",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        "sg_message_id": "Lli-03HcQ5-JLybO9fXsJg.filter0077p1las1.21536.5717FC482.0",
        "tls": 1,
        "event": "bounce",
        "email": "noreply@example.com",
        "timestamp": 1461095250,
        "anymail_id": "de212213-bb66-4302-8f3f-20acdb7a104e",
        "type": "bounce",
    }
]
SENDGRID_DEFERRED = [
    {
        "response": "Email was deferred due to the following reason(s): [IPs were throttled by "
        "recipient server]",
        "smtp-id": "<wrfRRvF7Q0GgwUo2CvDmEA@ismtpd0006p1sjc2.sendgrid.net>",
        "sg_event_id": "b_syL5UiTvWC_Ky5L6Bs5Q",
        "sg_message_id": "u9Gvi3mzT6iC2poAb58_qQ.filter0465p1mdw1.8054.5718271B40.0",
        "event": "deferred",
        "email": "recipient@example.com",
        "attempt": "1",
        "timestamp": 1461200990,
        "anymail_id": "de212213-bb66-4302-8f3f-20acdb7a104e",
    }
]
SENDGRID_DROPPED_UNSUBSCRIBED = [
    {
        "email": "unsubscribe@example.com",
        "anymail_id": "de212213-bb66-4302-8f3f-20acdb7a104e",
        "timestamp": 1461095250,
        "smtp-id": "<wrfRRvF7Q0GgwUo2CvDmEA@ismtpd0006p1sjc2.sendgrid.net>",
        "sg_event_id": "oxy9OLwMTAy5EsuZn1qhIg",
        "sg_message_id": "filter0199p1las1.4745.5717FB6F5.0",
        "reason": "Unsubscribed Address",
        "event": "dropped",
    }
]
POSTAL_HARD_FAIL = {
    "event": "MessageDeliveryFailed",
    "timestamp": 1606753101.084981,
    "payload": {
        "message": {
            "id": 1571,
            "token": "MzWWQPubXXWz",
            "direction": "outgoing",
            "message_id": "cfb29da8ed1e4ed5a6c8a0f24d7a9ef3@rp.postal.example.com",
            "to": "failed@example.com",
            "from": "test@example.com",
            "subject": "Message delivery failed...",
            "timestamp": 1606753318.072171,
            "spam_status": "NotChecked",
            "tag": None,
        },
        "status": "HardFail",
        "details": "Could not deliver",
        "output": "server output",
        "sent_with_ssl": None,
        "timestamp": 1606753318.7010343,
        "time": None,
    },
    "uuid": "5fec5077-dae7-4989-94d5-e1963f3e9181",
}

# Postal's notice that a bounce came back: it says nothing of what the bounce says.
POSTAL_BOUNCED = {
    "event": "MessageBounced",
    "timestamp": 1606753101.084981,
    "payload": {
        "original_message": {
            "id": 12345,
            "token": "abcdef123",
            "direction": "outgoing",
            "message_id": "5817a64332f44_4ec93ff59e79d154565eb@app34.mail",
            "to": "test@example.com",
            "from": "sales@awesomeapp.com",
            "subject": "Welcome to AwesomeApp",
            "timestamp": 1477945177.12994,
            "spam_status": "NotSpam",
            "tag": "welcome",
        },
        "bounce": {
            "id": 12347,
            "token": "abcdef124",
            "direction": "incoming",
            "message_id": "5817a64332f44_4ec93ff59e79d154565eb@someserver.com",
            "to": "abcde@psrp.postal.yourdomain.com",
            "from": "postmaster@someserver.com",
            "subject": "Delivery Error",
            "timestamp": 1477945179.12994,
            "spam_status": "NotSpam",
            "tag": None,
        },
    },
    "uuid": "0fcd5d23-8f5c-4b9a-b5ab-fd7b2d8b8e41",
}


# -- posting them ----------------------------------------------------------------------------------


def _url(provider: str) -> str:
    return reverse(f"anymail:{provider}_tracking_webhook")


def _post(client, provider, payload, *, auth=SECRET, headers=None):
    body = json.dumps(payload)
    extra = dict(headers or {})
    if auth:
        extra["HTTP_AUTHORIZATION"] = basic_auth(auth)
    content_type = "application/json"
    if provider == "amazon_ses":
        # SNS wraps the SES event, and posts JSON as text/plain.
        sns = {
            "Type": "Notification",
            "MessageId": "19ba9823-d7f2-53c1-860e-cb10e0d13dfc",
            "TopicArn": "arn:aws:sns:us-east-1:1234567890:SES_Events",
            "Message": json.dumps(payload) + "\n",
            "Timestamp": "2018-03-26T17:58:59.675Z",
        }
        body = json.dumps(sns)
        content_type = "text/plain; charset=UTF-8"
        extra.update(
            HTTP_X_AMZ_SNS_MESSAGE_ID=sns["MessageId"], HTTP_X_AMZ_SNS_MESSAGE_TYPE=sns["Type"]
        )
    if provider == "mailgun":
        body = json.dumps(_mailgun_signed(payload, MAILGUN_KEY))
    if provider == "postal":
        signature = _POSTAL_PRIVATE.sign(body.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - Postal's scheme
        extra.setdefault("HTTP_X_POSTAL_SIGNATURE", base64.b64encode(signature).decode())
    return client.post(_url(provider), data=body, content_type=content_type, **extra)


def _mailgun_signed(payload: dict, key: str) -> dict:
    signed = json.loads(json.dumps(payload))
    token = "651869375b9df3c98fc15c4889b102119add1235c38fc92824"
    timestamp = str(int(signed["event-data"]["timestamp"]))
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    signed["signature"] = {"token": token, "timestamp": timestamp, "signature": signature}
    return signed


# (provider URL, payload, the message id the provider gave at sending, event, kind, suppression)
HARD_BOUNCES = [
    ("postmark", POSTMARK_HARD_BOUNCE, "2706ee8a-737c-4285-b032-ccd317af53ed"),
    ("mailjet", MAILJET_HARD_BOUNCE, "12345678901234567"),
    ("brevo", BREVO_HARD_BOUNCE, "<201803011158.9876543210@smtp-relay.mailin.fr>"),
    ("amazon_ses", SES_BOUNCE, "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000"),
    ("mailgun", MAILGUN_FAILED_PERMANENT, "<20180812214658.1.0DF563D0B3597700@example.org>"),
    ("sendgrid", SENDGRID_BOUNCE, "de212213-bb66-4302-8f3f-20acdb7a104e"),
    ("postal", POSTAL_HARD_FAIL, "1571"),
]


@pytest.mark.parametrize(("provider", "payload", "esp_id"), HARD_BOUNCES)
@override_settings(ANYMAIL=CONFIGURED)
def test_a_providers_hard_bounce_suppresses_the_address(world, client, provider, payload, esp_id):
    # given erin's message, sent through the provider
    delivery = with_esp_id(send(world), esp_id)

    # when the provider reports that it bounced for good
    response = _post(client, provider, payload)

    # then a hard bounce is recorded, the address suppressed and the delivery marked
    assert response.status_code == 200, response.content
    (event,) = events(delivery)
    assert event.type == Event.Type.BOUNCE
    assert event.detail["kind"] == "hard"
    assert event.dedup_key.startswith(event.detail["source"] + ":")
    assert suppression(world).reason == Suppression.Reason.HARD_BOUNCE
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.BOUNCED


def test_it_keeps_the_providers_own_timestamp(world, client):
    delivery = with_esp_id(send(world), "2706ee8a-737c-4285-b032-ccd317af53ed")

    with override_settings(ANYMAIL=CONFIGURED):
        _post(client, "postmark", POSTMARK_HARD_BOUNCE)

    (event,) = events(delivery)
    assert event.occurred_at.isoformat() == "2016-04-27T20:28:50.396393+00:00"
    assert event.detail["status"] == "5.1.1"
    assert event.dedup_key == "Postmark:901542550"


@pytest.mark.parametrize(
    ("provider", "payload", "esp_id"),
    [
        ("postmark", POSTMARK_SPAM_COMPLAINT, "2706ee8a-737c-4285-b032-ccd317af53ed"),
        ("mailjet", MAILJET_SPAM, "12345678901234567"),
    ],
)
@override_settings(ANYMAIL=CONFIGURED)
def test_a_providers_complaint_suppresses_the_address(world, client, provider, payload, esp_id):
    delivery = with_esp_id(send(world), esp_id)

    response = _post(client, provider, payload)

    assert response.status_code == 200
    (event,) = events(delivery)
    assert event.type == Event.Type.COMPLAINT
    assert suppression(world).reason == Suppression.Reason.COMPLAINT
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.COMPLAINED


@pytest.mark.parametrize(
    ("provider", "payload", "esp_id", "event_type", "kind"),
    [
        # Brevo's soft bounce, which anymail reports as "bounced": no MX for the domain
        (
            "brevo",
            BREVO_SOFT_BOUNCE,
            "<201803011158.9876543210@smtp-relay.mailin.fr>",
            "bounce",
            "soft",
        ),
        # Postal heard a bounce came back, and says nothing of what it says
        ("postal", POSTAL_BOUNCED, "12345", "bounce", "soft"),
        # Greylisting and throttling put the sender off: nothing about the address
        ("mailjet", MAILJET_GREYLISTED, "12345678901234567", "deferred", "deferred"),
        (
            "sendgrid",
            SENDGRID_DEFERRED,
            "de212213-bb66-4302-8f3f-20acdb7a104e",
            "deferred",
            "deferred",
        ),
    ],
)
@override_settings(ANYMAIL=CONFIGURED)
def test_a_soft_bounce_does_not_suppress_at_once(
    world, client, provider, payload, esp_id, event_type, kind
):
    delivery = with_esp_id(send(world), esp_id)

    response = _post(client, provider, payload)

    assert response.status_code == 200, response.content
    (event,) = events(delivery)
    assert (event.type, event.detail["kind"]) == (event_type, kind)
    assert suppression(world) is None


@override_settings(ANYMAIL=CONFIGURED)
def test_a_postal_bounce_without_a_status_leaves_the_address_subscribed(world, client):
    # given erin's message, sent through Postal
    delivery = with_esp_id(send(world), "12345")

    # when Postal reports that a bounce came back, without saying what it said
    response = _post(client, "postal", POSTAL_BOUNCED)

    # then it is no hard bounce: erin stays subscribed and unsuppressed
    assert response.status_code == 200
    (event,) = events(delivery)
    assert (event.type, event.detail["kind"]) == (Event.Type.BOUNCE, "soft")
    assert suppression(world) is None
    subscription = Subscription.objects.get(contact=delivery.contact)
    assert subscription.status == Subscription.Status.SUBSCRIBED


def _sendgrid_deferral(esp_id: str, when: datetime, response: str) -> list[dict]:
    deferral = json.loads(json.dumps(SENDGRID_DEFERRED))
    deferral[0].update(
        anymail_id=esp_id,
        sg_event_id=f"deferral-{esp_id}",
        timestamp=int(when.timestamp()),
        response=response,
    )
    return deferral


@pytest.mark.parametrize(
    ("response", "suppressed"),
    [
        (
            "421-4.7.28 [192.0.2.1] Our system has detected an unusual rate of unsolicited "
            "mail originating from your IP address. To protect our users from spam, mail "
            "sent from your IP address has been temporarily rate limited.",
            False,
        ),
        ("452-4.2.2 The email account that you tried to reach is over quota.", True),
    ],
)
@override_settings(ANYMAIL=CONFIGURED)
def test_only_a_mailboxs_deferrals_over_80_hours_suppress(world, client, response, suppressed):
    # given three messages to erin, each deferred by her server, 40 hours apart
    start = timezone.now() - timedelta(hours=80)
    for n in range(3):
        esp_id = f"message-{n}"
        with_esp_id(send(world, name=f"Issue {n}"), esp_id)

        # when SendGrid reports each deferral, with what the server answered
        reply = _post(
            client,
            "sendgrid",
            _sendgrid_deferral(esp_id, start + timedelta(hours=40 * n), response),
        )
        assert reply.status_code == 200

    # then Gmail's rate limit leaves her be; a full mailbox three times suppresses her
    assert Event.objects.filter(type=Event.Type.DEFERRED).count() == 3
    assert (suppression(world) is not None) is suppressed


@pytest.mark.parametrize(
    ("provider", "payload", "esp_id"),
    [
        ("amazon_ses", SES_REJECT, "7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"),
        ("brevo", BREVO_BLOCKED, "<201803011158.9876543210@smtp-relay.mailin.fr>"),
    ],
)
@override_settings(ANYMAIL=CONFIGURED)
def test_a_policy_rejection_is_recorded_without_suppressing(
    world, client, provider, payload, esp_id
):
    delivery = with_esp_id(send(world), esp_id)

    _post(client, provider, payload)

    (event,) = events(delivery)
    assert (event.type, event.detail["kind"]) == ("rejected", "policy")
    assert suppression(world) is None


@override_settings(ANYMAIL=CONFIGURED)
def test_a_policy_code_wins_over_the_providers_word(world, client):
    # Mailgun calls it a bounce, the server's 5.7.1 says the sender was refused.
    delivery = with_esp_id(send(world), "<20180812214658.1.0DF563D0B3597700@example.org>")
    payload = json.loads(json.dumps(MAILGUN_FAILED_PERMANENT))
    payload["event-data"]["delivery-status"]["message"] = (
        "5.7.1 [192.0.2.1] Our system has detected an unusual rate of unsolicited mail"
    )

    _post(client, "mailgun", payload)

    (event,) = events(delivery)
    assert event.detail["kind"] == "policy"
    assert suppression(world) is None


@override_settings(ANYMAIL=CONFIGURED)
def test_a_providers_delivery_and_unsubscribe_are_recorded(world, client):
    delivery = with_esp_id(send(world), "12345678901234567")

    _post(client, "mailjet", MAILJET_SENT)

    assert [e.type for e in events(delivery)] == [Event.Type.DELIVERED]
    with_esp_id(delivery, "de212213-bb66-4302-8f3f-20acdb7a104e")
    _post(client, "sendgrid", SENDGRID_DROPPED_UNSUBSCRIBED)
    subscription = Subscription.objects.get(contact=delivery.contact)
    assert subscription.status == Subscription.Status.UNSUBSCRIBED


@pytest.mark.parametrize(
    ("provider", "payload", "esp_id"),
    [
        ("sendgrid", SENDGRID_BOUNCE, "de212213-bb66-4302-8f3f-20acdb7a104e"),
        # Mailjet gives no event id: the payload itself is the key
        ("mailjet", MAILJET_GREYLISTED, "12345678901234567"),
    ],
)
@override_settings(ANYMAIL=CONFIGURED)
def test_a_replayed_event_is_stored_once(world, client, provider, payload, esp_id):
    delivery = with_esp_id(send(world), esp_id)

    first = _post(client, provider, payload)
    second = _post(client, provider, payload)

    assert (first.status_code, second.status_code) == (200, 200)
    assert len(events(delivery)) == 1


@override_settings(ANYMAIL=CONFIGURED)
def test_an_event_of_an_unknown_message_is_ignored(world, client):
    delivery = send(world)

    response = _post(client, "postmark", POSTMARK_HARD_BOUNCE)

    assert response.status_code == 200
    assert events(delivery) == []
    assert suppression(world) is None


@override_settings(ANYMAIL=CONFIGURED)
def test_it_finds_the_delivery_by_its_support_header(world, client):
    # Amazon SES echoes the message's headers: X-Missive-Campaign names the delivery even
    # before the sender stored the provider's id.
    delivery = send(world)
    payload = json.loads(json.dumps(SES_BOUNCE))
    campaign = delivery.campaign
    payload["mail"]["headers"].append(
        {
            "name": "X-Missive-Campaign",
            "value": f"{campaign.account_id}-{campaign.pk}-{delivery.pk}",
        }
    )

    _post(client, "amazon_ses", payload)

    assert [e.detail["kind"] for e in events(delivery)] == ["hard"]


# -- authentication --------------------------------------------------------------------------------

FORGERIES = [
    ("postmark", POSTMARK_HARD_BOUNCE, "2706ee8a-737c-4285-b032-ccd317af53ed"),
    ("mailjet", MAILJET_HARD_BOUNCE, "12345678901234567"),
    ("brevo", BREVO_HARD_BOUNCE, "<201803011158.9876543210@smtp-relay.mailin.fr>"),
    ("sendgrid", SENDGRID_BOUNCE, "de212213-bb66-4302-8f3f-20acdb7a104e"),
    ("amazon_ses", SES_BOUNCE, "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000"),
    ("mailgun", MAILGUN_FAILED_PERMANENT, "<20180812214658.1.0DF563D0B3597700@example.org>"),
    ("postal", POSTAL_HARD_FAIL, "1571"),
]


@pytest.mark.parametrize(("provider", "payload", "esp_id"), FORGERIES)
@override_settings(ANYMAIL=CONFIGURED)
def test_a_wrong_secret_gets_a_4xx_and_stores_nothing(world, client, provider, payload, esp_id):
    delivery = with_esp_id(send(world), esp_id)

    response = _post(client, provider, payload, auth="missive:guessed")

    assert 400 <= response.status_code < 500
    assert events(delivery) == []
    assert suppression(world) is None


@pytest.mark.parametrize(("provider", "payload", "esp_id"), FORGERIES)
@override_settings(ANYMAIL=CONFIGURED)
def test_no_credentials_get_a_4xx_and_store_nothing(world, client, provider, payload, esp_id):
    delivery = with_esp_id(send(world), esp_id)

    response = _post(client, provider, payload, auth=None)

    # Amazon SNS sends its credentials only after a 401 that asks for them.
    assert response.status_code == (401 if provider == "amazon_ses" else 400)
    assert events(delivery) == []


@pytest.mark.parametrize(
    ("provider", "payload", "headers"),
    [
        ("mailgun", MAILGUN_FAILED_PERMANENT, {}),
        (
            "postal",
            POSTAL_HARD_FAIL,
            {"HTTP_X_POSTAL_SIGNATURE": base64.b64encode(b"x" * 256).decode()},
        ),
    ],
)
@override_settings(ANYMAIL=CONFIGURED)
def test_a_bad_signature_gets_a_400_and_stores_nothing(world, client, provider, payload, headers):
    # given the right shared secret, but a payload the provider did not sign
    delivery = with_esp_id(send(world), "1571" if provider == "postal" else "<x@example.org>")
    if provider == "mailgun":
        body = _mailgun_signed(payload, "not the signing key")
        response = client.post(
            _url(provider),
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=basic_auth(),
        )
    else:
        response = _post(client, provider, payload, headers=headers)

    assert response.status_code == 400
    assert events(delivery) == []


@pytest.mark.parametrize("provider", ["postmark", "mailjet", "sendgrid", "mailgun", "postal"])
@override_settings(ANYMAIL={})
def test_an_unconfigured_webhook_refuses_everything(world, client, provider):
    # anymail alone would accept unauthenticated posts when no secret is set.
    delivery = with_esp_id(send(world), "2706ee8a-737c-4285-b032-ccd317af53ed")

    response = client.post(
        _url(provider), data=json.dumps(POSTMARK_HARD_BOUNCE), content_type="application/json"
    )

    assert response.status_code == 403
    assert events(delivery) == []


MAILJET_PROXY_OPEN = [
    {
        "event": "open",
        "time": 1498093527,
        "MessageID": 12345678901234567,
        "email": "recipient@example.com",
        "mj_campaign_id": 1234567890,
        "mj_contact_id": 9876543210,
        "customcampaign": "",
        "ip": "192.168.100.100",
        "geo": "US",
        "agent": "Mozilla/5.0 (via ggpht.com GoogleImageProxy)",
        "Payload": "",
    }
]


@override_settings(ANYMAIL=CONFIGURED)
def test_a_providers_open_counts_only_where_missive_does_not_track(world, client):
    # given a message whose opens Missive tracks with its own pixel
    delivery = with_esp_id(send(world), "12345678901234567")

    _post(client, "mailjet", MAILJET_PROXY_OPEN)

    # then the provider's open is not counted a second time
    assert events(delivery, Event.Type.OPEN) == []

    # but for a campaign without Missive's pixel, it is: Gmail's proxy fetched the images
    # when erin opened the message, an hour after it was sent, so it is her open
    delivery.campaign.track_opens = False
    delivery.campaign.save(update_fields=["track_opens"])
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now() - timedelta(hours=1))
    later = json.loads(json.dumps(MAILJET_PROXY_OPEN))
    later[0]["time"] = int(timezone.now().timestamp())
    _post(client, "mailjet", later)
    (event,) = events(delivery, Event.Type.OPEN)
    assert event.machine is False
    assert event.detail == {"source": "Mailjet"}
    delivery.refresh_from_db()
    assert delivery.first_opened_at is not None


@override_settings(ANYMAIL=CONFIGURED)
def test_a_providers_prefetch_open_is_a_machines_and_says_why(world, client):
    # given a campaign without Missive's pixel, sent through Mailjet
    delivery = with_esp_id(send(world), "12345678901234567")
    delivery.campaign.track_opens = False
    delivery.campaign.save(update_fields=["track_opens"])
    prefetch = json.loads(json.dumps(MAILJET_PROXY_OPEN))
    prefetch[0]["agent"] = "Mozilla/5.0"  # Apple Mail Privacy Protection

    _post(client, "mailjet", prefetch)

    (event,) = events(delivery, Event.Type.OPEN)
    assert event.machine is True
    assert event.detail == {"source": "Mailjet", "machine_reason": "apple_mpp"}
    delivery.refresh_from_db()
    assert delivery.first_opened_at is None  # a machine's open is no one's first open
