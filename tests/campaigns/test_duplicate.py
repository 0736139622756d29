"""Duplicating a campaign: a new draft with the content, tracking settings and audience of
the original, in any state, and nothing of its send; editors only, the account's only."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import AUDIT_LABELS, AuditEntry
from campaigns import services
from campaigns.models import Campaign
from campaigns.states import State
from tests.factories import World

# Fields of a campaign a duplicate never copies: who and when it is, and its send.
NOT_COPIED = {
    "id",
    "account",
    "name",
    "lists",
    "segment",
    "status",
    "scheduled_at",
    "started_at",
    "finished_at",
    "snapshot_at",
    "recipients_count",
    "excluded_count",
    "sent_count",
    "failed_count",
    "skipped_count",
    "failure_reason",
    "created_by",
    "created_at",
    "updated_at",
    "public_archive",  # each campaign is published on purpose
    "kind",  # a copy of a journey's email is a campaign of its own
}


@pytest.fixture
def sent(world: World) -> Campaign:
    """A campaign of account A that was sent, with every content field set."""
    campaign = services.campaign_create(
        account=world.account_a,
        actor=world.alice,
        name="Autumn roast",
        subject="The autumn roast, {{ first_name }}",
        preheader="Three origins",
        from_name="Alpha Roasters",
        from_email="news@alpha.test",
        reply_to="hello@alpha.test",
        html='<p>Hi {{ first_name }}</p><a href="https://shop.example.com/autumn">Shop</a>',
        text="Hi {{ first_name }}, see https://shop.example.com/autumn",
        text_is_custom=True,
        track_opens=False,
        track_clicks=True,
        segment=world.extras["segment"],
        lists=[world.extras["list"]],
    )
    now = timezone.now()
    Campaign.objects.filter(pk=campaign.pk).update(
        status=State.SENT,
        scheduled_at=now,
        started_at=now,
        finished_at=now,
        snapshot_at=now,
        recipients_count=120,
        excluded_count=3,
        sent_count=110,
        failed_count=4,
        skipped_count=6,
        failure_reason="Some reason",
    )
    campaign.refresh_from_db()
    return campaign


def test_every_field_of_a_campaign_is_either_copied_or_part_of_its_send():
    # A field added to Campaign must be named in CONTENT_FIELDS or here, on purpose.
    fields = {field.name for field in Campaign._meta.get_fields() if field.concrete}
    assert fields - NOT_COPIED == set(services.CONTENT_FIELDS)


def test_it_duplicates_content_and_audience_and_nothing_of_the_send(bob_client, world, sent):
    # when bob duplicates the sent campaign from its page
    response = bob_client.post(f"/campaigns/{sent.pk}/duplicate/", follow=True)

    # then he lands on a new draft, told so
    copy = Campaign.objects.exclude(pk=sent.pk).get(
        account=world.account_a, name__startswith="Copy"
    )
    assert response.redirect_chain[-1][0] == f"/campaigns/{copy.pk}/"
    assert "“Copy of Autumn roast” is a new draft" in response.content.decode()
    # with the same content, tracking settings and audience
    assert copy.name == "Copy of Autumn roast"
    for field in services.CONTENT_FIELDS:
        assert getattr(copy, field) == getattr(sent, field), field
    assert copy.segment == sent.segment
    assert list(copy.lists.all()) == [world.extras["list"]]
    assert [link.url for link in copy.links.all()] == ["https://shop.example.com/autumn"]
    # and nothing of the send
    assert copy.status == State.DRAFT
    assert (copy.scheduled_at, copy.started_at, copy.finished_at, copy.snapshot_at) == (
        None,
        None,
        None,
        None,
    )
    assert (
        copy.recipients_count,
        copy.excluded_count,
        copy.sent_count,
        copy.failed_count,
        copy.skipped_count,
        copy.failure_reason,
    ) == (0, 0, 0, 0, 0, "")
    assert not copy.deliveries.exists()
    assert copy.created_by == world.bob
    # and the original is untouched
    sent.refresh_from_db()
    assert (sent.status, sent.sent_count) == (State.SENT, 110)


def test_it_audits_the_duplicate(bob_client, world, sent):
    bob_client.post(f"/campaigns/{sent.pk}/duplicate/")

    entry = AuditEntry.objects.get(account=world.account_a, action="campaign.duplicated")
    assert entry.actor == world.bob
    assert entry.detail["name"] == "Copy of Autumn roast"
    assert entry.detail["source_id"] == sent.pk
    assert "campaign.duplicated" in AUDIT_LABELS


def test_it_trims_the_name_to_the_fields_length(world):
    campaign = services.campaign_create(account=world.account_a, actor=world.alice, name="N" * 200)

    copy = services.campaign_duplicate(campaign=campaign, actor=world.alice)

    assert copy.name == ("Copy of " + "N" * 200)[:200]


def test_the_page_offers_duplicate_in_any_state_to_editors_only(
    bob_client, vera_client, world, sent
):
    draft = world.extras["campaign"]
    for campaign in (draft, sent):
        page = bob_client.get(f"/campaigns/{campaign.pk}/").content.decode()
        assert f'action="/campaigns/{campaign.pk}/duplicate/"' in page
    viewer_page = vera_client.get(f"/campaigns/{sent.pk}/").content.decode()
    assert "/duplicate/" not in viewer_page


def test_the_api_answers_the_new_draft_as_get_does(alice_client, world, sent):
    response = alice_client.post(f"/api/v1/campaigns/{sent.pk}/duplicate/")

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Copy of Autumn roast"
    assert body["status"] == "draft"
    assert body["segment"] == world.extras["segment"].pk
    assert body["lists"] == [world.extras["list"].pk]
    assert body == alice_client.get(f"/api/v1/campaigns/{body['id']}/").json()


def test_a_viewer_cannot_duplicate(vera_client, viewer_api, world, sent):
    assert vera_client.post(f"/campaigns/{sent.pk}/duplicate/").status_code == 403
    assert viewer_api.post(f"/api/v1/campaigns/{sent.pk}/duplicate/").status_code == 403
    assert Campaign.objects.filter(account=world.account_a, name__startswith="Copy").count() == 0


def test_another_account_cannot_duplicate_the_campaign(charlie_client, world, sent):
    assert charlie_client.post(f"/campaigns/{sent.pk}/duplicate/").status_code == 404
    assert charlie_client.post(f"/api/v1/campaigns/{sent.pk}/duplicate/").status_code == 404
    assert not Campaign.objects.filter(name__startswith="Copy").exists()
