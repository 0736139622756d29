"""Attributes after the fact: rename, retype and delete, in the app and the API, with the
contacts' values and the campaigns' merge tags following."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEntry
from campaigns.models import Campaign
from campaigns.states import State
from contacts import merge_tags, services
from contacts.models import AttributeDefinition, Contact
from tests.factories import World


def _contact(world: World, email: str, **attributes: object) -> Contact:
    return services.contact_create(
        account=world.account_a, actor=world.alice, email=email, attributes=attributes
    )


def _campaign(world: World, name: str, status: str = State.DRAFT, **parts: str) -> Campaign:
    return Campaign.objects.create(
        account=world.account_a,
        name=name,
        subject=parts.get("subject", "Hello"),
        from_email="news@alpha.test",
        html=parts.get("html", "<p>Hi</p>"),
        text=parts.get("text", "Hi"),
        status=status,
    )


@pytest.fixture
def plan(world: World) -> AttributeDefinition:
    """A text attribute two contacts hold, used by a draft and a scheduled campaign."""
    definition = services.attribute_define(
        account=world.account_a, actor=world.alice, name="plan", type="text"
    )
    _contact(world, "ann@example.com", plan="gold", city="Paris")
    _contact(world, "bob@example.com", plan="pro")
    _contact(world, "cy@example.com", city="Lyon")
    return definition


def _api(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


# Services


def test_it_renames_an_attribute_moving_the_values_in_one_update(world, plan):
    # given a draft using the tag, and one whose tag only starts the same
    draft = _campaign(
        world,
        "Spring",
        subject="Your {{ attributes.plan }} plan",
        html="<p>{{attributes.plan|upper}}</p>",
    )
    other = _campaign(world, "Other", html="<p>{{ attributes.plan_2 }}</p>")
    scheduled = _campaign(world, "Later", State.SCHEDULED, text="{{ attributes.plan }}")

    # when it is renamed, with the drafts
    with CaptureQueriesContext(connection) as queries:
        changed = services.attribute_rename(
            definition=plan, actor=world.alice, name="tier", update_campaigns=True
        )

    # then the values moved in a single statement, the other attributes untouched
    updates = [q["sql"] for q in queries if q["sql"].startswith("UPDATE contacts_contact")]
    assert len(updates) == 1
    values = dict(
        Contact.objects.filter(account=world.account_a).values_list("email", "attributes")
    )
    assert values["ann@example.com"] == {"tier": "gold", "city": "Paris"}
    assert values["bob@example.com"] == {"tier": "pro"}
    assert values["cy@example.com"] == {"city": "Lyon"}
    # and the draft uses the new tag; the scheduled one and the look-alike are left alone
    assert changed == 1
    draft.refresh_from_db()
    assert (draft.subject, draft.html) == (
        "Your {{ attributes.tier }} plan",
        "<p>{{attributes.tier|upper}}</p>",
    )
    other.refresh_from_db()
    assert other.html == "<p>{{ attributes.plan_2 }}</p>"
    scheduled.refresh_from_db()
    assert scheduled.text == "{{ attributes.plan }}"
    entry = AuditEntry.objects.get(account=world.account_a, action="attribute.renamed")
    assert entry.detail == {"old": "plan", "new": "tier", "contacts": 2, "campaigns": 1}


def test_it_refuses_a_rename_to_a_name_taken_or_invalid(world, plan):
    for name, message in (
        ("city", "already exists"),
        ("Bad Name", "lower-case"),
        ("email", "built-in"),
    ):
        with pytest.raises(Exception, match=message):
            services.attribute_rename(
                definition=plan, actor=world.alice, name=name, update_campaigns=False
            )
    assert Contact.objects.get(email="ann@example.com").attributes["plan"] == "gold"


def test_it_retypes_converting_values_and_drops_the_others_only_when_told(world):
    # given a text attribute holding numbers and a word
    points = services.attribute_define(
        account=world.account_a, actor=world.alice, name="points", type="text"
    )
    _contact(world, "a@example.com", points="12")
    _contact(world, "b@example.com", points="1,5")
    _contact(world, "c@example.com", points="lots")

    # when it becomes a number without the confirmation, it is refused with the count
    with pytest.raises(Exception, match=r"1 of 3 stored values cannot be read as number"):
        services.attribute_retype(
            definition=points, actor=world.alice, type="number", drop_invalid=False
        )
    points.refresh_from_db()
    assert points.type == "text"

    # when confirmed, the numbers are converted and the word is dropped
    services.attribute_retype(
        definition=points, actor=world.alice, type="number", drop_invalid=True
    )
    points.refresh_from_db()
    assert points.type == "number"
    values = dict(
        Contact.objects.filter(account=world.account_a).values_list("email", "attributes")
    )
    assert values["a@example.com"] == {"points": 12}
    assert values["b@example.com"] == {"points": 1.5}
    assert values["c@example.com"] == {}
    entry = AuditEntry.objects.get(account=world.account_a, action="attribute.retyped")
    assert (entry.detail["dropped"], entry.detail["new"]) == (1, "number")


def test_it_deletes_an_attribute_and_its_values(world, plan):
    cleared = services.attribute_delete(definition=plan, actor=world.alice)

    assert cleared == 2
    assert not AttributeDefinition.objects.filter(pk=plan.pk).exists()
    assert Contact.objects.get(email="ann@example.com").attributes == {"city": "Paris"}
    assert AuditEntry.objects.filter(account=world.account_a, action="attribute.deleted").exists()


# Screens


def test_it_confirms_a_rename_with_the_contacts_and_campaigns_concerned(bob_client, world, plan):
    # given a draft and a scheduled campaign using the tag
    _campaign(world, "Spring offer", html="<p>{{ attributes.plan }}</p>")
    _campaign(world, "Autumn offer", State.SCHEDULED, subject="{{ attributes.plan }}")

    # when bob, an editor, opens the rename page
    page = bob_client.get(f"/attributes/{plan.pk}/rename/").content.decode()

    # then it says how many contacts hold a value and lists the campaigns
    assert "2 contacts hold a value" in page
    assert "Spring offer" in page
    assert "(draft)" in page
    assert "Autumn offer" in page
    assert "(scheduled)" in page

    # when he renames it, updating the drafts
    response = bob_client.post(
        f"/attributes/{plan.pk}/rename/", {"name": "tier", "update_campaigns": "on"}
    )

    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.name == "tier"
    assert Campaign.objects.get(name="Spring offer").html == "<p>{{ attributes.tier }}</p>"


def test_it_shows_what_a_change_of_type_drops_before_doing_it(bob_client, world):
    points = services.attribute_define(
        account=world.account_a, actor=world.alice, name="points", type="text"
    )
    _contact(world, "a@example.com", points="12")
    _contact(world, "b@example.com", points="lots")

    page = bob_client.get(f"/attributes/{points.pk}/type/", {"type": "number"}).content.decode()

    assert "1 of 2 stored values cannot be read as the new type" in page
    assert "“lots”" in page
    points.refresh_from_db()
    assert points.type == "text"

    # when bob confirms, the page sending back the count it showed
    assert '<input type="hidden" name="drops" value="1">' in page
    response = bob_client.post(f"/attributes/{points.pk}/type/", {"type": "number", "drops": "1"})

    assert response.status_code == 302
    assert Contact.objects.get(email="a@example.com").attributes == {"points": 12}
    assert Contact.objects.get(email="b@example.com").attributes == {}


def test_it_deletes_an_attribute_after_confirmation(alice_client, world, plan):
    page = alice_client.get(f"/attributes/{plan.pk}/delete/").content.decode()
    assert "2 contacts hold a value" in page
    assert AttributeDefinition.objects.filter(pk=plan.pk).exists()

    response = alice_client.post(f"/attributes/{plan.pk}/delete/")

    assert response.status_code == 302
    assert not AttributeDefinition.objects.filter(pk=plan.pk).exists()


def test_it_keeps_attribute_changes_from_viewers_and_outsiders(plan, vera_client, charlie_client):
    for url in (f"/attributes/{plan.pk}/rename/", f"/attributes/{plan.pk}/delete/"):
        assert vera_client.post(url, {"name": "x"}).status_code == 403
        assert charlie_client.post(url, {"name": "x"}).status_code == 404
    plan.refresh_from_db()
    assert plan.name == "plan"


# API


def test_it_declares_lists_renames_retypes_and_deletes_attributes_through_the_api(world):
    api = _api(world.alice_key_secret)

    # create
    response = api.post(
        "/api/v1/attributes/", {"name": "points", "type": "text"}, content_type="application/json"
    )
    assert response.status_code == 201
    attribute = response.json()
    assert (attribute["name"], attribute["type"], attribute["contacts"]) == ("points", "text", 0)
    _contact(world, "a@example.com", points="7")
    _contact(world, "b@example.com", points="seven")

    # list and retrieve
    names = [a["name"] for a in api.get("/api/v1/attributes/").json()["results"]]
    assert names == ["city", "points"]
    url = f"/api/v1/attributes/{attribute['id']}/"
    assert api.get(url).json()["contacts"] == 2

    # retype: refused with the count, then done when the caller agrees to drop
    response = api.patch(url, {"type": "number"}, content_type="application/json")
    assert response.status_code == 409
    assert "1 of 2 stored values" in response.json()["detail"]
    assert AttributeDefinition.objects.get(pk=attribute["id"]).type == "text"
    assert Contact.objects.get(email="b@example.com").attributes == {"points": "seven"}
    response = api.patch(
        url, {"type": "number", "drop_invalid_values": True}, content_type="application/json"
    )
    assert response.status_code == 200
    assert Contact.objects.get(email="a@example.com").attributes == {"points": 7}

    # rename
    response = api.patch(url, {"name": "score"}, content_type="application/json")
    assert (response.status_code, response.json()["name"]) == (200, "score")
    assert Contact.objects.get(email="a@example.com").attributes == {"score": 7}

    # delete
    response = api.delete(url)
    assert (response.status_code, response.json()) == (200, {"cleared": 1})
    assert api.get(url).status_code == 404

    # and every write is audited, naming the key
    actions = list(
        AuditEntry.objects.filter(account=world.account_a, action__startswith="attribute.")
        .order_by("pk")
        .values_list("action", "actor_label")
    )
    assert [a for a, _ in actions][-4:] == [
        "attribute.created",
        "attribute.retyped",
        "attribute.renamed",
        "attribute.deleted",
    ]
    assert all("Alpha Sentinel key" in label for _, label in actions[-4:])


def test_it_refuses_attribute_writes_to_viewer_keys_and_outsiders(world, viewer_api):
    city = world.extras["attribute"]
    viewer = viewer_api
    outsider = _api(world.charlie_key_secret)
    url = f"/api/v1/attributes/{city.pk}/"

    assert viewer.get(url).status_code == 200
    assert viewer.patch(url, {"name": "town"}, content_type="application/json").status_code == 403
    assert viewer.delete(url).status_code == 403
    assert viewer.post("/api/v1/attributes/", {"name": "x"}).status_code == 403
    assert outsider.get(url).status_code == 404
    assert outsider.delete(url).status_code == 404
    assert outsider.get("/api/v1/attributes/").json()["results"] == []
    city.refresh_from_db()
    assert city.name == "city"


def test_it_finds_and_renames_the_tag_in_conditions_and_filter_arguments(world, plan):
    # given a draft using the attribute only in a condition, a comparison and a filter
    # argument, and a look-alike in plain text
    draft = _campaign(
        world,
        "Tiers",
        subject="{{ first_name|default:attributes.plan }}",
        html='<p>{% if attributes.plan %}A{% endif %}{% if attributes.plan == "gold" %}B'
        "{% endif %} attributes.plan</p>",
    )

    # when the rename page is opened, it lists the draft
    assert [use.name for use in merge_tags.uses(world.account_a, "plan")] == ["Tiers"]

    # when it is renamed, with the drafts
    services.attribute_rename(
        definition=plan, actor=world.alice, name="tier", update_campaigns=True
    )

    # then every use in a token is rewritten, the plain text is left alone
    draft.refresh_from_db()
    assert draft.subject == "{{ first_name|default:attributes.tier }}"
    assert draft.html == (
        '<p>{% if attributes.tier %}A{% endif %}{% if attributes.tier == "gold" %}B'
        "{% endif %} attributes.plan</p>"
    )
