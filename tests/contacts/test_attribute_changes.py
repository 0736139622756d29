"""Renaming, retyping and deleting an attribute: refused while a campaign using its merge
tag is being sent, one change at a time, a name taken meanwhile answered as a taken name,
and every message in plain words."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEntry
from campaigns.models import Campaign
from campaigns.states import State
from contacts import merge_tags, services
from contacts.models import AttributeDefinition, Contact
from tests.factories import World

BODY = "<p>Your {{ attributes.plan }} plan</p>"


def _campaign(world: World, name: str, status: str, html: str = BODY) -> Campaign:
    return Campaign.objects.create(
        account=world.account_a,
        name=name,
        subject="Hello",
        from_email="news@alpha.test",
        html=html,
        text="Hi",
        status=status,
    )


@pytest.fixture
def plan(world: World) -> AttributeDefinition:
    """A text attribute two contacts hold."""
    definition = services.attribute_define(
        account=world.account_a, actor=world.alice, name="plan", type="text"
    )
    for email, value in (("ann@example.com", "gold"), ("bob@example.com", "12")):
        services.contact_create(
            account=world.account_a, actor=world.alice, email=email, attributes={"plan": value}
        )
    return definition


def _assert_unchanged(world: World, plan: AttributeDefinition, *campaigns: Campaign) -> None:
    plan.refresh_from_db()
    assert (plan.name, plan.type) == ("plan", "text")
    values = dict(
        Contact.objects.filter(account=world.account_a, email__endswith="@example.com").values_list(
            "email", "attributes"
        )
    )
    assert values == {"ann@example.com": {"plan": "gold"}, "bob@example.com": {"plan": "12"}}
    for campaign in campaigns:
        body = Campaign.objects.get(pk=campaign.pk).html
        assert body == campaign.html
    assert not AuditEntry.objects.filter(
        account=world.account_a,
        action__in=["attribute.renamed", "attribute.retyped", "attribute.deleted"],
    ).exists()


def _api(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


# Campaigns being sent


@pytest.mark.parametrize("status", [State.SENDING, State.PAUSED])
def test_it_refuses_every_change_while_a_campaign_using_the_tag_is_being_sent(world, plan, status):
    # given a campaign being sent (or paused mid-send) and a draft, both using the tag
    sending = _campaign(world, "Spring", status)
    draft = _campaign(world, "Draft", State.DRAFT)

    # when the attribute is renamed (drafts too), retyped or deleted, each is refused
    # naming the campaign
    changes = (
        lambda: services.attribute_rename(
            definition=plan, actor=world.alice, name="tier", update_campaigns=True
        ),
        lambda: services.attribute_retype(
            definition=plan, actor=world.alice, type="number", drop_invalid=True
        ),
        lambda: services.attribute_delete(definition=plan, actor=world.alice),
    )
    for change in changes:
        with pytest.raises(services.AttributeInUse) as refused:
            change()
        assert f"“Spring” ({status})" in refused.value.messages[0]
        assert "has not finished sending" in refused.value.messages[0]

    # then nothing changed: the name, the type, the values, the campaigns' bodies
    _assert_unchanged(world, plan, sending, draft)


def test_it_names_every_campaign_being_sent_and_ignores_those_sent(world, plan):
    _campaign(world, "Spring", State.SENDING)
    _campaign(world, "Autumn", State.PAUSED)
    _campaign(world, "Winter", State.SENT)
    _campaign(world, "Summer", State.CANCELLED)

    with pytest.raises(services.AttributeInUse) as refused:
        services.attribute_delete(definition=plan, actor=world.alice)

    assert refused.value.messages == [
        "The campaigns “Autumn” (paused) and “Spring” (sending) use {{ attributes.plan }} "
        "and have not finished sending: the attribute cannot be renamed, retyped or "
        "deleted until they are sent or cancelled."
    ]

    # once they are sent, the attribute may change
    Campaign.objects.filter(status__in=[State.SENDING, State.PAUSED]).update(status=State.SENT)
    assert services.attribute_delete(definition=plan, actor=world.alice) == 2


def test_it_locks_the_definition_and_the_campaigns_using_the_tag(world, plan):
    _campaign(world, "Draft", State.DRAFT)

    with CaptureQueriesContext(connection) as queries:
        services.attribute_rename(
            definition=plan, actor=world.alice, name="tier", update_campaigns=True
        )

    locked = [q["sql"] for q in queries if q["sql"].endswith("FOR UPDATE")]
    assert any('FROM "contacts_attributedefinition"' in sql for sql in locked)
    # the campaigns are locked before the check of their state, so none starts meanwhile
    assert any('FROM "campaigns_campaign"' in sql and "sending" in sql for sql in locked)


def test_it_lists_campaigns_being_sent_on_the_confirmation_pages(bob_client, world, plan):
    _campaign(world, "Spring", State.SENDING)
    _campaign(world, "Autumn", State.PAUSED)

    for url in (
        f"/attributes/{plan.pk}/rename/",
        f"/attributes/{plan.pk}/type/?type=number",
        f"/attributes/{plan.pk}/delete/",
    ):
        page = bob_client.get(url).content.decode()
        assert "Spring</a> (sending)" in page
        assert "Autumn</a> (paused)" in page
        assert 'id="attribute-blocked"' in page
        assert "have not finished sending" in page
        assert " disabled>" in page


@pytest.mark.parametrize("status", [State.SENDING, State.PAUSED])
def test_it_refuses_changes_on_the_pages_while_a_campaign_is_being_sent(
    bob_client, world, plan, status
):
    sending = _campaign(world, "Spring", status)
    draft = _campaign(world, "Draft", State.DRAFT)

    for url, data in (
        (f"/attributes/{plan.pk}/rename/", {"name": "tier", "update_campaigns": "on"}),
        (f"/attributes/{plan.pk}/type/", {"type": "number", "drops": "1"}),
        (f"/attributes/{plan.pk}/delete/", {}),
    ):
        response = bob_client.post(url, data)
        page = response.content.decode()
        assert response.status_code == 409
        assert f"The campaign “Spring” ({status}) uses" in page

    _assert_unchanged(world, plan, sending, draft)


@pytest.mark.parametrize("status", [State.SENDING, State.PAUSED])
def test_it_refuses_changes_through_the_api_while_a_campaign_is_being_sent(world, plan, status):
    sending = _campaign(world, "Spring", status)
    api = _api(world.alice_key_secret)
    url = f"/api/v1/attributes/{plan.pk}/"

    # the attribute lists the campaign, as being sent
    campaigns = api.get(url).json()["campaigns"]
    assert [(c["name"], c["sending"], c["editable"]) for c in campaigns] == [
        ("Spring", True, False)
    ]

    for body in (
        {"name": "tier", "update_campaigns": True},
        {"type": "number", "drop_invalid_values": True},
        {"label": "Plan", "name": "tier"},
    ):
        response = api.patch(url, body, content_type="application/json")
        assert response.status_code == 409
        error = response.json()
        assert f"“Spring” ({status})" in error["detail"]
        assert error["errors"] == {"non_field_errors": [error["detail"]]}
    response = api.delete(url)
    assert response.status_code == 409
    assert "has not finished sending" in response.json()["detail"]

    _assert_unchanged(world, plan, sending)
    assert plan.label == ""


# A name taken by another change at the same time


def test_it_answers_a_name_taken_meanwhile_as_a_taken_name(world, plan):
    # given another attribute named "town", which the checks before saving miss, as
    # they would when it is created between the check and the save
    services.attribute_define(account=world.account_a, actor=world.alice, name="town", type="text")

    with mock.patch.object(services, "_name_taken", return_value=False):
        # when "plan" is renamed to it, the unique constraint refuses, with the message
        with pytest.raises(ValidationError) as refused:
            services.attribute_rename(
                definition=plan, actor=world.alice, name="town", update_campaigns=False
            )
        assert refused.value.message_dict == {"name": ["An attribute named “town” already exists."]}

        # and so is a second declaration of it
        with pytest.raises(ValidationError) as refused:
            services.attribute_define(
                account=world.account_a, actor=world.alice, name="town", type="number"
            )
        assert refused.value.message_dict == {"name": ["An attribute named “town” already exists."]}

    _assert_unchanged(world, plan)
    assert AttributeDefinition.objects.filter(account=world.account_a, name="town").count() == 1


def test_it_shows_a_name_taken_meanwhile_on_the_form_and_as_a_409(bob_client, world, plan):
    services.attribute_define(account=world.account_a, actor=world.alice, name="town", type="text")
    api = _api(world.alice_key_secret)

    with mock.patch.object(services, "_name_taken", return_value=False):
        response = bob_client.post(f"/attributes/{plan.pk}/rename/", {"name": "town"})
        assert response.status_code == 400
        assert "An attribute named “town” already exists." in response.content.decode()

        response = bob_client.post("/attributes/", {"name": "town", "type": "text"})
        assert response.status_code == 200
        assert "An attribute named “town” already exists." in response.content.decode()

        response = api.patch(
            f"/api/v1/attributes/{plan.pk}/", {"name": "town"}, content_type="application/json"
        )
        assert response.status_code == 409
        assert response.json()["errors"] == {"name": ["An attribute named “town” already exists."]}

        response = api.post(
            "/api/v1/attributes/", {"name": "town", "type": "text"}, content_type="application/json"
        )
        assert response.status_code == 409
        assert response.json()["detail"] == "name: An attribute named “town” already exists."

    _assert_unchanged(world, plan)


# Wording


def test_it_counts_the_drafts_updated_in_plain_words(bob_client, world, plan):
    _campaign(world, "One", State.DRAFT)

    response = bob_client.post(
        f"/attributes/{plan.pk}/rename/", {"name": "tier", "update_campaigns": "on"}, follow=True
    )
    assert "“plan” is now “tier”; 1 draft campaign updated." in response.content.decode()

    _campaign(world, "Two", State.DRAFT, html="{{ attributes.tier }}")
    response = bob_client.post(
        f"/attributes/{plan.pk}/rename/", {"name": "level", "update_campaigns": "on"}, follow=True
    )
    page = response.content.decode()
    assert "“tier” is now “level”; 2 draft campaigns updated." in page
    assert "(s)" not in page


def test_it_says_how_many_values_a_deletion_took(alice_client, world, plan):
    response = alice_client.post(f"/attributes/{plan.pk}/delete/", follow=True)

    page = response.content.decode()
    assert "Attribute “plan” deleted, with 2 values." in page
    assert "(s)" not in page

    single = services.attribute_define(
        account=world.account_a, actor=world.alice, name="tier", type="text"
    )
    Contact.objects.filter(email="ann@example.com").update(attributes={"tier": "gold"})
    response = alice_client.post(f"/attributes/{single.pk}/delete/", follow=True)
    assert "Attribute “tier” deleted, with 1 value." in response.content.decode()


def test_it_refuses_a_rename_to_the_name_it_has(bob_client, world, plan):
    response = bob_client.post(f"/attributes/{plan.pk}/rename/", {"name": "plan"})

    page = response.content.decode()
    assert response.status_code == 400
    assert "That is already its name." in page
    assert "is now" not in page
    _assert_unchanged(world, plan)


def test_it_finds_the_tag_in_campaigns_of_every_unfinished_state(world, plan):
    for status in (State.DRAFT, State.SCHEDULED, State.SENDING, State.PAUSED, State.SENT):
        _campaign(world, status.label, status)

    uses = merge_tags.uses(world.account_a, "plan")

    assert [(u.name, u.editable, u.sending) for u in uses] == [
        ("Draft", True, False),
        ("Paused", False, True),
        ("Scheduled", False, False),
        ("Sending", False, True),
    ]


@pytest.mark.parametrize("name", ["email", "full_name", "unsubscribe_url"])
def test_it_refuses_to_declare_an_attribute_under_a_built_in_name(world, alice_client, name):
    response = alice_client.post("/attributes/", {"name": name, "label": "X", "type": "text"})

    assert response.status_code == 200
    assert "is a built-in field" in response.content.decode()
    assert not AttributeDefinition.objects.filter(account=world.account_a, name=name).exists()
