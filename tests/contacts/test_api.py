"""The contacts API: lists, contacts, upserts, subscriptions, suppressions and exports,
through a bearer key, scoped to the key's account."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from accounts.models import AuditEntry
from contacts import services
from contacts.models import Contact, ContactList, Subscription, Suppression, email_sha256
from tests.factories import World

S = Subscription.Status


def _api(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.fixture
def api(world: World) -> Client:
    return _api(world.alice_key_secret)


def _json(client: Client, method: str, url: str, data: dict | None = None):
    return getattr(client, method)(url, data or {}, content_type="application/json")


# Lists


def test_it_lists_the_lists_with_their_counts(api, world):
    response = api.get("/api/v1/lists/")

    assert response.status_code == 200
    [newsletter] = response.json()["results"]
    assert newsletter["name"] == "Alpha Sentinel News"
    assert (newsletter["subscribed"], newsletter["unconfirmed"], newsletter["unsubscribed"]) == (
        1,
        0,
        0,
    )


def test_it_creates_renames_and_deletes_a_list(api, world):
    # when a list is created
    response = _json(api, "post", "/api/v1/lists/", {"name": "Partners", "double_opt_in": False})

    # then it belongs to the key's account and answers with its counts
    assert response.status_code == 201
    created = response.json()
    assert created["subscribed"] == 0
    partners = ContactList.objects.get(pk=created["id"])
    assert partners.account == world.account_a
    assert partners.double_opt_in is False

    # when it is renamed, then deleted
    url = f"/api/v1/lists/{partners.pk}/"
    response = _json(api, "patch", url, {"name": "Key partners"})
    assert response.status_code == 200
    assert response.json()["name"] == "Key partners"
    assert api.get(url).json()["name"] == "Key partners"

    response = api.delete(url)
    assert response.status_code == 200
    assert response.json() == {"contacts_deleted": 0}
    assert not ContactList.objects.filter(pk=partners.pk).exists()


def test_it_refuses_a_duplicate_list_name_naming_the_field(api, world):
    response = _json(api, "post", "/api/v1/lists/", {"name": "alpha sentinel news"})

    # a clash with a stored list: a conflict, in the shape of every refusal
    assert response.status_code == 409
    assert response.json()["detail"].startswith("name: A list named")
    assert list(response.json()["errors"]) == ["name"]
    assert ContactList.objects.for_account(world.account_a).count() == 1


def test_it_refuses_control_characters_in_a_list_name(api, world):
    list_id = world.extras["list"].pk

    # when a list is created or renamed with a line break or another control character
    created = _json(api, "post", "/api/v1/lists/", {"name": "News\r\nBcc: x@example.com"})
    renamed = _json(api, "patch", f"/api/v1/lists/{list_id}/", {"name": "News\x00"})
    tabbed = _json(api, "post", "/api/v1/lists/", {"name": "News\tletter\x7f"})

    # then each is a 400 naming the field, as for every other name, and nothing changed
    for response in (created, renamed, tabbed):
        assert response.status_code == 400
        assert response.json()["detail"].startswith("name:")
        assert list(response.json()["errors"]) == ["name"]
    assert list(
        ContactList.objects.for_account(world.account_a).values_list("name", flat=True)
    ) == ["Alpha Sentinel News"]


def test_it_deletes_a_list_with_its_own_contacts_when_asked(api, world):
    newsletter = world.extras["list"]
    other = services.list_create(account=world.account_a, actor=world.alice, name="Other")
    services.contact_create(
        account=world.account_a, actor=world.alice, email="both@example.com", lists=[newsletter]
    )
    services.subscription_subscribe(
        contact=Contact.objects.get(email="both@example.com"), contact_list=other
    )

    response = api.delete(f"/api/v1/lists/{newsletter.pk}/?delete_contacts=true")

    # then erin (only on this list) is gone, the contact also on another list stays
    assert response.json() == {"contacts_deleted": 1}
    emails = set(Contact.objects.for_account(world.account_a).values_list("email", flat=True))
    assert emails == {"both@example.com"}


# Contacts


def test_it_creates_a_contact_subscribed_with_consent_proof(api, world):
    newsletter = world.extras["list"]

    response = _json(
        api,
        "post",
        "/api/v1/contacts/",
        {
            "email": " Frank@Example.COM ",
            "first_name": "Frank",
            "attributes": {"city": "Lyon"},
            "lists": [newsletter.pk],
            "legal_basis": "existing_customer",
            "consent_text": "Bought a bike on 3 May",
        },
    )

    assert response.status_code == 201
    data = response.json()
    assert data["email"] == "frank@example.com"
    assert data["attributes"] == {"city": "Lyon"}
    [subscription] = data["subscriptions"]
    assert subscription["list"] == newsletter.pk
    assert subscription["status"] == "subscribed"
    stored = Subscription.objects.get(contact_id=data["id"], contact_list=newsletter)
    assert stored.source == Subscription.Source.API
    assert stored.legal_basis == Subscription.LegalBasis.EXISTING_CUSTOMER
    assert stored.consent_text == "Bought a bike on 3 May"
    assert stored.consent_at is not None


def test_it_refuses_an_undeclared_attribute_naming_it(api, world):
    response = _json(
        api, "post", "/api/v1/contacts/", {"email": "g@example.com", "attributes": {"shoe": 42}}
    )

    assert response.status_code == 400
    assert response.json()["detail"] == "attributes.shoe: 'shoe' is not a declared attribute."
    assert not Contact.objects.filter(email="g@example.com").exists()


def test_it_refuses_a_list_of_another_account_like_a_missing_one(api, world):
    bravo = services.list_create(account=world.account_b, actor=world.charlie, name="Bravo")

    response = _json(
        api, "post", "/api/v1/contacts/", {"email": "g@example.com", "lists": [bravo.pk]}
    )

    assert response.status_code == 400
    assert response.json()["detail"] == f"lists: No list with id {bravo.pk}."
    assert not Subscription.objects.filter(contact_list=bravo).exists()


def test_it_refuses_an_address_that_is_already_a_contact(api, world):
    response = _json(api, "post", "/api/v1/contacts/", {"email": "ERIN@alpha.test"})

    assert response.status_code == 409
    assert response.json()["detail"].startswith("email:")
    assert list(Contact.objects.for_account(world.account_a)) == [world.extras["contact"]]


def test_it_shows_a_contact_with_their_subscriptions(api, world):
    contact = world.extras["contact"]

    response = api.get(f"/api/v1/contacts/{contact.pk}/")

    assert response.status_code == 200
    data = response.json()
    assert data["email"] == "erin@alpha.test"
    assert [s["list_name"] for s in data["subscriptions"]] == ["Alpha Sentinel News"]
    assert "consent_text" in data["subscriptions"][0]


def test_it_updates_and_deletes_a_contact(api, world):
    contact = world.extras["contact"]
    url = f"/api/v1/contacts/{contact.pk}/"

    response = _json(api, "patch", url, {"last_name": "Example", "attributes": {"city": "Nice"}})

    assert response.status_code == 200
    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name) == ("Erin", "Example")
    assert contact.attributes == {"city": "Nice"}

    assert api.delete(url).status_code == 204
    assert not Contact.objects.filter(pk=contact.pk).exists()


def test_it_upserts_a_contact_by_address(api, world):
    newsletter = world.extras["list"]
    other = services.list_create(account=world.account_a, actor=world.alice, name="Other")
    body = {"email": "hana@example.com", "first_name": "Hana", "last_name": "Kato"}

    # when the address is new, then it is created
    first = _json(api, "post", "/api/v1/contacts/upsert/", {**body, "lists": [newsletter.pk]})
    assert first.status_code == 201

    # when it is sent again, the given fields overwrite and the others are kept
    second = _json(
        api,
        "post",
        "/api/v1/contacts/upsert/",
        {"email": "HANA@example.com", "first_name": "Hanako", "lists": [other.pk]},
    )
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    contact = Contact.objects.get(email="hana@example.com")
    assert (contact.first_name, contact.last_name) == ("Hanako", "Kato")
    lists = set(contact.subscriptions.values_list("contact_list__name", "status", "source"))
    assert lists == {("Alpha Sentinel News", S.SUBSCRIBED, "api"), ("Other", S.SUBSCRIBED, "api")}


def test_it_rolls_back_an_upsert_that_cannot_subscribe(api, world):
    newsletter = world.extras["list"]
    erin = world.extras["contact"]
    services.contacts_unsubscribe(account=world.account_a, actor=world.alice, contact_ids=[erin.pk])

    response = _json(
        api,
        "post",
        "/api/v1/contacts/upsert/",
        {"email": "erin@alpha.test", "first_name": "Changed", "lists": [newsletter.pk]},
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("email: erin@alpha.test unsubscribed")
    erin.refresh_from_db()
    assert erin.first_name == "Erin"


def _bulk_contacts(world: World, count: int) -> None:
    for i in range(count):
        services.contact_create(
            account=world.account_a, actor=None, email=f"person{i:03}@example.com"
        )


def test_it_pages_through_every_contact_by_following_next(api, world):
    _bulk_contacts(world, 120)

    seen, url, pages = [], "/api/v1/contacts/", 0
    while url:
        data = api.get(url).json()
        assert data["count"] == 121
        assert data["count_is_capped"] is False
        seen += [c["email"] for c in data["results"]]
        url, pages = data["next"], pages + 1

    assert pages == 2
    assert len(seen) == len(set(seen)) == 121
    assert seen == sorted(seen)


def test_it_pages_newest_first_with_a_chosen_page_size(api, world):
    _bulk_contacts(world, 12)

    first = api.get("/api/v1/contacts/?sort=newest&page_size=5").json()
    second = api.get(first["next"]).json()

    assert len(first["results"]) == len(second["results"]) == 5
    ids = [c["id"] for c in first["results"] + second["results"]]
    assert ids == sorted(ids, reverse=True)
    assert "sort=newest" in first["next"]


def test_it_reads_any_page_in_a_fixed_number_of_queries(api, world, django_assert_num_queries):
    _bulk_contacts(world, 30)
    newsletter = world.extras["list"]
    first = api.get(f"/api/v1/contacts/?list={newsletter.pk}&page_size=10").json()

    # the key, the list, the page of rows, the capped count
    with django_assert_num_queries(4):
        api.get(f"/api/v1/contacts/?list={newsletter.pk}&page_size=10")
    with django_assert_num_queries(3):
        api.get("/api/v1/contacts/?page_size=10&after=person015%40example.com%7C1")
    assert first["count"] == 1


def test_it_filters_contacts_by_list_status_address_and_search(api, world):
    newsletter = world.extras["list"]
    _bulk_contacts(world, 3)
    services.contact_create(
        account=world.account_a, actor=None, email="gone@example.com", lists=[newsletter]
    )
    gone = Contact.objects.get(email="gone@example.com")
    services.contacts_unsubscribe(account=world.account_a, actor=None, contact_ids=[gone.pk])

    def emails(query: str) -> list[str]:
        response = api.get(f"/api/v1/contacts/?{query}")
        assert response.status_code == 200, response.json()
        return [c["email"] for c in response.json()["results"]]

    assert emails(f"list={newsletter.pk}") == ["erin@alpha.test", "gone@example.com"]
    assert emails(f"list={newsletter.pk}&status=unsubscribed") == ["gone@example.com"]
    assert emails("email=Person001@example.com") == ["person001@example.com"]
    assert emails(f"email=person001@example.com&list={newsletter.pk}") == []
    assert emails("q=person00") == [f"person00{i}@example.com" for i in range(3)]


def test_it_refuses_a_status_filter_without_a_list(api, world):
    response = api.get("/api/v1/contacts/?status=subscribed")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("status:")


def test_it_refuses_a_forged_cursor_naming_it(api, world):
    response = api.get("/api/v1/contacts/?sort=newest&after=yesterday%7C12")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("after:")


def test_it_answers_404_for_a_list_filter_of_another_account(api, world):
    bravo = services.list_create(account=world.account_b, actor=world.charlie, name="Bravo")

    assert api.get(f"/api/v1/contacts/?list={bravo.pk}").status_code == 404


# Subscriptions


def test_it_subscribes_a_new_address_creating_the_contact(api, world):
    newsletter = world.extras["list"]

    response = _json(
        api,
        "post",
        f"/api/v1/lists/{newsletter.pk}/subscriptions/",
        {"email": "ivy@example.com", "first_name": "Ivy", "consent_text": "Checkout box"},
    )

    assert response.status_code == 201
    assert response.json()["email"] == "ivy@example.com"
    subscription = Subscription.objects.get(
        contact__email="ivy@example.com", contact_list=newsletter
    )
    assert subscription.status == S.SUBSCRIBED
    assert subscription.source == Subscription.Source.API
    assert subscription.consent_text == "Checkout box"
    assert subscription.contact.first_name == "Ivy"


def test_it_subscribes_an_existing_contact_once(api, world):
    newsletter = world.extras["list"]
    url = f"/api/v1/lists/{newsletter.pk}/subscriptions/"
    services.contact_create(account=world.account_a, actor=None, email="jo@example.com")

    assert _json(api, "post", url, {"email": "jo@example.com"}).status_code == 201
    assert _json(api, "post", url, {"email": "jo@example.com"}).status_code == 200
    assert Subscription.objects.filter(contact__email="jo@example.com").count() == 1


@pytest.mark.parametrize("existing", [False, True])
def test_it_refuses_to_subscribe_a_suppressed_address_naming_email(api, world, existing):
    newsletter = world.extras["list"]
    if existing:
        services.contact_create(account=world.account_a, actor=None, email="blocked@alpha.test")

    response = _json(
        api,
        "post",
        f"/api/v1/lists/{newsletter.pk}/subscriptions/",
        {"email": "blocked@alpha.test"},
    )

    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("email: blocked@alpha.test is on a suppression list")
    assert "email" in body["errors"]
    assert not Subscription.objects.filter(contact__email="blocked@alpha.test").exists()


def test_it_refuses_to_subscribe_an_address_that_unsubscribed(api, world):
    newsletter = world.extras["list"]
    erin = world.extras["contact"]
    services.contacts_unsubscribe(account=world.account_a, actor=None, contact_ids=[erin.pk])

    response = _json(
        api, "post", f"/api/v1/lists/{newsletter.pk}/subscriptions/", {"email": erin.email}
    )

    assert response.status_code == 400
    assert response.json()["detail"].startswith("email: erin@alpha.test unsubscribed")
    assert Subscription.objects.get(contact=erin).status == S.UNSUBSCRIBED


def test_it_unsubscribes_an_address_idempotently(api, world):
    newsletter = world.extras["list"]
    url = f"/api/v1/lists/{newsletter.pk}/subscriptions/unsubscribe/"

    first = _json(api, "post", url, {"email": "Erin@alpha.test"})
    second = _json(api, "post", url, {"email": "erin@alpha.test"})
    stranger = _json(api, "post", url, {"email": "nobody@example.com"})

    assert first.status_code == second.status_code == stranger.status_code == 200
    assert first.json() == {"email": "erin@alpha.test", "status": "unsubscribed"}
    assert stranger.json() == {"email": "nobody@example.com", "status": None}
    subscription = Subscription.objects.get(contact=world.extras["contact"])
    assert subscription.status == S.UNSUBSCRIBED
    assert subscription.unsubscribed_at is not None


# Suppressions


def test_it_lists_suppressions_by_hash_never_by_address(api, world):
    response = api.get("/api/v1/suppressions/")

    assert response.status_code == 200
    [entry] = response.json()["results"]
    assert entry["email_sha256"] == email_sha256("blocked@alpha.test")
    assert set(entry) == {"id", "email_sha256", "reason", "note", "created_at"}
    assert "blocked@" not in response.content.decode()


def test_it_finds_the_suppression_of_an_address(api, world):
    hit = api.get("/api/v1/suppressions/?email=Blocked@alpha.test").json()["results"]
    miss = api.get("/api/v1/suppressions/?email=erin@alpha.test").json()["results"]

    assert [e["id"] for e in hit] == [world.extras["suppression"].pk]
    assert miss == []


def test_it_adds_and_removes_a_suppression(api, world):
    body = {"email": "Kim@Example.com", "reason": "complaint", "note": "Called us"}

    added = _json(api, "post", "/api/v1/suppressions/", body)
    again = _json(api, "post", "/api/v1/suppressions/", body)

    assert (added.status_code, again.status_code) == (201, 200)
    suppression = Suppression.objects.get(pk=added.json()["id"])
    assert suppression.account == world.account_a
    assert suppression.email_sha256 == email_sha256("kim@example.com")
    assert suppression.reason == Suppression.Reason.COMPLAINT

    assert api.delete(f"/api/v1/suppressions/{suppression.pk}/").status_code == 204
    assert not Suppression.objects.filter(pk=suppression.pk).exists()


# Access


def test_it_answers_404_to_another_accounts_key(world):
    charlie = _api(world.charlie_key_secret)
    newsletter, erin = world.extras["list"], world.extras["contact"]
    suppression = world.extras["suppression"]
    urls = [
        f"/api/v1/lists/{newsletter.pk}/",
        f"/api/v1/contacts/{erin.pk}/",
        f"/api/v1/suppressions/{suppression.pk}/",
    ]

    for url in urls:
        assert charlie.get(url).status_code == 404
        assert charlie.delete(url).status_code == 404
    for url in urls[:2]:
        assert _json(charlie, "patch", url, {"name": "Mine"}).status_code == 404
    subscribe = _json(
        charlie,
        "post",
        f"/api/v1/lists/{newsletter.pk}/subscriptions/",
        {"email": "spy@example.com"},
    )
    assert subscribe.status_code == 404
    assert charlie.get(f"/api/v1/lists/{newsletter.pk}/export.csv").status_code == 404

    assert ContactList.objects.get(pk=newsletter.pk).name == "Alpha Sentinel News"
    assert Contact.objects.filter(pk=erin.pk).exists()
    assert Suppression.objects.filter(pk=suppression.pk).exists()
    assert charlie.get("/api/v1/contacts/").json()["results"] == []


def test_it_lets_a_viewer_key_read_but_not_write_or_export(viewer_api, world):
    newsletter, erin = world.extras["list"], world.extras["contact"]

    assert viewer_api.get("/api/v1/lists/").status_code == 200
    assert viewer_api.get(f"/api/v1/contacts/{erin.pk}/").status_code == 200
    assert viewer_api.get("/api/v1/suppressions/").status_code == 200

    refused = [
        _json(viewer_api, "post", "/api/v1/lists/", {"name": "Mine"}),
        _json(viewer_api, "patch", f"/api/v1/lists/{newsletter.pk}/", {"name": "Mine"}),
        _json(viewer_api, "post", "/api/v1/contacts/", {"email": "v@example.com"}),
        _json(viewer_api, "post", "/api/v1/contacts/upsert/", {"email": "v@example.com"}),
        viewer_api.delete(f"/api/v1/contacts/{erin.pk}/"),
        _json(
            viewer_api,
            "post",
            f"/api/v1/lists/{newsletter.pk}/subscriptions/unsubscribe/",
            {"email": erin.email},
        ),
        _json(viewer_api, "post", "/api/v1/suppressions/", {"email": "v@example.com"}),
        viewer_api.delete(f"/api/v1/suppressions/{world.extras['suppression'].pk}/"),
        viewer_api.get("/api/v1/contacts/export.csv"),
    ]

    assert [r.status_code for r in refused] == [403] * len(refused)
    assert Contact.objects.for_account(world.account_a).count() == 1
    assert Subscription.objects.get(contact=erin).status == S.SUBSCRIBED


# Exports


def test_it_streams_a_list_as_csv_and_audits_it_under_the_key(api, world):
    newsletter = world.extras["list"]

    response = api.get(f"/api/v1/lists/{newsletter.pk}/export.csv", HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "no-store" in response["Cache-Control"]
    raw = b"".join(response.streaming_content).decode()
    [row] = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert (row["email"], row["first_name"], row["list"]) == (
        "erin@alpha.test",
        "Erin",
        "Alpha Sentinel News",
    )
    entry = AuditEntry.objects.get(account=world.account_a, action="contacts.exported")
    assert entry.actor is None
    assert entry.actor_label.startswith("API key Alpha Sentinel key")
    assert entry.detail == {"list": "Alpha Sentinel News", "format": "csv"}


def test_it_streams_every_contact_as_json_lines(api, world):
    response = api.get("/api/v1/contacts/export.ndjson")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    assert b'"email":"erin@alpha.test"' in b"".join(response.streaming_content)


def test_it_answers_404_for_an_unknown_export_format(api, world):
    response = api.get("/api/v1/contacts/export.xlsx")

    assert response.status_code == 404
    assert not AuditEntry.objects.filter(action="contacts.exported").exists()


def test_it_describes_the_contacts_endpoints_in_the_schema(db):
    schema = Client().get("/api/v1/schema/?format=json").json()

    for path in [
        "/api/v1/lists/",
        "/api/v1/lists/{list_id}/",
        "/api/v1/lists/{list_id}/subscriptions/",
        "/api/v1/lists/{list_id}/subscriptions/unsubscribe/",
        "/api/v1/lists/{list_id}/export.{fmt}",
        "/api/v1/contacts/",
        "/api/v1/contacts/upsert/",
        "/api/v1/contacts/{contact_id}/",
        "/api/v1/contacts/export.{fmt}",
        "/api/v1/suppressions/",
        "/api/v1/suppressions/{suppression_id}/",
    ]:
        assert path in schema["paths"], path
    listing = schema["paths"]["/api/v1/contacts/"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"list", "status", "email", "q", "after"}


def test_it_names_the_api_key_in_the_activity_log_of_every_write(world):
    from accounts.models import AuditEntry

    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.alice_key_secret}")

    client.post("/api/v1/lists/", {"name": "From the CRM"}, content_type="application/json")

    entry = AuditEntry.objects.get(
        account=world.account_a, action="list.created", detail__name="From the CRM"
    )
    assert entry.actor_label.startswith("API key Alpha Sentinel key")
    # and the label does not outlive its request
    from accounts.services import acting_label

    assert acting_label.get() is None
