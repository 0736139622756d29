"""Lists and contacts: the pages, the services behind them, the audience selector."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from contacts import selectors, services
from contacts.models import Contact, ContactList, Subscription, Suppression


@pytest.fixture
def newsletter(world) -> ContactList:
    return world.extras["list"]


def test_it_shows_the_lists_with_counts_per_status(alice_client, world, newsletter):
    services.contact_create(
        account=world.account_a, actor=world.alice, email="gone@example.com", lists=[newsletter]
    )
    gone = Contact.objects.get(email="gone@example.com")
    services.contacts_unsubscribe(account=world.account_a, actor=world.alice, contact_ids=[gone.pk])

    response = alice_client.get("/lists/")

    listed = next(cl for cl in response.context["lists"] if cl.pk == newsletter.pk)
    assert (listed.subscribed, listed.unconfirmed, listed.unsubscribed) == (1, 0, 1)
    assert "Alpha Sentinel News" in response.content.decode()


def test_it_keeps_the_counts_right_after_every_change(alice_client, world, newsletter):
    def counts():
        page = alice_client.get(f"/lists/{newsletter.pk}/")
        c = page.context["counts"]
        return (c.subscribed, c.unsubscribed)

    assert counts() == (1, 0)  # now cached
    services.contact_create(
        account=world.account_a, actor=world.alice, email="new@example.com", lists=[newsletter]
    )
    assert counts() == (2, 0)
    services.contacts_unsubscribe(
        account=world.account_a, actor=world.alice, contact_ids=[world.extras["contact"].pk]
    )
    assert counts() == (1, 1)
    services.contacts_delete(
        account=world.account_a, actor=world.alice, contact_ids=[world.extras["contact"].pk]
    )
    assert counts() == (1, 0)


def test_it_creates_a_list_and_refuses_a_duplicate_name(alice_client, world):
    response = alice_client.post("/lists/new/", {"name": "Offers", "form_consent_text": "Yes"})
    assert response.status_code == 302
    assert ContactList.objects.filter(account=world.account_a, name="Offers").exists()

    response = alice_client.post("/lists/new/", {"name": "offers", "form_consent_text": "Yes"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert not ContactList.objects.filter(account=world.account_a, name="offers").exists()


def test_it_refuses_control_characters_in_a_list_name_on_the_form(alice_client, world):
    # when a list is named with a line break, as a pasted header would be
    response = alice_client.post(
        "/lists/new/", {"name": "Offers\r\nBcc: x@example.com", "form_consent_text": "Yes"}
    )

    # then the form shows the error on the name, and no list is made
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == [
        "Line breaks and control characters are not allowed here."
    ]
    assert not ContactList.objects.filter(
        account=world.account_a, name__startswith="Offers"
    ).exists()


def test_it_pages_a_list_by_keyset_and_searches_it(alice_client, world, newsletter):
    for n in range(120):
        services.contact_create(
            account=world.account_a,
            actor=world.alice,
            email=f"p{n:03d}@example.com",
            first_name="Zed" if n == 77 else "",
            lists=[newsletter],
        )
    url = f"/lists/{newsletter.pk}/"

    first = alice_client.get(url)
    page = first.context["page"]
    assert len(page.contacts) == 50
    assert page.total == 121
    second = alice_client.get(url, {"after": page.next_cursor})
    emails = [c.email for c in second.context["page"].contacts]
    assert emails[0] == "p049@example.com"
    assert not set(emails) & {c.email for c in page.contacts}

    found = alice_client.get(url, {"q": "zed"}).context["page"]
    assert [c.email for c in found.contacts] == ["p077@example.com"]

    newest = alice_client.get(url, {"sort": "newest"}).context["page"].contacts[0]
    assert newest.email == "p119@example.com"


def test_it_filters_a_list_by_status(alice_client, world, newsletter):
    contact = world.extras["contact"]
    services.contacts_unsubscribe(
        account=world.account_a, actor=world.alice, contact_ids=[contact.pk]
    )

    page = alice_client.get(f"/lists/{newsletter.pk}/", {"status": "subscribed"}).context["page"]
    assert page.contacts == []
    page = alice_client.get(f"/lists/{newsletter.pk}/", {"status": "unsubscribed"}).context["page"]
    assert [c.email for c in page.contacts] == ["erin@alpha.test"]


def test_it_answers_htmx_with_the_table_only(alice_client, newsletter):
    response = alice_client.get(f"/lists/{newsletter.pk}/", HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="contacts-table">')
    assert "<html" not in body


def test_it_adds_a_contact_with_consent_proof(alice_client, world, newsletter):
    services.attribute_define(
        account=world.account_a, actor=world.alice, name="birthday", type="date"
    )

    response = alice_client.post(
        "/contacts/new/",
        {
            "email": " Frank@Example.COM ",
            "first_name": "Frank",
            "attr_birthday": "1990-02-30",
            "lists": [newsletter.pk],
            "legal_basis": "consent",
            "consent_text": "Ticked the box at the counter",
        },
    )
    assert response.status_code == 200
    assert "is not a date" in response.content.decode()

    response = alice_client.post(
        "/contacts/new/",
        {
            "email": " Frank@Example.COM ",
            "first_name": "Frank",
            "attr_birthday": "1990-02-28",
            "lists": [newsletter.pk],
            "legal_basis": "consent",
            "consent_text": "Ticked the box at the counter",
        },
    )
    assert response.status_code == 302
    contact = Contact.objects.get(email="frank@example.com")
    assert contact.attributes == {"birthday": "1990-02-28"}
    subscription = contact.subscriptions.get()
    assert subscription.status == Subscription.Status.SUBSCRIBED
    assert subscription.consent_text == "Ticked the box at the counter"
    assert subscription.consent_at is not None


def test_it_edits_a_contact_and_refuses_an_email_taken_by_another(alice_client, world):
    contact = world.extras["contact"]
    services.contact_create(account=world.account_a, actor=world.alice, email="taken@example.com")

    response = alice_client.post(
        f"/contacts/{contact.pk}/", {"email": "taken@example.com", "first_name": "E"}
    )
    assert "already another contact" in response.content.decode()

    alice_client.post(
        f"/contacts/{contact.pk}/", {"email": "erin@alpha.test", "first_name": "Erin B"}
    )
    contact.refresh_from_db()
    assert contact.first_name == "Erin B"


def test_it_confirms_before_unsubscribing_a_selection(alice_client, world, newsletter):
    contact = world.extras["contact"]

    page = alice_client.post(
        "/contacts/bulk/", {"action": "unsubscribe", "ids": [contact.pk], "list_id": newsletter.pk}
    )
    assert "Unsubscribe 1 contact from Alpha Sentinel News?" in page.content.decode()
    assert contact.subscriptions.get().status == "subscribed"

    alice_client.post(
        "/contacts/bulk/",
        {
            "action": "unsubscribe",
            "ids": [contact.pk],
            "list_id": newsletter.pk,
            "confirmed": "yes",
        },
    )
    assert contact.subscriptions.get().status == "unsubscribed"


def test_it_confirms_before_deleting_a_selection(alice_client, world):
    contact = world.extras["contact"]

    alice_client.post("/contacts/bulk/", {"action": "delete", "ids": [contact.pk]})
    assert Contact.objects.filter(pk=contact.pk).exists()

    alice_client.post(
        "/contacts/bulk/", {"action": "delete", "ids": [contact.pk], "confirmed": "yes"}
    )
    assert not Contact.objects.filter(pk=contact.pk).exists()


def test_it_deletes_a_list_and_keeps_contacts_unless_asked(alice_client, world, newsletter):
    other = services.list_create(account=world.account_a, actor=world.alice, name="Other")
    both = services.contact_create(
        account=world.account_a,
        actor=world.alice,
        email="both@example.com",
        lists=[newsletter, other],
    )

    assert (
        "Delete “Alpha Sentinel News”?"
        in alice_client.get(f"/lists/{newsletter.pk}/delete/").content.decode()
    )
    alice_client.post(f"/lists/{newsletter.pk}/delete/", {"delete_contacts": "on"})

    assert not ContactList.objects.filter(pk=newsletter.pk).exists()
    assert not Contact.objects.filter(email="erin@alpha.test").exists()  # only on that list
    assert Contact.objects.filter(pk=both.pk).exists()  # still on another list


def test_it_keeps_contacts_when_deleting_a_list_by_default(alice_client, world, newsletter):
    alice_client.post(f"/lists/{newsletter.pk}/delete/", {})

    assert Contact.objects.filter(email="erin@alpha.test").exists()


def test_it_lets_a_viewer_read_but_not_change(world, newsletter, vera_client):
    erin = world.extras["contact"]

    assert vera_client.get(f"/lists/{newsletter.pk}/").status_code == 200
    assert vera_client.get("/contacts/new/").status_code == 403
    assert (
        vera_client.post(
            "/contacts/bulk/", {"action": "delete", "ids": [erin.pk], "confirmed": "yes"}
        ).status_code
        == 403
    )
    assert Contact.objects.filter(pk=erin.pk).exists()


def test_it_never_subscribes_a_suppressed_address(world, newsletter):
    services.suppression_add(
        account=None, email="Nope@Example.com", reason=Suppression.Reason.DO_NOT_CONTACT
    )

    with pytest.raises(ValidationError, match="suppression list"):
        services.contact_create(
            account=world.account_a, actor=world.alice, email="nope@example.com", lists=[newsletter]
        )


def test_it_builds_an_audience_without_suppressed_or_unsubscribed_people(world, newsletter):
    other = services.list_create(account=world.account_a, actor=world.alice, name="Other")
    for email in ("a@example.com", "b@example.com", "c@example.com", "d@example.com"):
        services.contact_create(
            account=world.account_a, actor=world.alice, email=email, lists=[newsletter, other]
        )
    services.suppression_add(account=world.account_a, email="B@example.com")
    services.suppression_add(account=None, email="c@example.com", reason="do_not_contact")
    d = Contact.objects.get(email="d@example.com")
    services.contacts_unsubscribe(account=world.account_a, actor=world.alice, contact_ids=[d.pk])
    # another account's suppression does not apply here
    services.suppression_add(account=world.account_b, email="a@example.com")

    audience = selectors.sendable_subscriptions(world.account_a, [newsletter.pk, other.pk])

    emails = sorted(set(audience.values_list("contact__email", flat=True)))
    assert emails == ["a@example.com", "erin@alpha.test"]


def test_it_types_attribute_values(world):
    services.attribute_define(
        account=world.account_a, actor=world.alice, name="points", type="number"
    )
    services.attribute_define(
        account=world.account_a, actor=world.alice, name="vip", type="boolean"
    )

    cleaned = services.clean_attributes(world.account_a, {"points": "12,5", "vip": "Oui"})

    assert cleaned == {"points": 12.5, "vip": True}
    with pytest.raises(ValidationError, match="not a number"):
        services.clean_attributes(world.account_a, {"points": "lots"})
    with pytest.raises(ValidationError, match="not a declared attribute"):
        services.clean_attributes(world.account_a, {"shoe_size": "42"})
