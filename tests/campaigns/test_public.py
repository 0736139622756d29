"""The links inside a sent message: open pixel, click redirect, unsubscribe (page and
RFC 8058 one-click POST), preferences, view in browser. Public, token-authenticated,
cheap, and never an error on a bad token."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from campaigns import sending, services, tokens
from campaigns.models import Delivery, DeliveryBody
from contacts import services as contact_services
from contacts.models import Subscription, Suppression, email_sha256
from events.models import Event

HTML = '<p>Hi {{ first_name }} <a href="https://example.com/offer">Offer</a></p>'
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"


@pytest.fixture
def sent(world, django_capture_on_commit_callbacks):
    """A campaign sent to erin (account A's list)."""
    account = world.account_a
    account.postal_address = "1 Alpha Road, Lisbon"
    account.save()
    newsletter = world.extras["list"]
    campaign = services.campaign_create(
        account=account,
        actor=world.alice,
        name="Offer",
        subject="Offer",
        from_email="news@alpha.test",
        html=HTML,
        lists=[newsletter],
    )
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)
    sending.send_batch(campaign.pk)
    delivery = Delivery.objects.get(campaign=campaign)
    assert delivery.status == Delivery.Status.SENT
    # A minute ago: opens and clicks in the first seconds after sending are machines'.
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=delivery.sent_at - timedelta(minutes=1))
    delivery.refresh_from_db()
    return delivery


def _altered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("a" if token[middle] != "a" else "b") + token[middle + 1 :]


def test_the_pixel_records_an_open_in_three_queries(sent, client, django_assert_max_num_queries):
    token = tokens.recipient_token(sent.pk)

    with django_assert_max_num_queries(3):
        response = client.get(f"/t/o/{token}", HTTP_USER_AGENT=BROWSER)

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert "no-store" in response["Cache-Control"]
    sent.refresh_from_db()
    assert sent.first_opened_at is not None
    event = Event.objects.get(delivery_id=sent.pk, type="open")
    assert event.machine is False


def test_a_prefetching_proxy_open_is_recorded_as_a_machine(sent, client):
    token = tokens.recipient_token(sent.pk)
    # Apple Mail Privacy Protection fetches the pixel on delivery, read or not.
    proxy = "Mozilla/5.0"

    client.get(f"/t/o/{token}", HTTP_USER_AGENT=proxy)

    sent.refresh_from_db()
    assert sent.first_opened_at is None
    event = Event.objects.get(delivery_id=sent.pk, type="open")
    assert event.machine is True
    assert event.detail == {"machine_reason": "apple_mpp"}


def test_a_gmail_image_proxy_open_is_the_readers(sent, client):
    token = tokens.recipient_token(sent.pk)
    # Gmail fetches images through its proxy when its user opens the message.
    proxy = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )

    client.get(f"/t/o/{token}", HTTP_USER_AGENT=proxy)

    sent.refresh_from_db()
    assert sent.first_opened_at is not None
    assert Event.objects.get(delivery_id=sent.pk, type="open").machine is False


def test_a_click_redirects_to_the_campaigns_own_link_in_three_queries(
    sent, client, django_assert_max_num_queries
):
    token = tokens.click_token(sent.pk, 0)

    with django_assert_max_num_queries(3):
        response = client.get(f"/t/c/{token}?url=https://evil.example/", HTTP_USER_AGENT=BROWSER)

    assert response.status_code == 302
    assert response["Location"] == "https://example.com/offer"
    sent.refresh_from_db()
    assert sent.first_clicked_at is not None
    assert sent.contact.last_activity_at is not None
    assert Event.objects.filter(delivery_id=sent.pk, type="click", machine=False).count() == 1


@pytest.mark.parametrize("route", ["t/o", "t/c", "u", "v"])
def test_an_altered_or_forged_token_is_a_friendly_404(sent, client, route):
    good = tokens.click_token(sent.pk, 0) if route == "t/c" else tokens.recipient_token(sent.pk)
    for token in (_altered(good), "forged", good + "x", "1.AAAAAAAAAAAAAAAAAAAA", "%00"):
        response = client.get(f"/{route}/{token}")
        assert response.status_code == 404, token
    assert Event.objects.exclude(type="sent").count() == 0


def test_a_click_token_cannot_point_anywhere_else(sent, client):
    # Another position of the same delivery names no link: there is only one.
    response = client.get(f"/t/c/{tokens.click_token(sent.pk, 5)}")
    assert response.status_code == 404
    # A recipient token is not a click token.
    response = client.get(f"/t/c/{tokens.recipient_token(sent.pk)}")
    assert response.status_code == 404
    # and no click was recorded
    assert Event.objects.exclude(type="sent").count() == 0
    sent.refresh_from_db()
    assert sent.first_clicked_at is None


def test_the_unsubscribe_page_changes_nothing_until_the_button(sent, client):
    token = tokens.recipient_token(sent.pk)

    response = client.get(f"/u/{token}")

    assert response.status_code == 200
    assert b"Unsubscribe" in response.content
    assert b"erin@alpha.test" in response.content
    subscription = Subscription.objects.get(contact=sent.contact)
    assert subscription.status == Subscription.Status.SUBSCRIBED


def test_one_click_unsubscribe_post_needs_no_csrf_and_answers_200(
    sent, django_assert_max_num_queries
):
    client = Client(enforce_csrf_checks=True)
    url = f"/u/{tokens.recipient_token(sent.pk)}"

    with django_assert_max_num_queries(6):
        response = client.post(
            url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        )

    assert response.status_code == 200
    assert not response.cookies.get("sessionid")
    subscription = Subscription.objects.get(contact=sent.contact)
    assert subscription.status == Subscription.Status.UNSUBSCRIBED
    assert subscription.unsubscribed_at is not None
    # Idempotent: a second POST answers the same and changes nothing.
    again = client.post(
        url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert again.status_code == 200
    assert Event.objects.filter(delivery_id=sent.pk, type="unsubscribe").count() == 1


def test_the_unsubscribe_page_says_so_once_the_recipient_is_unsubscribed(sent, client):
    # Given erin already unsubscribed with the one-click POST
    url = f"/u/{tokens.recipient_token(sent.pk)}"
    client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    # When she opens the unsubscribe page
    response = client.get(url)

    # Then it says she is already unsubscribed, offers no button, and changes nothing
    assert response.status_code == 200
    assert b"already unsubscribed" in response.content
    assert b"Press the button" not in response.content
    assert b'type="submit"' not in response.content
    subscription = Subscription.objects.get(contact=sent.contact)
    assert subscription.status == Subscription.Status.UNSUBSCRIBED
    assert Event.objects.filter(delivery_id=sent.pk, type="unsubscribe").count() == 1


def test_the_next_campaign_skips_whoever_unsubscribed(
    sent, client, world, django_capture_on_commit_callbacks
):
    client.post(f"/u/{tokens.recipient_token(sent.pk)}", {"List-Unsubscribe": "One-Click"})
    contact_services.contact_create(
        account=world.account_a,
        actor=None,
        email="frank@alpha.test",
        lists=[world.extras["list"]],
    )
    following = services.campaign_create(
        account=world.account_a,
        actor=None,
        name="Next",
        subject="Next",
        from_email="news@alpha.test",
        html=HTML,
        lists=[world.extras["list"]],
    )
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=following, actor=None)
    sending.take_snapshot(following.pk)

    recipients = Delivery.objects.filter(campaign=following).values_list(
        "contact__email", flat=True
    )
    assert list(recipients) == ["frank@alpha.test"]


def test_preferences_let_the_recipient_choose_and_stop_everything(sent, client):
    url = f"/u/{tokens.recipient_token(sent.pk)}/preferences"
    page = client.get(url)
    assert page.status_code == 200
    assert b"Alpha Sentinel News" in page.content

    client.post(url, {})  # nothing ticked: unsubscribed from the list
    subscription = Subscription.objects.get(contact=sent.contact)
    assert subscription.status == Subscription.Status.UNSUBSCRIBED

    client.post(url, {"lists": [str(subscription.contact_list_id)]})  # back, by their choice
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.SUBSCRIBED
    assert subscription.source == Subscription.Source.FORM
    assert "preferences page" in subscription.consent_text

    client.post(url, {"lists": [str(subscription.contact_list_id)], "everything": "on"})
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNSUBSCRIBED
    assert Suppression.objects.filter(
        account=sent.campaign.account, email_sha256=email_sha256("erin@alpha.test")
    ).exists()


def test_view_in_browser_shows_the_message_then_says_it_is_gone(sent, client):
    token = tokens.recipient_token(sent.pk)

    response = client.get(f"/v/{token}")

    assert response.status_code == 200
    assert b"Hi Erin" in response.content
    assert "sandbox" in response["Content-Security-Policy"]

    DeliveryBody.objects.filter(pk=sent.pk).delete()  # what retention does after 6 days
    gone = client.get(f"/v/{token}")
    assert gone.status_code == 410
    assert b"no longer available" in gone.content
    # The unsubscribe link of the message still works.
    assert client.post(f"/u/{token}", {"List-Unsubscribe": "One-Click"}).status_code == 200


def test_the_contact_page_shows_the_recent_activity(sent, client, alice_client):
    client.get(f"/t/o/{tokens.recipient_token(sent.pk)}", HTTP_USER_AGENT=BROWSER)
    client.get(f"/t/c/{tokens.click_token(sent.pk, 0)}", HTTP_USER_AGENT=BROWSER)

    page = alice_client.get(f"/contacts/{sent.contact_id}/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "Recent activity" in text
    for seen in ("Sent", "Open", "Click", "https://example.com/offer", "Offer"):
        assert seen in text


def _send_with_tracking(world, tracking, django_capture_on_commit_callbacks):
    from django.core import mail

    account = world.account_a
    account.postal_address = "1 Alpha Road"
    account.tracking = tracking
    account.save()
    campaign = services.campaign_create(
        account=account,
        actor=None,
        name=f"Tracking {tracking}",
        subject="S",
        from_email="news@alpha.test",
        html=HTML,
        lists=[world.extras["list"]],
    )
    with django_capture_on_commit_callbacks(execute=False):
        services.campaign_start(campaign=campaign, actor=None)
    sending.take_snapshot(campaign.pk)
    sending.send_batch(campaign.pk)
    return campaign, mail.outbox[-1].alternatives[0][0]


def test_anonymous_tracking_counts_for_the_campaign_without_naming_anyone(
    world, client, django_capture_on_commit_callbacks
):
    campaign, html = _send_with_tracking(world, "anonymous", django_capture_on_commit_callbacks)

    assert "/t/o/" not in html
    assert "/t/c/" not in html
    pixel = html.split('src="http://testserver')[1].split('"')[0]
    click = html.split('href="http://testserver/t/ac/')[1].split('"')[0]
    assert client.get(pixel, HTTP_USER_AGENT=BROWSER).status_code == 200
    response = client.get(f"/t/ac/{click}", HTTP_USER_AGENT=BROWSER)
    assert response["Location"] == "https://example.com/offer"

    events = Event.objects.filter(campaign_id=campaign.pk).exclude(type="sent")
    assert sorted(events.values_list("type", flat=True)) == ["click", "open"]
    assert set(events.values_list("delivery_id", flat=True)) == {None}
    delivery = Delivery.objects.get(campaign=campaign)
    assert delivery.first_opened_at is None


def test_tracking_off_sends_plain_links_and_no_pixel(world, django_capture_on_commit_callbacks):
    _campaign, html = _send_with_tracking(world, "off", django_capture_on_commit_callbacks)

    assert 'href="https://example.com/offer"' in html
    assert "/t/" not in html


def test_turning_tracking_off_later_applies_to_messages_already_sent(sent, client):
    account = sent.campaign.account
    account.tracking = "off"
    account.save()

    assert client.get(f"/t/o/{tokens.recipient_token(sent.pk)}").status_code == 200
    response = client.get(f"/t/c/{tokens.click_token(sent.pk, 0)}")

    assert response.status_code == 302
    assert Event.objects.exclude(type="sent").count() == 0
    sent.refresh_from_db()
    assert sent.first_opened_at is None
    assert sent.first_clicked_at is None


def test_a_recipient_can_stop_being_tracked_from_the_footer(
    sent, client, world, django_capture_on_commit_callbacks
):
    from django.core import mail

    html = mail.outbox[-1].alternatives[0][0]
    assert "Don't track my opens and clicks" in html
    url = f"/u/{tokens.recipient_token(sent.pk)}/stop-tracking"
    assert b"Stop tracking me" in client.get(url).content
    sent.contact.refresh_from_db()
    assert sent.contact.tracking_objected_at is None  # GET changes nothing

    client.post(url)
    client.get(f"/t/o/{tokens.recipient_token(sent.pk)}", HTTP_USER_AGENT=BROWSER)
    client.get(f"/t/c/{tokens.click_token(sent.pk, 0)}", HTTP_USER_AGENT=BROWSER)

    sent.refresh_from_db()
    assert sent.contact.tracking_objected_at is not None
    assert sent.first_opened_at is None
    assert sent.first_clicked_at is None
    events = Event.objects.filter(campaign_id=sent.campaign_id).exclude(type="sent")
    assert sorted(events.values_list("type", flat=True)) == ["click", "open"]
    assert set(events.values_list("delivery_id", flat=True)) == {None}

    # The next message carries only campaign-level links for this person.
    _campaign, next_html = _send_with_tracking(
        world, "per_recipient", django_capture_on_commit_callbacks
    )
    assert "/t/ao/" in next_html
    assert "/t/o/" not in next_html


def test_an_open_in_the_first_seconds_after_sending_is_a_machines(sent, client):
    Delivery.objects.filter(pk=sent.pk).update(sent_at=timezone.now())

    client.get(f"/t/o/{tokens.recipient_token(sent.pk)}", HTTP_USER_AGENT=BROWSER)

    assert Event.objects.get(delivery_id=sent.pk, type="open").machine is True
    sent.refresh_from_db()
    assert sent.first_opened_at is None


def test_recipient_pages_and_the_contact_page_show_a_unicode_domain_in_unicode(
    sent, client, alice_client
):
    # Given erin's address has an internationalized domain, stored in A-labels
    Contact = type(sent.contact)
    Contact.objects.filter(pk=sent.contact_id).update(email="erin@xn--bcher-kva.de")
    token = tokens.recipient_token(sent.pk)

    # When she opens her pages, and alice opens the contact page
    pages = [
        client.get(f"/u/{token}"),
        client.get(f"/u/{token}/preferences"),
        client.get(f"/u/{token}/stop-tracking"),
        alice_client.get(f"/contacts/{sent.contact_id}/"),
    ]

    # Then each shows the address as people write it, never the punycode
    for page in pages:
        assert page.status_code == 200
        text = page.content.decode()
        assert "erin@bücher.de" in text
        # (an edit form's field keeps the stored value: that is not prose)
        assert "xn--bcher-kva" not in re.sub(r'value="[^"]*"', "", text)
    # and storage keeps the A-label form
    assert Contact.objects.get(pk=sent.contact_id).email == "erin@xn--bcher-kva.de"
