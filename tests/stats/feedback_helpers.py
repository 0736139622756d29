"""Campaign messages sent for real (through the sending pipeline, into locmem), for the
feedback tests: webhooks, bounce reports, the rules."""

from __future__ import annotations

import base64

from campaigns import sending, services
from campaigns.models import Delivery
from contacts.models import ContactList, Suppression, email_sha256
from events.models import Event
from tests.factories import World

HTML = '<p>Hi {{ first_name }} <a href="https://example.com/offer">Offer</a></p>'
SECRET = "missive:s3cret-webhook"


def send(world: World, name: str = "Offer", lists: list[ContactList] | None = None) -> Delivery:
    """Account A's campaign ``name`` sent to erin; her delivery, with what the feedback
    rules read (campaign, account, contact)."""
    campaign = services.campaign_create(
        account=world.account_a,
        actor=world.alice,
        name=name,
        subject=name,
        from_email="news@alpha.test",
        html=HTML,
        lists=lists or [world.extras["list"]],
    )
    services.campaign_start(campaign=campaign, actor=None)  # its task would run on commit
    sending.take_snapshot(campaign.pk)
    sending.send_batch(campaign.pk)
    delivery = Delivery.objects.select_related("campaign__account", "contact").get(
        campaign=campaign
    )
    assert delivery.status == Delivery.Status.SENT
    return delivery


def with_esp_id(delivery: Delivery, esp_message_id: str) -> Delivery:
    """As if the provider had answered the send with this message id."""
    Delivery.objects.filter(pk=delivery.pk).update(esp_message_id=esp_message_id)
    delivery.esp_message_id = esp_message_id
    return delivery


def suppression(world: World, email: str = "erin@alpha.test") -> Suppression | None:
    return Suppression.objects.filter(
        account=world.account_a, email_sha256=email_sha256(email)
    ).first()


def events(delivery: Delivery, type: str | None = None) -> list[Event]:
    found = Event.objects.filter(delivery_id=delivery.pk).exclude(type=Event.Type.SENT)
    return list(found.filter(type=type) if type else found)


def basic_auth(credentials: str = SECRET) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()
