"""Test sends: the same gates as a campaign (suppressions, "do not contact", a suspended
or closed account), a bounded number of addresses and of messages per hour, and an
audit entry for each, in the app and through the API."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry
from campaigns import services
from campaigns.models import Campaign
from contacts import services as contact_services
from tests.factories import World, make_api_key


def _api(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def _test_send(client: Client, campaign: Campaign, *recipients: str):
    return client.post(
        f"/api/v1/campaigns/{campaign.pk}/test/",
        {"recipients": list(recipients)},
        content_type="application/json",
    )


def _sent_to() -> list[str]:
    return sorted(message.to[0] for message in mail.outbox)


@pytest.fixture
def campaign(world: World) -> Campaign:
    return world.extras["campaign"]


@pytest.fixture
def editor_api(world: World) -> Client:
    _key, secret = make_api_key(world.account_a, role="editor", name="editor key")
    return _api(secret)


def test_it_skips_addresses_on_the_accounts_suppression_list(bob_client, world, campaign):
    # given an address the account suppressed
    contact_services.suppression_add(account=world.account_a, email="gone@example.com")

    # when bob sends a test to it and to a colleague
    response = bob_client.post(
        f"/campaigns/{campaign.pk}/test/",
        {"recipients": "gone@example.com, colleague@example.com"},
        follow=True,
    )

    # then only the colleague receives it, and the page says which address was skipped
    assert _sent_to() == ["colleague@example.com"]
    page = response.content.decode()
    assert "Test sent to 1 address." in page
    assert "Nothing was sent to gone@example.com (suppressed)." in page


def test_it_skips_addresses_on_the_platform_do_not_contact_list(editor_api, campaign):
    # given an address confirmed on the platform-wide "do not contact" list
    contact_services.suppression_add(
        account=None, email="never@example.com", reason="do_not_contact"
    )

    # when an editor key sends a test to it
    response = _test_send(editor_api, campaign, "never@example.com", "colleague@example.com")

    # then nothing goes to it, and the answer says "suppressed", no more
    assert response.status_code == 200
    assert response.json() == {
        "sent": 1,
        "skipped": [{"email": "never@example.com", "reason": "suppressed"}],
    }
    assert _sent_to() == ["colleague@example.com"]


def test_it_refuses_a_test_from_a_suspended_account(editor_api, bob_client, world, campaign):
    # given an account whose sending Missive's operators suspended
    world.account_a.sending_suspended_at = timezone.now()
    world.account_a.sending_suspended_reason = "Too many complaints."
    world.account_a.save()

    # when a test is asked for, through the API and in the app
    response = _test_send(editor_api, campaign, "colleague@example.com")
    page = bob_client.post(
        f"/campaigns/{campaign.pk}/test/", {"recipients": "colleague@example.com"}, follow=True
    )

    # then both are refused, saying why, and nothing is sent
    assert response.status_code == 403
    assert "Sending is suspended for this account" in response.json()["detail"]
    assert "The test was not sent: Sending is suspended" in page.content.decode()
    assert mail.outbox == []
    assert not AuditEntry.objects.filter(action="campaign.test_sent").exists()


def test_it_refuses_a_test_from_a_closed_account(editor_api, world, campaign):
    # given a closed account (its keys still in the database)
    world.account_a.status = "closed"
    world.account_a.save()

    # when the service is asked for a test
    with pytest.raises(services.TestSendRefused, match="closed"):
        services.campaign_test_send(
            campaign=campaign, actor=None, recipients=["colleague@example.com"]
        )

    # then nothing is sent
    assert mail.outbox == []


def test_it_limits_test_messages_per_account_and_hour(editor_api, bob_client, world, campaign):
    # given an account that sent 10 test messages this hour
    for n in range(2):
        response = _test_send(editor_api, campaign, *(f"t{n}{i}@example.com" for i in range(5)))
        assert response.json()["sent"] == 5
    mail.outbox.clear()

    # when an 11th is asked for, through the API and in the app
    response = _test_send(editor_api, campaign, "one-more@example.com")
    page = bob_client.post(
        f"/campaigns/{campaign.pk}/test/", {"recipients": "one-more@example.com"}, follow=True
    )

    # then it is refused with the rule, and nothing leaves
    assert response.status_code == 429
    assert "10 test messages an hour" in response.json()["detail"]
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert "10 test messages an hour" in page.content.decode()
    assert mail.outbox == []


def test_it_counts_the_limit_per_account(charlie_client, world, editor_api, campaign):
    # given account A used up its test messages for the hour
    for n in range(2):
        _test_send(editor_api, campaign, *(f"t{n}{i}@example.com" for i in range(5)))
    mail.outbox.clear()

    # when charlie sends a test from account B
    campaign_b = services.campaign_create(
        account=world.account_b, actor=world.charlie, name="B news", subject="Hi"
    )
    campaign_b.from_email = "charlie@bravo.test"
    campaign_b.html = '<p>Hi</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>'
    campaign_b.save()
    charlie_client.post(f"/campaigns/{campaign_b.pk}/test/", {"recipients": "c@example.com"})

    # then it is sent: B has its own allowance
    assert _sent_to() == ["c@example.com"]


def test_it_refuses_more_than_five_addresses_in_one_test(editor_api, campaign):
    response = _test_send(editor_api, campaign, *(f"p{n}@example.com" for n in range(6)))

    assert response.status_code == 400
    assert mail.outbox == []


def test_it_audits_each_test_send_naming_the_key_and_the_campaign(world, campaign):
    # given an editor key, and one suppressed address
    _key, secret = make_api_key(world.account_a, role="editor", name="CRM sync")
    contact_services.suppression_add(account=world.account_a, email="gone@example.com")

    # when the key sends a test to two addresses
    _test_send(_api(secret), campaign, "gone@example.com", "colleague@example.com")

    # then the account's log names the key, the campaign and the number of addresses
    entry = AuditEntry.objects.get(account=world.account_a, action="campaign.test_sent")
    assert "CRM sync" in entry.actor_label
    assert entry.detail["name"] == campaign.name
    assert entry.detail["campaign_id"] == campaign.pk
    assert (entry.detail["recipients"], entry.detail["sent"], entry.detail["skipped"]) == (
        2,
        1,
        1,
    )


def test_it_sends_a_test_whose_subject_renders_a_multi_line_value(bob_client, world, campaign):
    # given a subject that shows the account's postal address, which has line breaks
    world.account_a.postal_address = "1 Alpha Road\nLyon"
    world.account_a.save()
    Campaign.objects.filter(pk=campaign.pk).update(subject="News from {{ postal_address }}")

    # when bob sends a test
    response = bob_client.post(
        f"/campaigns/{campaign.pk}/test/", {"recipients": "colleague@example.com"}, follow=True
    )

    # then it goes out, its subject on one line, as recipients will get it
    assert response.status_code == 200
    assert [message.subject for message in mail.outbox] == ["[Test] News from 1 Alpha Road Lyon"]
