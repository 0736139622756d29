"""The segments pages and API: the builder's live count and its errors, saving, deleting,
a list made from a segment, the export, and what an outsider or a viewer cannot do."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from accounts.models import AuditEntry
from audiences import services as audience_services
from audiences.models import Segment
from campaigns.models import Campaign
from contacts import services as contact_services
from contacts.models import AttributeDefinition, ContactList, Subscription

HX = {"HTTP_HX_REQUEST": "true"}


def _form(**rows: str) -> dict[str, str]:
    form = {"name": "Lyon people", "r-match": "all"}
    form.update(rows)
    return form


@pytest.fixture
def lyon(world):
    """Three contacts of account A in Lyon (one with a formula for a name), one in Paris."""
    news = world.extras["list"]
    for email, city, first in [
        ("l1@people.test", "Lyon", "Léa"),
        ("l2@people.test", "LYON", "=HYPERLINK(1)"),
        ("l3@people.test", "Lyon", "Luc"),
        ("p1@people.test", "Paris", "Paul"),
    ]:
        contact_services.contact_create(
            account=world.account_a,
            actor=world.alice,
            email=email,
            first_name=first,
            attributes={"city": city},
            lists=[news],
        )
    return world


def test_the_builder_counts_as_the_conditions_change(lyon, alice_client):
    # given the builder, then a condition on the city
    page = alice_client.get(reverse("segment_new"))
    assert page.status_code == 200
    response = alice_client.post(
        reverse("segment_new"),
        _form(**{"r_0-field": "attributes.city", "r_0-op": "is", "r_0-value": "lyon"}),
        **HX,
    )

    # then the fragment alone comes back, with the count and the newest of them
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert 'data-testid="live-count">3<' in body
    assert "l3@people.test" in body
    assert "p1@people.test" not in body

    # and a second condition changes it
    response = alice_client.post(
        reverse("segment_new"),
        _form(
            **{"r_0-field": "attributes.city", "r_0-op": "is", "r_0-value": "lyon"},
            **{"r_1-field": "first_name", "r_1-op": "starts_with", "r_1-value": "l"},
        ),
        **HX,
    )
    assert 'data-testid="live-count">2<' in response.content.decode()


def test_adding_and_removing_conditions_and_groups(lyon, alice_client):
    base = {"r_0-field": "email", "r_0-op": "contains", "r_0-value": "@"}
    added = alice_client.post(
        reverse("segment_new"), _form(**base, action="group:r"), **HX
    ).content.decode()
    assert 'name="r_1-group"' in added
    assert 'name="r_1_0-field"' in added
    removed = alice_client.post(
        reverse("segment_new"),
        _form(**base, **{"r_1-group": "1", "r_1-match": "any"}, action="remove:r_1"),
        **HX,
    ).content.decode()
    assert 'name="r_1-group"' not in removed
    assert 'data-testid="live-count">' in removed


def test_errors_are_shown_beside_the_condition_at_fault(lyon, alice_client):
    response = alice_client.post(
        reverse("segment_new"),
        _form(
            **{"r_0-field": "created_at", "r_0-op": "before", "r_0-value": "2024-02-30"},
            action="save",
        ),
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "is not a date" in body
    assert 'class="segment-row invalid"' in body
    assert not Segment.objects.filter(name="Lyon people").exists()


def test_saving_creates_and_updates_with_an_audit_entry(lyon, alice_client):
    form = _form(**{"r_0-field": "attributes.city", "r_0-op": "is", "r_0-value": "Lyon"})
    response = alice_client.post(reverse("segment_new"), {**form, "action": "save"})
    segment = Segment.objects.get(name="Lyon people")
    assert response.status_code == 302
    assert response.url == reverse("segment_detail", args=[segment.pk])
    assert segment.definition == {
        "match": "all",
        "conditions": [{"field": "attributes.city", "op": "is", "value": "Lyon"}],
    }
    assert AuditEntry.objects.filter(action="segment.created").exists()

    # saving through htmx redirects the browser
    response = alice_client.post(
        reverse("segment_detail", args=[segment.pk]),
        {**form, "name": "Lyonnais", "action": "save"},
        **HX,
    )
    assert response.headers["HX-Redirect"] == reverse("segment_detail", args=[segment.pk])
    segment.refresh_from_db()
    assert segment.name == "Lyonnais"

    # a name taken by another segment is refused, saying so
    response = alice_client.post(
        reverse("segment_new"),
        {**form, "name": "lyonnais", "action": "save"},
    )
    assert "exists already" in response.content.decode()


def test_a_viewer_sees_but_cannot_save(lyon, client, world):
    client.force_login(world.vera, backend="allauth.account.auth_backends.AuthenticationBackend")
    segment = world.extras["segment"]
    assert client.get(reverse("segment_detail", args=[segment.pk])).status_code == 200
    form = _form(**{"r_0-field": "email", "r_0-op": "contains", "r_0-value": "x"})
    client.post(reverse("segment_detail", args=[segment.pk]), {**form, "action": "save"})
    segment.refresh_from_db()
    assert segment.name == "Alpha Sentinel readers in Lyon"
    assert client.post(reverse("segment_delete", args=[segment.pk])).status_code == 403


def test_the_list_page_shows_a_segment_that_needs_fixing(lyon, alice_client, world):
    segment = world.extras["segment"]
    assert alice_client.get(reverse("segments")).status_code == 200
    ok = alice_client.get(reverse("segment_count", args=[segment.pk])).content.decode()
    assert 'data-testid="segment-count">3<' in ok
    contact_services.attribute_delete(
        definition=AttributeDefinition.objects.get(account=world.account_a, name="city"),
        actor=world.alice,
    )
    broken = alice_client.get(reverse("segment_count", args=[segment.pk])).content.decode()
    assert "needs fixing" in broken
    page = alice_client.get(reverse("segment_detail", args=[segment.pk])).content.decode()
    assert "There is no attribute" in page


def test_deleting_asks_first_and_is_refused_while_a_draft_uses_it(lyon, alice_client, world):
    segment = world.extras["segment"]
    url = reverse("segment_delete", args=[segment.pk])
    assert "Delete the segment" in alice_client.get(url).content.decode()
    Campaign.objects.filter(pk=world.extras["campaign"].pk).update(segment=segment)
    alice_client.post(url)
    assert Segment.objects.filter(pk=segment.pk).exists()
    Campaign.objects.filter(pk=world.extras["campaign"].pk).update(segment=None)
    assert alice_client.post(url).status_code == 302
    assert not Segment.objects.filter(pk=segment.pk).exists()
    assert AuditEntry.objects.filter(action="segment.deleted").exists()


def test_a_list_made_from_a_segment_keeps_the_consent_proof(lyon, alice_client, world):
    segment = world.extras["segment"]
    Subscription.objects.filter(contact__email="l3@people.test").update(
        status=Subscription.Status.UNSUBSCRIBED
    )
    response = alice_client.post(
        reverse("segment_to_list", args=[segment.pk]), {"list_name": "Lyon, frozen"}
    )
    made = ContactList.objects.get(account=world.account_a, name="Lyon, frozen")
    assert response.url == reverse("list_detail", args=[made.pk])
    copied = Subscription.objects.filter(contact_list=made)
    assert set(copied.values_list("contact__email", flat=True)) == {
        "l1@people.test",
        "l2@people.test",
    }
    original = Subscription.objects.get(
        contact__email="l1@people.test", contact_list=world.extras["list"]
    )
    mine = copied.get(contact__email="l1@people.test")
    assert (mine.status, mine.source, mine.legal_basis, mine.consent_at, mine.consent_text) == (
        Subscription.Status.SUBSCRIBED,
        original.source,
        original.legal_basis,
        original.consent_at,
        original.consent_text,
    )


@pytest.mark.parametrize(
    "rows",
    [
        {"r_0-field": "attributes.city", "r_0-op": "is", "r_0-value": "x" * 5000},
        {"r_0-field": "opened", "r_0-op": "in_last_days", "r_0-value": "abc"},
        {"r_0-field": "list", "r_0-op": "subscribed", "r_0-value": "9" * 30},
        {"r_0-field": "tag", "r_0-op": "has", "r_0-value": "-1"},
        {"r_0-field": "no_such_field", "r_0-op": "is", "r_0-value": "x"},
        {"r_99999-field": "email", "r_99999-op": "is", "r_99999-value": "x"},
        {"r_0_0_0_0-field": "email", "r_0_0_0_0-op": "is", "r_0_0_0_0-value": "x"},
        {"r_0-field": "attributes.city", "r_0-op": "zz", "r-match": "sideways"},
        {"r_0-field": "clicked", "r_0-op": "ever", "r_0-campaign": "x", "r_0-link": "y"},
        {"r_0-field": "received", "r_0-op": "ever", "r_0-value": "1e99"},
        {"r_0-field": "attributes.city", "r_0-op": "is", "r_0-value": "\x00"},
        {"action": "remove:r_5_6_7"},
        {"action": "add:nowhere"},
        {"description": "a\x00b", "r_0-field": "email", "r_0-op": "is", "r_0-value": "x"},
    ],
)
def test_malformed_builder_input_never_fails(lyon, alice_client, rows):
    for extra in ({}, {"action": "save"}):
        response = alice_client.post(reverse("segment_new"), {**_form(**rows), **extra}, **HX)
        assert response.status_code in (200, 302)


# -- the API ---------------------------------------------------------------------------------


def test_the_api_saves_counts_lists_and_exports(lyon, alice_client):
    definition = {
        "match": "any",
        "conditions": [{"field": "attributes.city", "op": "is", "value": "lyon"}],
    }
    created = alice_client.post(
        "/api/v1/segments/", {"name": "Lyon", "definition": definition}, "application/json"
    )
    assert created.status_code == 201
    segment_id = created.json()["id"]

    counted = alice_client.get(f"/api/v1/segments/{segment_id}/count/").json()
    assert counted["count"] == 3
    page = alice_client.get(f"/api/v1/segments/{segment_id}/contacts/").json()
    assert {c["email"] for c in page["results"]} == {
        "l1@people.test",
        "l2@people.test",
        "l3@people.test",
    }

    exported = alice_client.get(f"/api/v1/segments/{segment_id}/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert {r["email"] for r in rows} == {"l1@people.test", "l2@people.test", "l3@people.test"}
    assert {r["first_name"] for r in rows} >= {"'=HYPERLINK(1)"}  # defused for spreadsheets
    ndjson = alice_client.get(f"/api/v1/segments/{segment_id}/export.ndjson")
    assert b"".join(ndjson.streaming_content).count(b"\n") == 3

    renamed = alice_client.patch(
        f"/api/v1/segments/{segment_id}/", {"name": "Lyonnais"}, "application/json"
    )
    assert renamed.json()["name"] == "Lyonnais"
    assert alice_client.delete(f"/api/v1/segments/{segment_id}/").status_code == 204


def test_the_api_names_the_part_at_fault(lyon, alice_client, world):
    charlie_list = contact_services.list_create(
        account=world.account_b, actor=world.charlie, name="Bravo list"
    )
    response = alice_client.post(
        "/api/v1/segments/",
        {
            "name": "Bad",
            "definition": {
                "match": "all",
                "conditions": [
                    {"field": "attributes.city", "op": "gt", "value": 3},
                    {"match": "any", "conditions": [{"field": "created_at", "op": "on"}]},
                    {"field": "list", "op": "subscribed", "value": charlie_list.pk},
                ],
            },
        },
        "application/json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {
        "definition.conditions.0.op",
        "definition.conditions.1.conditions.0.value",
        "definition.conditions.2.value",
    }
    preview = alice_client.post(
        "/api/v1/segments/preview/",
        {"definition": {"conditions": [{"field": "email", "op": "ends_with", "value": ".test"}]}},
        "application/json",
    )
    assert preview.json()["count"] >= 4


def test_the_api_conflicts_on_a_taken_name_and_a_segment_in_use(lyon, alice_client, world):
    segment = world.extras["segment"]
    taken = alice_client.post(
        "/api/v1/segments/",
        {"name": segment.name.upper(), "definition": {"conditions": []}},
        "application/json",
    )
    assert taken.status_code == 409
    Campaign.objects.filter(pk=world.extras["campaign"].pk).update(segment=segment)
    in_use = alice_client.delete(f"/api/v1/segments/{segment.pk}/")
    assert in_use.status_code == 409
    assert "Alpha Sentinel launch" in in_use.json()["detail"]


def test_another_accounts_segment_is_not_found(lyon, client, world):
    client.force_login(world.charlie, backend="allauth.account.auth_backends.AuthenticationBackend")
    segment = world.extras["segment"]
    for url in (
        f"/api/v1/segments/{segment.pk}/",
        f"/api/v1/segments/{segment.pk}/count/",
        f"/api/v1/segments/{segment.pk}/contacts/",
        f"/api/v1/segments/{segment.pk}/export.csv",
        reverse("segment_detail", args=[segment.pk]),
        reverse("segment_count", args=[segment.pk]),
    ):
        assert client.get(url).status_code == 404, url


def test_a_campaign_takes_a_segment_through_the_api(lyon, alice_client, world):
    segment = world.extras["segment"]
    campaign = world.extras["campaign"]
    response = alice_client.patch(
        f"/api/v1/campaigns/{campaign.pk}/", {"segment": segment.pk}, "application/json"
    )
    assert response.status_code == 200
    assert response.json()["segment"] == segment.pk
    other = audience_services.segment_create(
        account=world.account_b, actor=world.charlie, name="Bravo", definition={"conditions": []}
    )
    refused = alice_client.patch(
        f"/api/v1/campaigns/{campaign.pk}/", {"segment": other.pk}, "application/json"
    )
    assert refused.status_code == 400
