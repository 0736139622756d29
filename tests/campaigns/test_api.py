"""The campaigns API: drafts, test sends, the sending actions and their progress, and
templates, through a bearer key, scoped to the key's account."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry
from campaigns import services
from campaigns.models import Campaign, Template
from campaigns.states import State
from contacts import services as contact_services
from tests.factories import World


def _api(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def _json(client: Client, method: str, url: str, data: dict | None = None):
    return getattr(client, method)(url, data or {}, content_type="application/json")


@pytest.fixture
def api(world: World) -> Client:
    return _api(world.alice_key_secret)


@pytest.fixture
def charlie_api(world: World) -> Client:
    return _api(world.charlie_key_secret)


@pytest.fixture
def campaign(world: World) -> Campaign:
    """Alice's draft, ready to send to erin."""
    draft = world.extras["campaign"]
    draft.lists.set([world.extras["list"]])
    return draft


def _url(campaign: Campaign, action: str = "") -> str:
    return f"/api/v1/campaigns/{campaign.pk}/{action + '/' if action else ''}"


def _sending(campaign: Campaign, django_capture_on_commit_callbacks) -> Campaign:
    with django_capture_on_commit_callbacks(execute=False):
        return services.campaign_start(campaign=campaign, actor=None)


# Campaigns


def test_it_lists_the_accounts_campaigns_with_their_progress(api, world, campaign):
    response = api.get("/api/v1/campaigns/")

    assert response.status_code == 200
    [listed] = response.json()["results"]
    assert listed["name"] == "Alpha Sentinel launch"
    assert listed["status"] == "draft"
    assert listed["lists"] == [world.extras["list"].pk]
    assert listed["actions"] == ["edit", "schedule", "start", "delete"]
    assert listed["progress"]["total"] == 0
    assert "html" not in listed

    assert api.get("/api/v1/campaigns/?status=sent").json()["results"] == []
    assert api.get("/api/v1/campaigns/?status=lost").status_code == 400


def test_a_page_of_campaigns_costs_three_queries_however_many(
    api, world, django_assert_num_queries
):
    for n in range(5):
        services.campaign_create(
            account=world.account_a, actor=None, name=f"C{n}", lists=[world.extras["list"]]
        )

    api.get("/api/v1/campaigns/")  # the key's first use is stamped once

    # the key, the page, the lists of its campaigns
    with django_assert_num_queries(3):
        response = api.get("/api/v1/campaigns/")

    assert len(response.json()["results"]) == 6


def test_it_creates_a_draft_from_a_starter_on_the_given_lists(api, world):
    newsletter = world.extras["list"]

    response = _json(
        api,
        "post",
        "/api/v1/campaigns/",
        {"name": "June", "starter": "newsletter", "lists": [newsletter.pk]},
    )

    assert response.status_code == 201
    body = response.json()
    campaign = Campaign.objects.get(pk=body["id"])
    assert campaign.account == world.account_a
    assert campaign.status == State.DRAFT
    assert list(campaign.lists.all()) == [newsletter]
    assert "This month at" in body["html"]
    assert AuditEntry.objects.filter(account=world.account_a, action="campaign.created").exists()


def test_it_creates_a_draft_from_one_of_the_accounts_templates(api, world):
    template = world.extras["template"]

    response = _json(
        api, "post", "/api/v1/campaigns/", {"name": "From template", "template": template.pk}
    )

    assert response.status_code == 201
    assert response.json()["html"] == "<p>Hi</p>"


def test_it_refuses_another_accounts_list_like_a_missing_one(api, world):
    theirs = contact_services.list_create(
        account=world.account_b, actor=world.charlie, name="Bravo list"
    )

    response = _json(api, "post", "/api/v1/campaigns/", {"name": "X", "lists": [theirs.pk]})

    assert response.status_code == 400
    assert response.json()["errors"] == {"lists": [f"No list with id {theirs.pk}."]}
    assert not Campaign.objects.filter(name="X").exists()


def test_it_shows_a_campaign_with_its_body(api, campaign):
    response = api.get(_url(campaign))

    assert response.status_code == 200
    assert response.json()["html"] == "<p>Hi {{ first_name }}</p>"


def test_it_updates_a_draft_only(api, campaign):
    response = _json(api, "patch", _url(campaign), {"subject": "New subject", "lists": []})

    assert response.status_code == 200
    campaign.refresh_from_db()
    assert campaign.subject == "New subject"
    assert list(campaign.lists.all()) == []

    # once it is sent, nothing changes
    Campaign.objects.filter(pk=campaign.pk).update(status=State.SENT)
    response = _json(api, "patch", _url(campaign), {"subject": "Too late"})

    assert response.status_code == 409
    assert response.json()["detail"] == "“Edit” is not possible while the campaign is sent."
    campaign.refresh_from_db()
    assert campaign.subject == "New subject"


def test_it_refuses_an_unknown_merge_tag_naming_the_field(api, campaign):
    response = _json(api, "patch", _url(campaign), {"subject": "Hi {{ shoe_size }}"})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("subject: ")
    assert "subject" in response.json()["errors"]
    campaign.refresh_from_db()
    assert campaign.subject == "Hello"


def test_it_deletes_a_draft_only(api, campaign, django_capture_on_commit_callbacks):
    other = services.campaign_create(account=campaign.account, actor=None, name="Other")
    assert api.delete(_url(other)).status_code == 204
    assert not Campaign.objects.filter(pk=other.pk).exists()

    _sending(campaign, django_capture_on_commit_callbacks)
    response = api.delete(_url(campaign))

    assert response.status_code == 409
    assert Campaign.objects.filter(pk=campaign.pk).exists()


# Test sends


def test_it_sends_a_test_to_up_to_five_addresses(api, campaign):
    response = _json(
        api, "post", _url(campaign, "test"), {"recipients": ["a@example.com", "b@example.com"]}
    )

    assert response.status_code == 200
    assert response.json() == {"sent": 2, "skipped": []}
    assert sorted(m.to[0] for m in mail.outbox) == ["a@example.com", "b@example.com"]
    assert all(m.subject == "[Test] Hello" for m in mail.outbox)

    mail.outbox.clear()
    six = [f"p{n}@example.com" for n in range(6)]
    response = _json(api, "post", _url(campaign, "test"), {"recipients": six})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("recipients: ")
    assert mail.outbox == []


# Sending actions


def test_it_starts_a_ready_campaign(api, campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(_url(campaign, "start"))

    assert response.status_code == 202
    assert response.json()["status"] == "sending"
    assert response.json()["actions"] == ["pause", "cancel"]
    campaign.refresh_from_db()
    assert campaign.status == State.SENDING
    assert len(callbacks) == 1
    entry = AuditEntry.objects.get(account=campaign.account, action="campaign.started")
    assert "Alpha Sentinel key" in entry.actor_label


def test_it_refuses_to_start_with_every_reason_in_the_body(api, world):
    draft = world.extras["campaign"]  # no list
    world.account_a.postal_address = ""
    world.account_a.save()

    response = api.post(_url(draft, "start"))

    assert response.status_code == 400
    reasons = response.json()["errors"]["non_field_errors"]
    assert "Choose at least one list, or a segment." in reasons
    assert any("postal address" in r for r in reasons)
    assert response.json()["detail"] == reasons[0]
    draft.refresh_from_db()
    assert draft.status == State.DRAFT


def test_it_schedules_at_an_instant_with_its_offset(api, campaign):
    response = _json(
        api, "post", _url(campaign, "schedule"), {"scheduled_at": "2031-07-01T09:30:00+02:00"}
    )

    assert response.status_code == 200
    assert response.json()["status"] == "scheduled"
    campaign.refresh_from_db()
    assert campaign.scheduled_at == dt.datetime(2031, 7, 1, 7, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("when", "error"),
    [
        ("2031-07-01T09:30:00", "Give the time with its offset"),
        ("2001-07-01T09:30:00+02:00", "Choose a time at least a minute from now."),
        ("next tuesday", "Datetime has wrong format"),
    ],
)
def test_it_refuses_a_schedule_without_offset_or_in_the_past(api, campaign, when, error):
    response = _json(api, "post", _url(campaign, "schedule"), {"scheduled_at": when})

    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"scheduled_at: {error}")
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT


def test_it_unschedules_a_scheduled_campaign(api, campaign):
    services.campaign_schedule(
        campaign=campaign, actor=None, when=timezone.now() + dt.timedelta(days=1)
    )

    response = api.post(_url(campaign, "unschedule"))

    assert response.status_code == 200
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == (State.DRAFT, None)


def test_it_pauses_resumes_and_cancels(api, campaign, django_capture_on_commit_callbacks):
    _sending(campaign, django_capture_on_commit_callbacks)

    assert api.post(_url(campaign, "pause")).json()["status"] == "paused"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post(_url(campaign, "resume"))
    assert (response.status_code, response.json()["status"]) == (202, "sending")
    assert len(callbacks) == 1
    assert api.post(_url(campaign, "cancel")).json()["status"] == "cancelled"

    campaign.refresh_from_db()
    assert campaign.status == State.CANCELLED
    assert campaign.finished_at is not None


@pytest.mark.parametrize("action", ["pause", "resume", "unschedule", "cancel"])
def test_it_answers_409_to_an_action_the_state_does_not_allow(api, campaign, action):
    response = api.post(_url(campaign, action))

    assert response.status_code == 409
    assert "not possible while the campaign is draft" in response.json()["detail"]
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT


def test_it_reports_the_progress_from_the_counters(api, campaign):
    # given a campaign that has handled 500 of its 1,000 recipients in the 100 seconds
    # since it started (the clock stands still: the rate does not depend on how fast the
    # test runs)
    now = timezone.now()
    started = now - dt.timedelta(seconds=100)
    Campaign.objects.filter(pk=campaign.pk).update(
        status=State.SENDING,
        started_at=started,
        snapshot_at=started,
        recipients_count=1000,
        excluded_count=3,
        sent_count=480,
        failed_count=20,
    )

    with time_machine.travel(now, tick=False):
        response = api.get(_url(campaign, "progress"))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "sending"
    assert body["excluded"] == 3
    progress = body["progress"]
    assert (progress["total"], progress["sent"], progress["failed"], progress["remaining"]) == (
        1000,
        480,
        20,
        500,
    )
    assert progress["percent"] == 50
    assert progress["rate"] == 5.0
    assert progress["seconds_left"] == 100
    assert progress["finished"] is False


# Permissions and scoping


def test_a_read_only_key_reads_but_cannot_send(viewer_api, campaign):
    assert viewer_api.get(_url(campaign)).status_code == 200
    assert viewer_api.get(_url(campaign, "progress")).status_code == 200

    assert viewer_api.post(_url(campaign, "start")).status_code == 403
    assert _json(viewer_api, "patch", _url(campaign), {"name": "Hacked"}).status_code == 403
    campaign.refresh_from_db()
    assert (campaign.status, campaign.name) == (State.DRAFT, "Alpha Sentinel launch")


def test_another_accounts_key_gets_404_for_everything(charlie_api, campaign):
    for method, action in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("get", "progress"),
        ("post", "test"),
        ("post", "start"),
        ("post", "schedule"),
        ("post", "pause"),
        ("post", "cancel"),
    ]:
        response = _json(charlie_api, method, _url(campaign, action))
        assert response.status_code == 404, (method, action)
        assert response.json() == {"detail": "Not found."}

    assert charlie_api.get("/api/v1/campaigns/").json()["results"] == []
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT


# Templates


def test_it_keeps_a_campaign_as_a_template_then_replaces_it(api, world, campaign):
    response = _json(api, "post", "/api/v1/templates/", {"campaign": campaign.pk, "name": "Hi"})

    assert response.status_code == 201
    template = Template.objects.get(pk=response.json()["id"])
    assert (template.account, template.html) == (world.account_a, campaign.html)

    response = _json(api, "post", "/api/v1/templates/", {"campaign": campaign.pk, "name": "Hi"})
    assert (response.status_code, response.json()["id"]) == (200, template.pk)


def test_it_lists_shows_and_deletes_templates(api, world):
    template = world.extras["template"]

    [listed] = api.get("/api/v1/templates/").json()["results"]
    assert listed["name"] == "Alpha Sentinel template"
    assert api.get(f"/api/v1/templates/{template.pk}/").json()["html"] == "<p>Hi</p>"

    assert api.delete(f"/api/v1/templates/{template.pk}/").status_code == 204
    assert not Template.objects.filter(pk=template.pk).exists()


def test_it_keeps_templates_from_another_account(charlie_api, world, campaign):
    template = world.extras["template"]

    assert charlie_api.get(f"/api/v1/templates/{template.pk}/").status_code == 404
    assert charlie_api.delete(f"/api/v1/templates/{template.pk}/").status_code == 404
    assert charlie_api.get("/api/v1/templates/").json()["results"] == []
    # nor may a template be made from another account's campaign
    response = _json(
        charlie_api, "post", "/api/v1/templates/", {"campaign": campaign.pk, "name": "Stolen"}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"campaign": [f"No campaign with id {campaign.pk}."]}
    assert Template.objects.filter(pk=template.pk).exists()
    assert not Template.objects.filter(name="Stolen").exists()


def test_it_refuses_control_characters_in_a_template_name(api, world):
    campaign = world.extras["campaign"]

    response = _json(
        api, "post", "/api/v1/templates/", {"campaign": campaign.pk, "name": "Hi\nBcc: x@y.z"}
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["name"]
    assert not Template.objects.filter(account=world.account_a, name__startswith="Hi").exists()
