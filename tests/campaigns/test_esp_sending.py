"""Campaigns sent through each provider Missive names (Mailjet, Brevo, Amazon SES,
Postmark, Mailgun, SendGrid, Postal), against a fake of its HTTP API on loopback: what
the provider is asked to send, how its answer is read, and what its refusals do."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from django.urls import reverse

from campaigns import sending, services, tokens
from campaigns.models import Campaign, Delivery
from campaigns.states import State
from contacts import services as contact_services
from events.models import Event
from tests.campaigns.fake_esps import PROVIDERS, SENDER_DOMAIN, FakeEsp

D = Delivery.Status


@pytest.fixture
def fake_esp(request, settings) -> Iterator[FakeEsp]:
    """The fake of the provider named by the test's parameter, given to account A as its
    sending backend ("esp:<provider>"), with anymail's settings pointing at the fake."""
    provider = PROVIDERS[request.param]
    with FakeEsp(provider) as fake:
        settings.MISSIVE_SENDING_BACKENDS = {"provider": f"esp:{provider.name}"}
        settings.ANYMAIL = fake.settings()
        yield fake


@pytest.fixture
def campaign(world) -> Campaign:
    """Account A, on the "provider" backend, and a campaign to its list: Erin and Ann."""
    account = world.account_a
    account.sending_backend = "provider"
    account.save()
    newsletter = world.extras["list"]
    contact_services.contact_create(
        account=account,
        actor=world.alice,
        email="ann@example.net",
        first_name="Ann",
        lists=[newsletter],
    )
    return services.campaign_create(
        account=account,
        actor=world.alice,
        name="Provider send",
        subject="Hello {{ first_name }}",
        from_email=f"news@{SENDER_DOMAIN}",
        html='<p>Bonjour {{ first_name }}, <a href="https://example.com/x">x</a></p>',
        lists=[newsletter],
    )


def send(campaign: Campaign, capture) -> None:
    """Start the campaign and send its batches, as the workers would."""
    with capture(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)
    while sending.send_batch(campaign.pk).more:
        pass


@pytest.mark.parametrize("fake_esp", list(PROVIDERS), indirect=True)
def test_it_sends_a_campaign_through_the_provider(
    fake_esp, campaign, django_capture_on_commit_callbacks
):
    # given account A sending through a provider's API

    # when its campaign is sent
    send(campaign, django_capture_on_commit_callbacks)

    # then the campaign is sent, each delivery with the id the provider gave it
    campaign.refresh_from_db()
    assert campaign.status == State.SENT, campaign.failure_reason
    assert (campaign.sent_count, campaign.failed_count) == (2, 0)
    deliveries = {
        d.contact.email: d
        for d in Delivery.objects.filter(campaign=campaign).select_related("contact")
    }
    assert {d.status for d in deliveries.values()} == {D.SENT}
    sent = {message.to: message for message in fake_esp.sent}
    assert set(sent) == {"erin@alpha.test", "ann@example.net"}
    assert {d.esp_message_id for d in deliveries.values()} == {m.esp_id for m in sent.values()}
    assert all(m.esp_id for m in sent.values())

    # and the provider was asked for each person's own message, one-click unsubscribe in it
    for address, first_name in [("erin@alpha.test", "Erin"), ("ann@example.net", "Ann")]:
        message, delivery = sent[address], deliveries[address]
        assert message.subject == f"Hello {first_name}"
        assert f"Bonjour {first_name}" in message.html
        headers = {name.lower(): value for name, value in message.headers.items()}
        token = tokens.recipient_token(delivery.pk)
        web = re.findall(r"<(https?://[^>]+)>", headers["list-unsubscribe"])
        assert web == ["http://testserver" + reverse("unsubscribe", args=[token])]
        assert "<mailto:" in headers["list-unsubscribe"]
        assert headers["list-unsubscribe-post"] == "List-Unsubscribe=One-Click"
        assert headers["x-missive-campaign"].endswith(f"-{delivery.pk}")


REFUSALS = [
    pytest.param(
        "postmark",
        (422, {"ErrorCode": 300, "Message": "Invalid 'From' address: 'news@alpha.test'."}),
        "Invalid 'From' address",
        id="postmark-422",
    ),
    pytest.param(
        "sendgrid",
        (403, {"errors": [{"message": "The from address does not match a verified Sender"}]}),
        "does not match a verified Sender",
        id="sendgrid-403",
    ),
    pytest.param(
        "mailgun",
        (400, {"message": "'to' parameter is not a valid address. please check documentation"}),
        "'to' parameter is not a valid address",
        id="mailgun-400",
    ),
    pytest.param(
        "postal",
        (
            200,
            {
                "status": "error",
                "data": {
                    "code": "UnauthenticatedFromAddress",
                    "message": "The From address is not authorised to send mail from this server",
                },
            },
        ),
        "UnauthenticatedFromAddress",
        id="postal-error",
    ),
    pytest.param(
        "amazon_ses",
        (
            400,
            {"__type": "MessageRejected", "message": "Email address is not verified."},
        ),
        "Email address is not verified.",
        id="ses-400",
    ),
]


@pytest.mark.parametrize(("fake_esp", "answer", "words"), REFUSALS, indirect=["fake_esp"])
def test_it_fails_at_once_what_the_provider_refuses(
    fake_esp, answer, words, campaign, django_capture_on_commit_callbacks
):
    # given a provider that refuses the messages for good
    fake_esp.refusal = answer

    # when the campaign is sent
    send(campaign, django_capture_on_commit_callbacks)

    # then each message failed on its first attempt, in the provider's words, and the
    # campaign is over rather than waiting for retries that cannot succeed
    deliveries = Delivery.objects.filter(campaign=campaign)
    assert {(d.status, d.attempts) for d in deliveries} == {(D.FAILED, 1)}
    assert all(words in d.error for d in deliveries), [d.error for d in deliveries]
    assert len(fake_esp.requests) == 2
    campaign.refresh_from_db()
    assert campaign.status == State.SENT
    assert campaign.failed_count == 2
    assert Event.objects.filter(campaign_id=campaign.pk, type=Event.Type.FAILED).count() == 2


@pytest.mark.parametrize(
    ("fake_esp", "answer"),
    [
        pytest.param("sendgrid", (429, {"errors": [{"message": "Too many requests"}]}), id="429"),
        pytest.param("postmark", (503, {"ErrorCode": 100, "Message": "Unavailable"}), id="503"),
    ],
    indirect=["fake_esp"],
)
def test_it_retries_later_what_the_provider_cannot_take_now(
    fake_esp, answer, campaign, django_capture_on_commit_callbacks
):
    # given a provider that asks to slow down, or is down
    fake_esp.refusal = answer

    # when the campaign is sent
    send(campaign, django_capture_on_commit_callbacks)

    # then the messages wait in the queue for a later attempt, the answer kept
    deliveries = Delivery.objects.filter(campaign=campaign)
    assert {d.status for d in deliveries} == {D.QUEUED}
    assert all(d.retry_at is not None for d in deliveries)
    assert all(str(answer[0]) in d.error for d in deliveries), [d.error for d in deliveries]
    assert Campaign.objects.get(pk=campaign.pk).status == State.SENDING


@pytest.mark.parametrize("fake_esp", ["postal"], indirect=True)
def test_it_says_why_when_the_provider_is_not_configured(
    fake_esp, campaign, settings, caplog, alice_client, django_capture_on_commit_callbacks
):
    # given a provider whose settings the operator left out (Postal needs its URL)
    settings.ANYMAIL = {"POSTAL_API_KEY": "key"}

    # when the campaign is sent
    with caplog.at_level(logging.WARNING, logger="campaigns.sending"):
        send(campaign, django_capture_on_commit_callbacks)

    # then nothing was sent, the reason is logged and kept on each delivery, to retry
    # once the operator has fixed it
    assert not fake_esp.requests
    assert f"Campaign {campaign.pk}: The sending provider is not configured" in caplog.text
    assert "POSTAL_API_URL" in caplog.text
    deliveries = Delivery.objects.filter(campaign=campaign)
    assert {d.status for d in deliveries} == {D.QUEUED}
    assert all("The sending provider is not configured" in d.error for d in deliveries)


@pytest.mark.parametrize("fake_esp", ["postal"], indirect=True)
def test_it_shows_the_customer_why_a_misconfigured_provider_sent_nothing(
    fake_esp, campaign, settings, alice_client, django_capture_on_commit_callbacks
):
    # given a provider left unconfigured, and no attempts left to wait for
    settings.ANYMAIL = {"POSTAL_API_KEY": "key"}
    settings.MISSIVE_SEND_MAX_ATTEMPTS = 1

    # when the campaign is sent
    send(campaign, django_capture_on_commit_callbacks)

    # then the campaign ends, and its page says why each message failed
    campaign.refresh_from_db()
    assert campaign.status == State.SENT
    assert campaign.failed_count == 2
    page = alice_client.get(reverse("campaign_detail", args=[campaign.pk]))
    assert page.status_code == 200
    assert "The sending provider is not configured" in page.content.decode()


@pytest.mark.parametrize("fake_esp", list(PROVIDERS), indirect=True)
def test_it_sends_through_the_provider_a_list_whose_name_is_not_ascii(
    fake_esp, campaign, world, django_capture_on_commit_callbacks
):
    # given a list whose name the List-Id header carries, with accents
    newsletter = world.extras["list"]
    newsletter.name = "Lettres d'été"
    newsletter.save()

    # when the campaign is sent
    send(campaign, django_capture_on_commit_callbacks)

    # then the provider took every message, each with the list's identifier
    assert {d.status for d in Delivery.objects.filter(campaign=campaign)} == {D.SENT}
    list_key = f"<list-{newsletter.pk}.account-{campaign.account_id}.{SENDER_DOMAIN}>"
    for message in fake_esp.sent:
        headers = {name.lower(): value for name, value in message.headers.items()}
        assert headers["list-id"].endswith(list_key), headers["list-id"]


def test_a_worker_sends_a_campaign_through_postal(world, workers, transactional_db):
    # given a worker whose operator configured Postal as a named backend, in its
    # environment as in production, and account A given that backend
    with FakeEsp(PROVIDERS["postal"]) as fake:
        worker = workers.start(
            "--pool=solo",
            MISSIVE_BACKEND_POSTAL="esp:postal",
            ANYMAIL_POSTAL_API_URL=fake.url,
            ANYMAIL_POSTAL_API_KEY="key",
        )
        account = world.account_a
        account.sending_backend = "postal"
        account.save()
        newsletter = world.extras["list"]
        campaign = services.campaign_create(
            account=account,
            actor=world.alice,
            name="Through Postal",
            subject="Hello {{ first_name }}",
            from_email=f"news@{SENDER_DOMAIN}",
            html="<p>Bonjour {{ first_name }}</p>",
            lists=[newsletter],
        )

        # when the campaign is started
        services.campaign_start(campaign=campaign, actor=world.alice)
        workers.wait_for(
            lambda: Campaign.objects.get(pk=campaign.pk).status != State.SENDING,
            timeout=60,
            what="the campaign to finish",
            need_alive=worker,
        )

    # then Postal was asked for Erin's message, and the campaign is sent
    campaign.refresh_from_db()
    assert campaign.status == State.SENT, campaign.failure_reason
    assert [(m.to, m.subject) for m in fake.sent] == [("erin@alpha.test", "Hello Erin")]
    delivery = Delivery.objects.get(campaign=campaign)
    assert (delivery.status, delivery.esp_message_id) == (D.SENT, fake.sent[0].esp_id)
    workers.assert_no_tracebacks()
