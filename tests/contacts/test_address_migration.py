"""Merging the two stored forms of one person keeps the consent that counts."""

from __future__ import annotations

from django.utils import timezone

from contacts import services
from contacts.models import Subscription
from tests.contacts.test_addresses import (
    ANA,
    ANA_UNICODE,
    _contacts_of,
    _legacy,
    _migrate_addresses,
)


def test_the_migration_keeps_the_confirmed_consent_of_the_newer_contact(world):
    # given ana twice on the newsletter: the older contact still unconfirmed, the newer
    # one subscribed with her consent proof
    newsletter = world.extras["list"]
    older = services.contact_create(
        account=world.account_a, actor=world.alice, email="old2@example.com", lists=[newsletter]
    )
    older = _legacy(older, ANA_UNICODE, created_at=timezone.now() - timezone.timedelta(days=30))
    Subscription.objects.filter(contact=older).update(status=Subscription.Status.UNCONFIRMED)
    newer = services.contact_create(
        account=world.account_a, actor=world.alice, email=ANA, lists=[newsletter]
    )
    Subscription.objects.filter(contact=newer).update(
        status=Subscription.Status.SUBSCRIBED,
        consent_text="Yes, send me the newsletter",
        consent_ip="192.0.2.7",
    )

    # when the migration merges them
    _migrate_addresses()

    # then the one ana left is subscribed, with the proof of her consent
    [ana] = _contacts_of(world, ANA)
    assert ana.pk == older.pk
    subscription = ana.subscriptions.get(contact_list=newsletter)
    assert subscription.status == Subscription.Status.SUBSCRIBED
    assert (subscription.consent_text, subscription.consent_ip) == (
        "Yes, send me the newsletter",
        "192.0.2.7",
    )
