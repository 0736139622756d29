"""Previewing and testing a campaign as one of the account's contacts: the search among
its audience, the preview and the inbox line rendered with that contact's fields and
attributes, a test send over real SMTP filled the same way, and another account's ids
falling back to the sample recipient or refused."""

from __future__ import annotations

import email
import email.header
from email.message import Message

import pytest
from django.test import Client

from campaigns import services
from campaigns.models import Campaign
from campaigns.selectors import PREVIEW_SEARCH_LIMIT
from contacts import services as contact_services
from contacts.models import Contact, Subscription
from tests.factories import World

SUBJECT = "Autumn in {{ attributes.city }}, {{ first_name }}"
PREHEADER = "Beans for {{ full_name }}"
HTML = (
    "<p>Hi {{ first_name }}, from our shop in {{ attributes.city }}.</p>"
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'
)


@pytest.fixture
def erin(world: World) -> Contact:
    contact = world.extras["contact"]
    contact.last_name = "Eastwood"
    contact.attributes = {"city": "Lyon"}
    contact.save()
    return contact


@pytest.fixture
def campaign(world: World, erin: Contact) -> Campaign:
    return services.campaign_create(
        account=world.account_a,
        actor=world.alice,
        name="Autumn",
        subject=SUBJECT,
        preheader=PREHEADER,
        from_name="Alpha Roasters",
        from_email="news@alpha.test",
        html=HTML,
        lists=[world.extras["list"]],
    )


@pytest.fixture
def charlies_contact(world: World) -> Contact:
    return contact_services.contact_create(
        account=world.account_b,
        actor=world.charlie,
        email="dora@bravo.test",
        first_name="Dora",
        attributes={},
    )


# -- the preview --------------------------------------------------------------------------------


def test_the_preview_shows_the_chosen_contacts_attributes(bob_client, campaign, erin):
    response = bob_client.get(f"/campaigns/{campaign.pk}/preview/?contact={erin.pk}")

    assert response.status_code == 200
    assert "Hi Erin, from our shop in Lyon." in response.content.decode()


def test_the_page_shows_the_inbox_line_as_rendered_for_the_contact(bob_client, campaign, erin):
    page = bob_client.get(f"/campaigns/{campaign.pk}/?contact={erin.pk}").content.decode()

    # the inbox line: sender name and address, subject and preheader, for erin
    line = page.split('data-testid="inbox-line"', 1)[1].split("</div>", 1)[0]
    assert "Alpha Roasters" in line
    assert "news@alpha.test" in line
    assert "Autumn in Lyon, Erin" in line
    assert "Beans for Erin Eastwood" in line
    # the frame shows her, and the test form offers to send as her
    assert f'src="/campaigns/{campaign.pk}/preview/?contact={erin.pk}"' in page
    assert f'<option value="{erin.pk}" selected>erin@alpha.test</option>' in page


def test_without_a_contact_the_page_previews_the_sample_recipient(bob_client, campaign):
    page = bob_client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert "Beans for Jane Doe" in page
    assert f'src="/campaigns/{campaign.pk}/preview/"' in page


def test_the_page_offers_desktop_and_mobile_widths_without_script(bob_client, campaign):
    page = bob_client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert 'id="preview-desktop" checked' in page
    assert 'id="preview-mobile"' in page
    assert "<script" not in page.split('id="preview"', 1)[1].split("</section>", 1)[0]


@pytest.mark.parametrize("value", ["garbage", "-1", "99999999999999999999", "²"])
def test_a_malformed_contact_id_falls_back_to_the_sample_recipient(bob_client, campaign, value):
    preview = bob_client.get(f"/campaigns/{campaign.pk}/preview/", {"contact": value})
    page = bob_client.get(f"/campaigns/{campaign.pk}/", {"contact": value})

    assert preview.status_code == page.status_code == 200
    assert "Hi Jane, from our shop in Lisbon." in preview.content.decode()
    assert "Beans for Jane Doe" in page.content.decode()


def test_another_accounts_contact_falls_back_to_the_sample_recipient(
    bob_client, campaign, charlies_contact
):
    preview = bob_client.get(f"/campaigns/{campaign.pk}/preview/?contact={charlies_contact.pk}")
    page = bob_client.get(f"/campaigns/{campaign.pk}/?contact={charlies_contact.pk}")

    assert "Hi Jane" in preview.content.decode()
    assert "Dora" not in preview.content.decode()
    assert "dora@bravo.test" not in page.content.decode()
    assert "Beans for Jane Doe" in page.content.decode()


# -- the search ---------------------------------------------------------------------------------


def _found(client: Client, campaign: Campaign, query: str, *, htmx: bool = True) -> str:
    if htmx:
        url = f"/campaigns/{campaign.pk}/preview/contacts/"
        response = client.get(url, {"q": query}, HTTP_HX_REQUEST="true")
    else:
        response = client.get(f"/campaigns/{campaign.pk}/", {"q": query})
    assert response.status_code == 200
    return response.content.decode()


def test_it_finds_audience_contacts_by_address_or_name(bob_client, world, campaign, erin):
    contact_services.contact_create(
        account=world.account_a,
        actor=world.alice,
        email="fred@alpha.test",
        first_name="Fred",
        last_name="Eastwood",
        lists=[world.extras["list"]],
    )

    by_address = _found(bob_client, campaign, "erin@")
    by_name = _found(bob_client, campaign, "eastwood")
    without_script = _found(bob_client, campaign, "Erin Eastwood", htmx=False)

    assert f'href="/campaigns/{campaign.pk}/?contact={erin.pk}#preview"' in by_address
    assert "fred@alpha.test" not in by_address
    assert "erin@alpha.test" in by_name
    assert "fred@alpha.test" in by_name
    assert "erin@alpha.test" in without_script
    assert "fred@alpha.test" not in without_script.split('id="preview-results"', 1)[1]


def test_it_searches_only_the_subscribed_unsuppressed_audience(bob_client, world, campaign):
    # given a contact on no list of the campaign, one unsubscribed, one suppressed
    other_list = contact_services.list_create(
        account=world.account_a, actor=world.alice, name="Other"
    )
    for name, lists in (("outside", [other_list]), ("gone", [world.extras["list"]])):
        contact_services.contact_create(
            account=world.account_a,
            actor=world.alice,
            email=f"{name}.zed@alpha.test",
            lists=lists,
        )
    contact_services.subscription_unsubscribe(
        subscription=Subscription.objects.get(contact__email="gone.zed@alpha.test")
    )
    contact_services.contact_create(
        account=world.account_a,
        actor=world.alice,
        email="blocked.zed@alpha.test",
        lists=[world.extras["list"]],
    )
    contact_services.suppression_add(account=world.account_a, email="blocked.zed@alpha.test")

    # then none of them is found for the campaign
    assert "No contact of the campaign's audience matches" in _found(bob_client, campaign, "zed")

    # but a campaign with no audience yet finds any of the account's contacts
    campaign.lists.clear()
    found = _found(bob_client, campaign, "zed")
    assert "outside.zed@alpha.test" in found
    assert "gone.zed@alpha.test" in found
    assert "blocked.zed@alpha.test" in found


def test_it_searches_the_segments_people_when_the_campaign_has_one(
    bob_client, world, campaign, erin
):
    # given a campaign sent to the segment "readers in Lyon" alone, and a reader elsewhere
    contact_services.contact_create(
        account=world.account_a,
        actor=world.alice,
        email="paris.reader@alpha.test",
        attributes={"city": "Paris"},
        lists=[world.extras["list"]],
    )
    Campaign.objects.filter(pk=campaign.pk).update(segment=world.extras["segment"])
    campaign.lists.clear()

    found = _found(bob_client, campaign, "alpha.test")

    assert "erin@alpha.test" in found
    assert "paris.reader@alpha.test" not in found


def test_it_shows_ten_results_at_most(bob_client, world, campaign):
    for n in range(PREVIEW_SEARCH_LIMIT + 2):
        contact_services.contact_create(
            account=world.account_a,
            actor=world.alice,
            email=f"many{n:02}@alpha.test",
            lists=[world.extras["list"]],
        )

    found = _found(bob_client, campaign, "many")

    assert found.count("<li>") == PREVIEW_SEARCH_LIMIT == 10


def test_another_account_cannot_search_the_campaign(charlie_client, campaign):
    url = f"/campaigns/{campaign.pk}/preview/contacts/?q=erin"

    assert charlie_client.get(url).status_code == 404


def test_a_search_never_shows_another_accounts_contacts(bob_client, campaign, charlies_contact):
    campaign.lists.clear()

    assert "dora@bravo.test" not in _found(bob_client, campaign, "dora")


# -- a test send as a contact, over SMTP --------------------------------------------------------


@pytest.fixture
def over_smtp(settings, smtp_sink):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_sink.port
    return smtp_sink


def _received(server) -> tuple[Message, str, str]:
    (received,) = server.messages
    message = email.message_from_bytes(received.raw)
    parts = {part.get_content_type(): part for part in message.walk()}
    html = parts["text/html"].get_payload(decode=True).decode()
    text = parts["text/plain"].get_payload(decode=True).decode()
    return message, html, text


def _subject(message: Message) -> str:
    return str(email.header.make_header(email.header.decode_header(message["Subject"])))


def test_a_test_sent_as_a_contact_arrives_with_their_values(bob_client, campaign, erin, over_smtp):
    # when bob sends a test as erin from the page
    response = bob_client.post(
        f"/campaigns/{campaign.pk}/test/",
        {"recipients": "colleague@example.com", "contact": erin.pk},
        follow=True,
    )

    # then the message that reaches the SMTP server is filled with erin's values
    assert "Test sent to 1 address, as erin@alpha.test." in response.content.decode()
    message, html, text = _received(over_smtp)
    assert over_smtp.messages[0].rcpt_tos == ("colleague@example.com",)
    assert _subject(message) == "[Test] Autumn in Lyon, Erin"
    assert "Hi Erin, from our shop in Lyon." in html
    assert "Beans for Erin Eastwood" in html
    assert "Hi Erin, from our shop in Lyon." in text


def test_the_api_sends_a_test_as_a_contact(alice_client, campaign, erin, over_smtp):
    response = alice_client.post(
        f"/api/v1/campaigns/{campaign.pk}/test/",
        {"recipients": ["colleague@example.com"], "contact": erin.pk},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    message, html, _text = _received(over_smtp)
    assert _subject(message) == "[Test] Autumn in Lyon, Erin"
    assert "Hi Erin, from our shop in Lyon." in html


def test_a_test_without_a_contact_still_uses_the_sample(bob_client, campaign, over_smtp):
    bob_client.post(f"/campaigns/{campaign.pk}/test/", {"recipients": "colleague@example.com"})

    message, html, _text = _received(over_smtp)
    assert _subject(message) == "[Test] Autumn in Lisbon, Jane"
    assert "Hi Jane, from our shop in Lisbon." in html


def test_a_test_as_another_accounts_contact_is_refused(
    alice_client, bob_client, campaign, charlies_contact, over_smtp
):
    api = alice_client.post(
        f"/api/v1/campaigns/{campaign.pk}/test/",
        {"recipients": ["colleague@example.com"], "contact": charlies_contact.pk},
        content_type="application/json",
    )
    page = bob_client.post(
        f"/campaigns/{campaign.pk}/test/",
        {"recipients": "colleague@example.com", "contact": charlies_contact.pk},
        follow=True,
    )

    assert api.status_code == 400
    assert f"No contact with id {charlies_contact.pk}." in api.content.decode()
    assert "Choose one of your contacts to send the test as." in page.content.decode()
    assert over_smtp.messages == []


def test_the_service_refuses_another_accounts_contact(world, campaign, charlies_contact):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="No such contact"):
        services.campaign_test_send(
            campaign=campaign,
            actor=world.alice,
            recipients=["colleague@example.com"],
            as_contact=charlies_contact,
        )
