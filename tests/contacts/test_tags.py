"""Tags: one name per account whatever its case, bulk changes in one statement that are
idempotent and audited once, the pages and the API, and never another account's data."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditEntry
from contacts import services as contact_services
from contacts import tagging
from contacts.models import Contact, ContactTag, Tag


@pytest.fixture
def people(world):
    news = world.extras["list"]
    made = [
        contact_services.contact_create(
            account=world.account_a,
            actor=world.alice,
            email=f"t{n}@people.test",
            first_name=f"T{n}",
            lists=[news],
        )
        for n in range(5)
    ]
    return world, made


def _tagged(tag: Tag) -> set[str]:
    return set(ContactTag.objects.filter(tag=tag).values_list("contact__email", flat=True))


def test_a_bulk_tag_is_one_statement_idempotent_and_audited_once(people):
    world, made = people
    chosen = Contact.objects.filter(pk__in=[c.pk for c in made[:3]])

    with CaptureQueriesContext(connection) as queries:
        done = tagging.tag_contacts(
            account=world.account_a, actor=world.alice, tag="Webinar", contacts=chosen
        )
    inserts = [q for q in queries if "INSERT INTO contacts_contacttag" in q["sql"]]
    assert len(inserts) == 1
    assert (done.matched, done.changed, done.created) == (3, 3, True)

    again = tagging.tag_contacts(
        account=world.account_a,
        actor=world.alice,
        tag="WEBINAR",
        contacts=Contact.objects.filter(pk__in=[c.pk for c in made]),
    )
    assert (again.tag.pk, again.matched, again.changed, again.unchanged) == (
        done.tag.pk,
        5,
        2,
        3,
    )
    assert Tag.objects.filter(account=world.account_a, name__iexact="webinar").count() == 1
    assert AuditEntry.objects.filter(action="contacts.tagged").count() == 2 + 1  # + the world's

    removed = tagging.untag_contacts(
        account=world.account_a, actor=world.alice, tag="webinar", contacts=chosen
    )
    assert removed.changed == 3
    assert _tagged(done.tag) == {"t3@people.test", "t4@people.test"}


def test_names_are_checked(people):
    world, _ = people
    for bad in ("", "   ", "a,b", "a;b", "line\nbreak", "x" * 101):
        with pytest.raises(ValidationError):
            tagging.tag_create(account=world.account_a, actor=world.alice, name=bad)
    tagging.tag_create(account=world.account_a, actor=world.alice, name="Paris")
    with pytest.raises(ValidationError, match="already exists"):
        tagging.tag_create(account=world.account_a, actor=world.alice, name="PARIS")


def test_another_accounts_contacts_are_never_tagged(people):
    world, _made = people
    everyone = Contact.objects.all()
    done = tagging.tag_contacts(
        account=world.account_b, actor=world.charlie, tag="mine", contacts=everyone
    )
    assert done.matched == Contact.objects.filter(account=world.account_b).count()
    assert not ContactTag.objects.filter(tag=done.tag, contact__account=world.account_a).exists()
    with pytest.raises(ValueError, match="another account"):
        tagging.tag_contacts(
            account=world.account_b,
            actor=world.charlie,
            tag=world.extras["tag"],
            contacts=everyone,
        )


def test_deleting_a_contact_or_a_tag_takes_the_tag_rows_with_it(people):
    world, made = people
    done = tagging.tag_contacts(
        account=world.account_a,
        actor=world.alice,
        tag="gone",
        contacts=Contact.objects.filter(pk__in=[c.pk for c in made]),
    )
    contact_services.contacts_delete(
        account=world.account_a, actor=world.alice, contact_ids=[made[0].pk]
    )
    assert len(_tagged(done.tag)) == 4
    assert tagging.tag_delete(tag=done.tag, actor=world.alice) == 4
    assert not ContactTag.objects.filter(tag_id=done.tag.pk).exists()


# -- pages -----------------------------------------------------------------------------------


def test_the_tags_page_makes_renames_and_deletes(people, alice_client):
    world, _ = people
    assert alice_client.post(reverse("tags"), {"name": "Lyon"}).status_code == 302
    tag = Tag.objects.get(account=world.account_a, name="Lyon")
    page = alice_client.get(reverse("tags")).content.decode()
    assert "Lyon" in page
    assert alice_client.post(reverse("tags"), {"name": "lyon"}).status_code == 400
    alice_client.post(reverse("tag_detail", args=[tag.pk]), {"name": "Lyonnais"})
    tag.refresh_from_db()
    assert tag.name == "Lyonnais"
    assert (
        "Delete the tag" in alice_client.get(reverse("tag_delete", args=[tag.pk])).content.decode()
    )
    alice_client.post(reverse("tag_delete", args=[tag.pk]))
    assert not Tag.objects.filter(pk=tag.pk).exists()


def test_the_contacts_page_shows_filters_and_tags_every_matching_contact(people, alice_client):
    world, made = people
    # ticking two, then confirming
    form = {"action": "tag", "tag_name": "Picked", "ids": [made[0].pk, made[1].pk]}
    confirm = alice_client.post(reverse("contacts_bulk"), form)
    assert "Put the tag “Picked” on 2 contacts?" in confirm.content.decode()
    alice_client.post(reverse("contacts_bulk"), {**form, "confirmed": "yes"})
    picked = Tag.objects.get(account=world.account_a, name="Picked")
    assert _tagged(picked) == {"t0@people.test", "t1@people.test"}

    # every contact the search keeps, ticked or not
    every = {"action": "tag", "tag_name": "Searched", "scope": "all", "q": "people.test"}
    confirm = alice_client.post(reverse("contacts_bulk"), every)
    assert "on 5 contacts?" in confirm.content.decode()
    alice_client.post(reverse("contacts_bulk"), {**every, "confirmed": "yes"})
    searched = Tag.objects.get(account=world.account_a, name="Searched")
    assert len(_tagged(searched)) == 5

    # the table shows the tags and filters by one
    page = alice_client.get(reverse("contacts"), {"tag": picked.pk}).content.decode()
    assert "t0@people.test" in page
    assert "t3@people.test" not in page
    assert '<span class="badge">Picked</span>' in page
    # an unknown or foreign tag id is ignored, not an error
    assert alice_client.get(reverse("contacts"), {"tag": "999999"}).status_code == 200
    assert alice_client.get(reverse("contacts"), {"tag": "x"}).status_code == 200

    # and the same from a list's page, untagging
    news = world.extras["list"]
    alice_client.post(
        reverse("contacts_bulk"),
        {
            "action": "untag",
            "tag_name": "searched",
            "ids": [made[4].pk],
            "list_id": news.pk,
            "confirmed": "yes",
        },
    )
    assert len(_tagged(searched)) == 4


def test_a_contacts_page_adds_and_removes_a_tag(people, alice_client):
    world, made = people
    url = reverse("contact_tag", args=[made[0].pk])
    alice_client.post(url, {"name": "Regular"})
    tag = Tag.objects.get(account=world.account_a, name="Regular")
    detail = alice_client.get(reverse("contact_detail", args=[made[0].pk])).content.decode()
    assert "Regular" in detail
    alice_client.post(url, {"remove": tag.pk})
    assert not _tagged(tag)
    alice_client.post(url, {"name": "bad,name"})
    assert not Tag.objects.filter(name="bad,name").exists()


def test_a_viewer_cannot_tag(people, client):
    world, made = people
    client.force_login(world.vera, backend="allauth.account.auth_backends.AuthenticationBackend")
    response = client.post(reverse("contact_tag", args=[made[0].pk]), {"name": "Nope"})
    assert response.status_code == 403
    assert not Tag.objects.filter(name="Nope").exists()


# -- the API ---------------------------------------------------------------------------------


def test_the_api_makes_tags_and_tags_by_address_or_id(people, alice_client):
    _world, made = people
    created = alice_client.post("/api/v1/tags/", {"name": "Api"}, "application/json")
    assert created.status_code == 201
    tag_id = created.json()["id"]
    assert (
        alice_client.post("/api/v1/tags/", {"name": "API"}, "application/json").status_code == 409
    )
    added = alice_client.post(
        f"/api/v1/tags/{tag_id}/add/",
        {"emails": ["t0@people.test", "nobody@people.test"], "contact_ids": [made[1].pk]},
        "application/json",
    ).json()
    assert (added["matched"], added["changed"], added["tag"]["contact_count"]) == (2, 2, 2)
    listed = alice_client.get("/api/v1/contacts/", {"tag": tag_id}).json()
    assert {c["email"] for c in listed["results"]} == {"t0@people.test", "t1@people.test"}
    assert all("Api" in c["tags"] for c in listed["results"])
    removed = alice_client.post(
        f"/api/v1/tags/{tag_id}/remove/", {"contact_ids": [made[1].pk]}, "application/json"
    ).json()
    assert removed["changed"] == 1
    renamed = alice_client.patch(f"/api/v1/tags/{tag_id}/", {"name": "Api2"}, "application/json")
    assert renamed.json()["name"] == "Api2"
    assert alice_client.delete(f"/api/v1/tags/{tag_id}/").status_code == 204


def test_the_api_tags_a_contact_it_creates_or_upserts(people, alice_client):
    world, _ = people
    Tag.objects.create(account=world.account_a, name="Customer")

    # when a contact is created with tags, one of them the account's in another case
    created = alice_client.post(
        "/api/v1/contacts/",
        {"email": "new@people.test", "tags": ["customer", "Lyon", "LYON"]},
        "application/json",
    )

    # then it has the existing tag and a new one, each once
    assert created.status_code == 201, created.json()
    assert sorted(created.json()["tags"]) == ["Customer", "Lyon"]
    assert Tag.objects.filter(account=world.account_a, name__iexact="lyon").count() == 1

    # and an upsert adds tags, keeping those it has
    upserted = alice_client.post(
        "/api/v1/contacts/upsert/",
        {"email": "new@people.test", "first_name": "New", "tags": ["VIP"]},
        "application/json",
    )
    assert upserted.status_code == 200, upserted.json()
    assert sorted(upserted.json()["tags"]) == ["Customer", "Lyon", "VIP"]
    # (one audit entry for each tag put on: Customer, Lyon, VIP)
    tagged = AuditEntry.objects.filter(account=world.account_a, action="contacts.tagged")
    assert tagged.filter(detail__how="api").count() == 3
    # and a bad name is refused naming it, with nothing made
    refused = alice_client.post(
        "/api/v1/contacts/",
        {"email": "other@people.test", "tags": ["ok", "a,b"]},
        "application/json",
    )
    assert refused.status_code == 400
    assert "tags" in refused.json()["errors"]
    assert not Contact.objects.filter(email="other@people.test").exists()


def test_the_api_never_reaches_another_accounts_tag(people, client):
    world, _ = people
    client.force_login(world.charlie, backend="allauth.account.auth_backends.AuthenticationBackend")
    tag = world.extras["tag"]
    assert client.get(f"/api/v1/tags/{tag.pk}/").status_code == 404
    assert (
        client.post(
            f"/api/v1/tags/{tag.pk}/add/", {"emails": ["erin@alpha.test"]}, "application/json"
        ).status_code
        == 404
    )
    assert client.get("/api/v1/contacts/", {"tag": tag.pk}).status_code == 404


def test_a_segment_tags_everyone_it_matches(people, alice_client):
    world, _ = people
    segment = world.extras["segment"]
    contact_services.contact_update(
        contact=Contact.objects.get(email="t2@people.test"),
        actor=world.alice,
        attributes={"city": "Lyon"},
    )
    alice_client.post(reverse("segment_tag", args=[segment.pk]), {"tag_name": "Lyonnais"})
    tag = Tag.objects.get(account=world.account_a, name="Lyonnais")
    assert _tagged(tag) == {"t2@people.test"}
    answer = alice_client.post(
        f"/api/v1/segments/{segment.pk}/tag/",
        {"tag": "Lyonnais", "remove": True},
        "application/json",
    ).json()
    assert (answer["matched"], answer["changed"]) == (1, 1)
