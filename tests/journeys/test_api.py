"""The journeys and events API: journeys made, changed, published, started, paused,
resumed, closed and deleted; the draft's steps; contacts put in and taken out; events
recorded once per Idempotency-Key. Through a bearer key, scoped to the key's account."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEntry
from campaigns.models import Campaign
from campaigns.states import State
from contacts import services as contact_services
from contacts import tagging
from contacts.models import Contact
from journeys import services
from journeys.api.serializers import (
    EnrollmentDetailSerializer,
    EventRecordedSerializer,
    JourneyDetailSerializer,
)
from journeys.models import ContactEvent, Enrollment, Journey
from tests.factories import World

WAIT_ID = "s0a1b2c3d4"  # the wait step of the world's journey


def _api(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def _json(client: Client, method: str, url: str, data: object = None, **headers: str):
    return getattr(client, method)(
        url, data if data is not None else {}, content_type="application/json", **headers
    )


@pytest.fixture
def api(world: World) -> Client:
    return _api(world.alice_key_secret)


@pytest.fixture
def charlie_api(world: World) -> Client:
    return _api(world.charlie_key_secret)


@pytest.fixture
def live(world: World) -> Journey:
    """Alice's live journey, erin inside it at its wait step."""
    return world.extras["journey"]


def _url(journey: Journey, action: str = "") -> str:
    return f"/api/v1/journeys/{journey.pk}/{action + '/' if action else ''}"


def _draft(api: Client, world: World, **fields: object) -> Journey:
    body = {
        "name": "Welcome",
        "trigger": "subscribed",
        "trigger_config": {"list": world.extras["list"].pk},
        **fields,
    }
    response = _json(api, "post", "/api/v1/journeys/", body)
    assert response.status_code == 201, response.json()
    return Journey.objects.get(pk=response.json()["id"])


def _subscriber(world: World, email: str) -> Contact:
    return contact_services.contact_create(
        account=world.account_a, actor=None, email=email, lists=[world.extras["list"]]
    )


def _ready_email(api: Client, journey: Journey) -> dict:
    """An email step whose message can be sent, written through the campaigns API."""
    step = _json(api, "post", _url(journey, "steps"), {"type": "email"}).json()
    response = _json(
        api,
        "patch",
        f"/api/v1/campaigns/{step['campaign']}/",
        {"subject": "Welcome aboard", "from_email": "news@alpha.test"},
    )
    assert response.status_code == 200, response.json()
    return step


# -- journeys ---------------------------------------------------------------------------------


def test_it_lists_the_accounts_journeys_filtered_by_status(api, live):
    response = api.get("/api/v1/journeys/")

    assert response.status_code == 200
    [listed] = response.json()["results"]
    assert listed["name"] == "Alpha Sentinel onboarding"
    assert listed["status"] == "live"
    assert listed["version"] == 1
    assert listed["trigger_config"] == {"event": "alpha_sentinel.signup"}
    assert api.get("/api/v1/journeys/?status=live").json()["results"] == [listed]
    assert api.get("/api/v1/journeys/?status=draft").json()["results"] == []
    refused = api.get("/api/v1/journeys/?status=lost")
    assert refused.status_code == 400
    assert "status" in refused.json()["errors"]


def test_it_creates_a_draft_whose_trigger_is_checked_against_the_account(api, world):
    newsletter = world.extras["list"]

    response = _json(
        api,
        "post",
        "/api/v1/journeys/",
        {"name": "Welcome", "trigger": "subscribed", "trigger_config": {"list": newsletter.pk}},
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == set(JourneyDetailSerializer().fields)
    assert body["status"] == "draft"
    assert body["version"] is None
    assert body["published_steps"] is None
    assert body["steps"] == []
    assert body["actions"] == ["edit", "publish", "start", "delete"]
    assert body["problems"] == ["Add at least one step."]
    journey = Journey.objects.get(pk=body["id"])
    assert journey.account == world.account_a
    assert journey.trigger_config == {"list": newsletter.pk}
    assert AuditEntry.objects.filter(account=world.account_a, action="journey.created").exists()


def test_it_refuses_a_trigger_naming_another_accounts_list(api, world):
    theirs = contact_services.list_create(
        account=world.account_b, actor=world.charlie, name="Bravo list"
    )

    response = _json(
        api,
        "post",
        "/api/v1/journeys/",
        {"name": "Sneaky", "trigger": "subscribed", "trigger_config": {"list": theirs.pk}},
    )

    assert response.status_code == 400
    assert response.json()["errors"]["trigger_config"] == [
        "There is no such a list in this account."
    ]
    assert not Journey.objects.filter(name="Sneaky").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "Two\nlines"}, "name"),
        ({"name": "Rule", "entry": "twice"}, "entry"),
        ({"name": "Trigger", "trigger": "moon_phase"}, "trigger"),
        ({"name": "Config", "trigger": "event", "trigger_config": {"event": "has space"}}, None),
        ({"name": "Config", "trigger_config": "list 5"}, "trigger_config"),
        ({"name": "Typo", "trigerr": "event"}, "trigerr"),
        ({"name": "Both", "starter": "welcome", "entry": "once"}, "entry"),
        ({"name": 12}, "name"),
    ],
)
def test_it_refuses_a_bad_journey_naming_the_field(api, body, field):
    response = _json(api, "post", "/api/v1/journeys/", body)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert (field or "trigger_config") in errors
    assert not Journey.objects.filter(name=body["name"]).exists()


def test_it_refuses_a_body_that_is_not_json_or_not_an_object(api):
    broken = api.post("/api/v1/journeys/", "{name: oops", content_type="application/json")
    a_list = _json(api, "post", "/api/v1/journeys/", ["Welcome"])

    assert broken.status_code == 400
    assert "JSON parse error" in broken.json()["detail"]
    assert a_list.status_code == 400


def test_it_makes_a_journey_from_a_starter_with_its_emails(api, world):
    response = _json(api, "post", "/api/v1/journeys/", {"name": "Hello", "starter": "welcome"})

    assert response.status_code == 201
    steps = response.json()["steps"]
    assert [s["type"] for s in steps] == ["email", "wait", "email", "wait", "email"]
    emails = Campaign.objects.filter(pk__in=[s["campaign"] for s in steps if "campaign" in s])
    assert {c.kind for c in emails} == {Campaign.Kind.JOURNEY}
    assert {c.account_id for c in emails} == {world.account_a.pk}
    assert "Trigger: Choose a list." in response.json()["problems"]


def test_it_shows_a_journey_with_its_steps_totals_and_figures(api, live, world):
    response = api.get(_url(live))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(JourneyDetailSerializer().fields)
    assert body["version"] == 1
    assert body["published_steps"] == body["steps"] == live.draft
    assert body["draft_changed"] is False
    assert body["totals"] == {"inside": 1, "completed": 0, "exited": 0, "entered": 1}
    assert body["figures"][WAIT_ID] == {"reached": 0, "waiting": 1, "passed": 0, "email": None}
    assert body["actions"] == ["edit", "publish", "pause", "close", "enroll", "delete"]
    assert body["problems"] == []
    assert body["goal"] is None
    assert body["lists"] == []


def test_it_changes_the_settings_given_and_keeps_the_others(api, live, world):
    newsletter = world.extras["list"]

    response = _json(
        api,
        "patch",
        _url(live),
        {
            "name": "Onboarding 2",
            "goal": {"event": "order_placed"},
            "lists": [newsletter.pk],
            "exit_on_unsubscribe": False,
        },
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["goal"], body["lists"]) == (
        "Onboarding 2",
        {"event": "order_placed"},
        [newsletter.pk],
    )
    assert body["exit_on_unsubscribe"] is False
    assert body["trigger_config"] == {"event": "alpha_sentinel.signup"}
    live.refresh_from_db()
    assert live.goal == {"event": "order_placed"}


def test_it_refuses_settings_it_cannot_take(api, live, world):
    theirs = contact_services.list_create(
        account=world.account_b, actor=world.charlie, name="Bravo list"
    )

    another_list = _json(api, "patch", _url(live), {"lists": [theirs.pk]})
    bad_goal = _json(api, "patch", _url(live), {"goal": {"segment": 10**12}})
    two_goals = _json(api, "patch", _url(live), {"goal": {"event": "a", "segment": 1}})
    new_trigger = _json(api, "patch", _url(live), {"trigger": "tag_added"})
    new_rule = _json(api, "patch", _url(live), {"entry": "every_time"})

    assert another_list.status_code == 400
    assert another_list.json()["errors"]["lists"] == [f"No list with id {theirs.pk}."]
    assert bad_goal.status_code == 400
    assert "goal" in bad_goal.json()["errors"]
    assert two_goals.status_code == 400
    # the trigger and the entry rule of a journey that started cannot change
    assert new_trigger.status_code == 409
    assert "trigger" in new_trigger.json()["detail"]
    assert new_rule.status_code == 409
    live.refresh_from_db()
    assert (live.trigger, live.entry, live.goal) == ("event", "once", None)


def test_an_ended_journey_cannot_change(api, live):
    services.journey_close(journey=live, actor=None, inside="remove")

    response = _json(api, "patch", _url(live), {"name": "Again"})

    assert response.status_code == 409
    assert "ended" in response.json()["detail"]


def test_it_deletes_a_journey_with_contacts_inside_only_when_told(api, live):
    refused = api.delete(_url(live))

    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "1 contact is inside: say to take them out, or end the journey and let them finish first."
    )
    assert Journey.objects.filter(pk=live.pk).exists()

    bad = api.delete(_url(live) + "?inside=keep")
    assert bad.status_code == 400

    deleted = api.delete(_url(live) + "?inside=remove")
    assert deleted.status_code == 204
    assert not Journey.objects.filter(pk=live.pk).exists()
    assert not Enrollment.objects.filter(journey_id=live.pk).exists()


def test_it_deletes_a_draft_and_its_emails(api, world):
    journey = _draft(api, world)
    step = _json(api, "post", _url(journey, "steps"), {"type": "email"}).json()

    response = api.delete(_url(journey))

    assert response.status_code == 204
    assert not Journey.objects.filter(pk=journey.pk).exists()
    assert not Campaign.objects.filter(pk=step["campaign"]).exists()


# -- the draft's steps ------------------------------------------------------------------------


def test_it_replaces_the_draft_keeping_ids_and_giving_new_steps_theirs(api, live, world):
    tag = world.extras["tag"]
    steps = [
        {"id": WAIT_ID, "type": "wait", "amount": 3, "unit": "days"},
        {
            "type": "condition",
            "event": [{"property": "plan", "op": "equals", "value": "pro"}],
            "yes": [{"type": "tag", "action": "add", "tag": tag.pk}],
            "no": [{"type": "exit"}],
        },
    ]

    response = _json(api, "put", _url(live, "steps"), {"steps": steps})

    assert response.status_code == 200
    saved = response.json()["steps"]
    assert saved[0] == {"id": WAIT_ID, "type": "wait", "amount": 3, "unit": "days"}
    condition = saved[1]
    assert condition["id"].startswith("s")
    assert condition["yes"][0]["tag"] == tag.pk
    assert condition["no"][0]["type"] == "exit"
    live.refresh_from_db()
    assert live.draft == saved
    assert api.get(_url(live)).json()["draft_changed"] is True
    # contacts inside go on in the published version until the draft is published
    assert live.version.steps == [{"id": WAIT_ID, "type": "wait", "amount": 1, "unit": "days"}]


def test_it_refuses_steps_naming_each_one_at_fault_by_its_place(api, live, world):
    theirs = tagging.tag_create(account=world.account_b, actor=world.charlie, name="Bravo tag")
    steps = [
        {"id": WAIT_ID, "type": "wait", "amount": 0, "unit": "days"},
        {
            "type": "condition",
            "event": [{"property": "plan", "op": "equals", "value": "pro"}],
            "yes": [{"type": "tag", "action": "add", "tag": theirs.pk}],
        },
        {"type": "exit"},
    ]

    response = _json(api, "put", _url(live, "steps"), {"steps": steps})

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors == {
        "steps.0": ["Wait at least 1 and at most two years."],
        "steps.1.yes.0": ["There is no such tag in this account."],
    }
    live.refresh_from_db()
    assert live.draft == [{"id": WAIT_ID, "type": "wait", "amount": 1, "unit": "days"}]


@pytest.mark.parametrize(
    ("steps", "path"),
    [
        ("wait", "steps"),
        ([{"type": "teleport"}], "steps.0.type"),
        (["wait"], "steps.0"),
        ([{"type": "wait", "amount": "2"}], "steps.0.amount"),
        ([{"type": "wait", "amount": 2, "campaign": 5}], "steps.0.campaign"),
        ([{"type": "condition", "definition": "opened"}], "steps.0.definition"),
        ([{"type": "condition", "event": 5}], "steps.0.event"),
        ([{"type": "condition", "yes": [{"type": "exit", "tag": 1}]}], "steps.0.yes.0.tag"),
        ([{"type": "attribute", "name": "city", "value": "Ly\x00on"}], "steps.0.value"),
        ([{"type": "exit", "id": "step-1"}], "steps.0.id"),
        ([{"type": "exit", "id": "s0a1b2c3"}, {"type": "exit", "id": "s0a1b2c3"}], "steps.1.id"),
    ],
)
def test_it_refuses_steps_of_the_wrong_shape(api, live, steps, path):
    response = _json(api, "put", _url(live, "steps"), {"steps": steps})

    assert response.status_code == 400
    assert path in response.json()["errors"]


def test_an_email_step_sends_one_of_the_journeys_own_emails_once(api, live, world):
    journey = _draft(api, world)
    own = _json(api, "post", _url(journey, "steps"), {"type": "email"}).json()
    others = _json(api, "post", _url(_draft(api, world), "steps"), {"type": "email"}).json()
    campaign = world.extras["campaign"]

    of_another_journey = _json(
        api,
        "put",
        _url(journey, "steps"),
        {"steps": [own, {"type": "email", "campaign": others["campaign"]}]},
    )
    a_campaign = _json(
        api, "put", _url(journey, "steps"), {"steps": [{"type": "email", "campaign": campaign.pk}]}
    )
    twice = _json(
        api,
        "put",
        _url(journey, "steps"),
        {"steps": [own, {"type": "email", "campaign": own["campaign"]}]},
    )

    assert of_another_journey.status_code == 400
    assert of_another_journey.json()["errors"]["steps.1"] == [
        "This email is not one of this journey's: add an email step to make one."
    ]
    assert a_campaign.status_code == 400
    assert a_campaign.json()["errors"]["steps.0"] == [
        "This email step has no message: add the step again."
    ]
    assert twice.status_code == 400
    assert "Another step sends this email" in twice.json()["errors"]["steps.1"][0]


def test_an_email_the_draft_drops_is_deleted_unless_published(api, world):
    journey = _draft(api, world)
    kept = _json(api, "post", _url(journey, "steps"), {"type": "email"}).json()
    dropped = _json(api, "post", _url(journey, "steps"), {"type": "email"}).json()

    response = _json(api, "put", _url(journey, "steps"), {"steps": [kept]})

    assert response.status_code == 200
    assert Campaign.objects.filter(pk=kept["campaign"]).exists()
    assert not Campaign.objects.filter(pk=dropped["campaign"]).exists()


def test_it_adds_an_email_step_whose_message_is_written_through_the_campaigns_api(api, world):
    journey = _draft(api, world)

    response = _json(api, "post", _url(journey, "steps"), {"type": "email"})

    assert response.status_code == 201
    step = response.json()
    assert step["type"] == "email"
    campaign = Campaign.objects.get(pk=step["campaign"])
    assert (campaign.kind, campaign.account_id) == (Campaign.Kind.JOURNEY, world.account_a.pk)
    # a journey's email is not in the campaigns list, but is read and written by its id
    listed = [c["id"] for c in api.get("/api/v1/campaigns/").json()["results"]]
    assert campaign.pk not in listed
    written = _json(
        api,
        "patch",
        f"/api/v1/campaigns/{campaign.pk}/",
        {"subject": "Welcome aboard", "from_email": "news@alpha.test"},
    )
    assert written.status_code == 200
    assert written.json()["actions"] == ["edit"]
    campaign.refresh_from_db()
    assert campaign.subject == "Welcome aboard"


def test_a_journeys_email_stays_editable_while_the_journey_sends(api, world):
    journey = _draft(api, world)
    step = _ready_email(api, journey)
    assert _json(api, "post", _url(journey, "start")).status_code == 200
    assert Campaign.objects.get(pk=step["campaign"]).status == State.SENDING

    response = _json(api, "patch", f"/api/v1/campaigns/{step['campaign']}/", {"subject": "New"})

    assert response.status_code == 200
    assert Campaign.objects.get(pk=step["campaign"]).subject == "New"
    # its state moves with its journey, never by hand
    email = f"/api/v1/campaigns/{step['campaign']}/"
    for action in ("pause/", "cancel/", "start/", "resume/"):
        refused = _json(api, "post", email + action)
        assert refused.status_code == 409, action
        assert "starts, pauses and ends with its journey" in refused.json()["detail"]
    assert api.delete(email).status_code == 409
    assert Campaign.objects.get(pk=step["campaign"]).status == State.SENDING


def test_it_adds_steps_where_asked(api, live):
    condition = _json(api, "post", _url(live, "steps"), {"type": "condition", "after": WAIT_ID})
    in_yes = _json(
        api,
        "post",
        _url(live, "steps"),
        {"type": "exit", "after": condition.json()["id"], "branch": "yes"},
    )
    first = _json(api, "post", _url(live, "steps"), {"type": "wait"})

    assert condition.status_code == in_yes.status_code == first.status_code == 201
    live.refresh_from_db()
    assert [s["id"] for s in live.draft] == [first.json()["id"], WAIT_ID, condition.json()["id"]]
    assert live.draft[2]["yes"] == [in_yes.json()]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "wait", "after": "s0ffffff"}, "after"),
        ({"type": "wait", "after": "nowhere"}, "after"),
        ({"type": "wait", "after": WAIT_ID, "branch": "yes"}, "branch"),
        ({"type": "teleport"}, "type"),
        ({"type": "wait", "position": 2}, "position"),
    ],
)
def test_it_refuses_to_add_a_step_it_cannot_place(api, live, body, field):
    response = _json(api, "post", _url(live, "steps"), body)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    live.refresh_from_db()
    assert len(live.draft) == 1


def test_it_changes_one_steps_settings_checked_at_once(api, live):
    url = _url(live, f"steps/{WAIT_ID}")

    changed = _json(api, "patch", url, {"amount": 2, "unit": "hours"})
    too_long = _json(api, "patch", url, {"amount": 800, "unit": "days"})
    not_a_wait_setting = _json(api, "patch", url, {"tag": 3})
    unknown = _json(api, "patch", url, {"colour": "red"})
    missing = _json(api, "patch", _url(live, "steps/s0ffffff"), {"amount": 2})

    assert changed.status_code == 200
    assert changed.json() == {"id": WAIT_ID, "type": "wait", "amount": 2, "unit": "hours"}
    assert too_long.status_code == 400
    assert too_long.json()["detail"] == "Wait at least 1 and at most two years."
    assert not_a_wait_setting.status_code == 400
    assert "tag" in not_a_wait_setting.json()["errors"]
    assert unknown.status_code == 400
    assert "colour" in unknown.json()["errors"]
    assert missing.status_code == 404
    live.refresh_from_db()
    assert live.draft == [changed.json()]


def test_it_removes_a_step(api, live):
    response = api.delete(_url(live, f"steps/{WAIT_ID}"))

    assert response.status_code == 204
    live.refresh_from_db()
    assert live.draft == []
    assert api.delete(_url(live, f"steps/{WAIT_ID}")).status_code == 404


# -- publishing and the journey's life ---------------------------------------------------------


def test_it_starts_pauses_resumes_and_closes_a_journey(api, world):
    journey = _draft(api, world)
    _ready_email(api, journey)

    started = _json(api, "post", _url(journey, "start"))
    assert started.status_code == 200
    assert started.json()["status"] == "live"
    assert started.json()["version"] == 1
    again = _json(api, "post", _url(journey, "start"))
    assert again.status_code == 409
    assert again.json()["detail"] == "“start” is not possible while the journey is live."

    paused = _json(api, "post", _url(journey, "pause"))
    assert paused.json()["status"] == "paused"
    assert _json(api, "post", _url(journey, "pause")).status_code == 409

    resumed = _json(api, "post", _url(journey, "resume"))
    assert resumed.json()["status"] == "live"
    assert _json(api, "post", _url(journey, "resume")).status_code == 409

    no_choice = _json(api, "post", _url(journey, "close"))
    assert no_choice.status_code == 400
    assert "inside" in no_choice.json()["errors"]
    closed = _json(api, "post", _url(journey, "close"), {"inside": "finish"})
    assert closed.status_code == 200
    # no one was inside: it ended at once
    assert closed.json()["status"] == "ended"
    assert closed.json()["actions"] == ["delete"]
    assert _json(api, "post", _url(journey, "close"), {"inside": "finish"}).status_code == 409


def test_it_refuses_to_start_listing_every_reason(api, world):
    made = _json(api, "post", "/api/v1/journeys/", {"name": "Tagged", "trigger": "tag_added"})
    journey = Journey.objects.get(pk=made.json()["id"])

    response = _json(api, "post", _url(journey, "start"))

    assert response.status_code == 400
    assert response.json()["errors"]["non_field_errors"] == [
        "Trigger: Choose a tag.",
        "Add at least one step.",
    ]
    journey.refresh_from_db()
    assert journey.status == Journey.Status.DRAFT


def test_a_draft_cannot_be_paused_resumed_or_closed(api, world):
    journey = _draft(api, world)

    for action, body in (("pause", {}), ("resume", {}), ("close", {"inside": "remove"})):
        assert _json(api, "post", _url(journey, action), body).status_code == 409


def test_it_previews_and_publishes_a_new_version_moving_those_inside(api, live):
    steps = [{"id": WAIT_ID, "type": "wait", "amount": 1, "unit": "days"}, {"type": "exit"}]
    assert _json(api, "put", _url(live, "steps"), {"steps": steps}).status_code == 200

    preview = api.get(_url(live, "publish"))
    published = _json(api, "post", _url(live, "publish"), {"move": True})

    assert preview.status_code == 200
    assert preview.json() == {"movable": 1, "staying": 0, "draft_changed": True, "problems": []}
    assert published.status_code == 201
    assert published.json() == {"version": 2, "moved": 1, "staying": 0}
    erin = Enrollment.objects.get(journey=live)
    assert erin.version.number == 2


def test_publishing_without_moving_leaves_those_inside_in_their_version(api, live):
    steps = [{"type": "exit"}]
    _json(api, "put", _url(live, "steps"), {"steps": steps})

    published = _json(api, "post", _url(live, "publish"), {})
    bad = _json(api, "post", _url(live, "publish"), {"move": "yes"})

    assert published.json() == {"version": 2, "moved": 0, "staying": 1}
    assert bad.status_code == 400
    assert Enrollment.objects.get(journey=live).version.number == 1


# -- enrollments ------------------------------------------------------------------------------


def test_it_lists_who_is_inside_filtered(api, live, world):
    erin = world.extras["contact"]

    response = api.get(_url(live, "enrollments"))

    assert response.status_code == 200
    [listed] = response.json()["results"]
    assert listed["contact_id"] == erin.pk
    assert listed["email"] == erin.email
    assert (listed["status"], listed["step"], listed["step_type"]) == ("active", WAIT_ID, "wait")
    assert listed["version"] == 1
    assert listed["context"] == {"plan": "Alpha Sentinel pro"}
    for query, found in (
        ("status=active", 1),
        ("status=completed", 0),
        (f"contact={erin.pk}", 1),
        ("email=ERIN@alpha.test", 1),
        ("email=nobody@alpha.test", 0),
    ):
        assert len(api.get(_url(live, "enrollments") + "?" + query).json()["results"]) == found
    assert api.get(_url(live, "enrollments") + "?contact=x").status_code == 400


def test_it_puts_contacts_in_by_hand_and_says_why_others_stay_out(api, live, world):
    erin = world.extras["contact"]
    newcomer = _subscriber(world, "newcomer@alpha.test")
    stranger = contact_services.contact_create(
        account=world.account_a, actor=None, email="stranger@alpha.test"
    )

    response = _json(
        api,
        "post",
        _url(live, "enrollments"),
        {"contact_ids": [erin.pk, newcomer.pk], "email": "STRANGER@alpha.test"},
    )

    assert response.status_code == 200
    body = response.json()
    [entered] = body["enrolled"]
    assert entered["contact_id"] == newcomer.pk
    assert Enrollment.objects.get(pk=entered["enrollment"]).contact == newcomer
    assert body["not_enrolled"] == [
        {
            "contact_id": erin.pk,
            "email": erin.email,
            "reason": "entry_rule",
            "detail": "They entered this journey before: it is entered once ever.",
        },
        {
            "contact_id": stranger.pk,
            "email": stranger.email,
            "reason": "not_subscribed",
            "detail": "Not subscribed to any of the journey's lists.",
        },
    ]
    assert AuditEntry.objects.filter(account=world.account_a, action="journey.enrolled").exists()


def test_it_refuses_to_enroll_unknown_contacts_or_into_a_journey_not_live(api, live, world):
    theirs = contact_services.contact_create(
        account=world.account_b, actor=None, email="bob@bravo.test"
    )
    draft = _draft(api, world)

    unknown_address = _json(api, "post", _url(live, "enrollments"), {"email": "who@alpha.test"})
    their_contact = _json(api, "post", _url(live, "enrollments"), {"contact_ids": [theirs.pk]})
    nobody = _json(api, "post", _url(live, "enrollments"), {})
    not_live = _json(
        api, "post", _url(draft, "enrollments"), {"contact_id": world.extras["contact"].pk}
    )

    assert unknown_address.status_code == 400
    assert unknown_address.json()["errors"] == {"email": ["No contact with that address."]}
    assert their_contact.status_code == 400
    assert their_contact.json()["errors"] == {"contact_ids.0": [f"No contact with id {theirs.pk}."]}
    assert nobody.status_code == 400
    assert not_live.status_code == 409
    assert not Contact.objects.filter(email="who@alpha.test").exists()
    assert Enrollment.objects.filter(contact=theirs).count() == 0


def test_it_shows_one_enrollment_with_its_history_and_takes_it_out(api, live, world):
    enrollment = world.extras["enrollment"]
    url = _url(live, f"enrollments/{enrollment.pk}")

    shown = api.get(url)
    removed = api.delete(url)
    again = api.delete(url)

    assert shown.status_code == 200
    assert set(shown.json()) == set(EnrollmentDetailSerializer().fields)
    [reached] = shown.json()["history"]
    assert (reached["step"], reached["step_type"]) == (WAIT_ID, "wait")
    assert removed.status_code == 200
    assert removed.json()["status"] == "exited"
    assert removed.json()["outcome"] == "Taken out by the API."
    assert again.json()["status"] == "exited"
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.EXITED


def test_an_enrollment_is_found_only_under_its_own_journey(api, live, world):
    other = _draft(api, world)
    enrollment = world.extras["enrollment"]

    assert api.get(_url(other, f"enrollments/{enrollment.pk}")).status_code == 404
    assert api.delete(_url(other, f"enrollments/{enrollment.pk}")).status_code == 404
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.ACTIVE


# -- events -----------------------------------------------------------------------------------


@pytest.fixture
def orders(world: World) -> Journey:
    """A live journey every order_placed event of a subscriber enters."""
    journey = services.journey_create(
        account=world.account_a,
        actor=None,
        name="After an order",
        trigger="event",
        trigger_config={"event": "order_placed"},
        entry="every_time",
    )
    services.step_add(journey=journey, actor=None, type="exit")
    return services.journey_start(journey=journey, actor=None)


def test_it_records_an_event_and_enters_the_journeys_it_triggers(api, world, orders):
    erin = world.extras["contact"]

    response = _json(
        api,
        "post",
        "/api/v1/events/",
        {
            "email": "Erin@Alpha.test",
            "name": "order_placed",
            "properties": {"order_id": "A-1", "total": 59.9, "items": ["mug", "tea"]},
            "occurred_at": "2030-06-01T09:00:00+02:00",
        },
        HTTP_IDEMPOTENCY_KEY="order-A-1",
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == set(EventRecordedSerializer().fields)
    assert body["contact_id"] == erin.pk
    assert body["email"] == erin.email
    assert body["properties"] == {"order_id": "A-1", "total": 59.9, "items": ["mug", "tea"]}
    assert body["occurred_at"] == "2030-06-01T07:00:00Z"
    assert body["idempotency_key"] == "order-A-1"
    assert body["enrolled"] == 1
    entered = Enrollment.objects.get(journey=orders, contact=erin)
    assert entered.context["order_id"] == "A-1"


def test_the_same_key_twice_records_and_enrolls_once(api, world, orders):
    body = {"contact_id": world.extras["contact"].pk, "name": "order_placed"}

    first = _json(api, "post", "/api/v1/events/", body, HTTP_IDEMPOTENCY_KEY="k-1")
    retried = _json(
        api,
        "post",
        "/api/v1/events/",
        {**body, "properties": {"order_id": "changed"}},
        HTTP_IDEMPOTENCY_KEY="k-1",
    )
    in_body = _json(api, "post", "/api/v1/events/", {**body, "idempotency_key": "k-1"})

    assert first.status_code == 201
    assert retried.status_code == in_body.status_code == 200
    assert retried.json()["id"] == in_body.json()["id"] == first.json()["id"]
    assert retried.json()["properties"] == {}
    assert retried.json()["enrolled"] == 0
    assert ContactEvent.objects.filter(name="order_placed").count() == 1
    assert Enrollment.objects.filter(journey=orders).count() == 1


def test_without_a_key_each_post_is_an_event(api, world, orders):
    body = {"contact_id": world.extras["contact"].pk, "name": "order_placed"}

    _json(api, "post", "/api/v1/events/", body)
    _json(api, "post", "/api/v1/events/", body)

    assert ContactEvent.objects.filter(name="order_placed").count() == 2
    assert Enrollment.objects.filter(journey=orders).count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_same_key_posted_at_the_same_time_enrolls_once(world, orders, enqueued):
    body = {"contact_id": world.extras["contact"].pk, "name": "order_placed"}
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post() -> None:
        client = _api(world.alice_key_secret)
        barrier.wait()
        try:
            statuses.append(
                _json(
                    client, "post", "/api/v1/events/", body, HTTP_IDEMPOTENCY_KEY="race"
                ).status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 201]
    assert ContactEvent.objects.filter(idempotency_key="race").count() == 1
    assert Enrollment.objects.filter(journey=orders).count() == 1


@pytest.mark.parametrize(
    ("body", "headers", "field"),
    [
        ({"email": "nobody@alpha.test", "name": "x"}, {}, "email"),
        ({"contact_id": 10**12, "name": "x"}, {}, "contact_id"),
        ({"name": "x"}, {}, "non_field_errors"),
        ({"email": "erin@alpha.test", "contact_id": 1, "name": "x"}, {}, "non_field_errors"),
        ({"email": "erin@alpha.test", "name": "order placed"}, {}, "name"),
        ({"email": "erin@alpha.test", "name": ""}, {}, "name"),
        ({"email": "erin@alpha.test", "name": "x", "properties": ["a"]}, {}, "properties"),
        ({"email": "erin@alpha.test", "name": "x", "properties": {"a-b": 1}}, {}, "properties"),
        (
            {"email": "erin@alpha.test", "name": "x", "properties": {"a": {"b": 1}}},
            {},
            "properties",
        ),
        ({"email": "erin@alpha.test", "name": "x", "properties": {"a": "\x00"}}, {}, "properties"),
        (
            {"email": "erin@alpha.test", "name": "x", "properties": {"blob": "x" * 17_000}},
            {},
            "properties",
        ),
        (
            {"email": "erin@alpha.test", "name": "x", "occurred_at": "2030-06-01T09:00"},
            {},
            "occurred_at",
        ),
        (
            {"email": "erin@alpha.test", "name": "x", "idempotency_key": "a b"},
            {},
            "idempotency_key",
        ),
        (
            {"email": "erin@alpha.test", "name": "x"},
            {"HTTP_IDEMPOTENCY_KEY": "x" * 201},
            "Idempotency-Key",
        ),
        (
            {"email": "erin@alpha.test", "name": "x", "idempotency_key": "one"},
            {"HTTP_IDEMPOTENCY_KEY": "two"},
            "idempotency_key",
        ),
        ({"email": "erin@alpha.test", "name": "x", "idempotencykey": "k"}, {}, "idempotencykey"),
    ],
)
def test_it_refuses_an_event_it_cannot_record(api, world, body, headers, field):
    response = _json(api, "post", "/api/v1/events/", body, **headers)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert ContactEvent.objects.filter(account=world.account_a).count() == 1  # the world's
    assert not Contact.objects.filter(email="nobody@alpha.test").exists()


def test_an_unknown_address_is_refused_and_never_made_a_contact(api, world):
    response = _json(api, "post", "/api/v1/events/", {"email": "new@alpha.test", "name": "x"})

    assert response.status_code == 400
    assert response.json()["detail"] == "email: No contact with that address."
    assert not Contact.objects.filter(email="new@alpha.test").exists()


def test_it_lists_the_events_filtered(api, world):
    erin = world.extras["contact"]
    _json(api, "post", "/api/v1/events/", {"contact_id": erin.pk, "name": "order_placed"})

    everything = api.get("/api/v1/events/").json()["results"]
    orders = api.get("/api/v1/events/?name=order_placed").json()["results"]
    hers = api.get(f"/api/v1/events/?contact={erin.pk}").json()["results"]
    by_address = api.get("/api/v1/events/?email=erin@alpha.test").json()["results"]

    assert [e["name"] for e in everything] == ["order_placed", "alpha_sentinel.signup"]
    assert [e["name"] for e in orders] == ["order_placed"]
    assert len(hers) == len(by_address) == 2
    assert api.get("/api/v1/events/?contact=0").status_code == 400


# -- who may ----------------------------------------------------------------------------------


def test_a_read_only_key_reads_and_changes_nothing(viewer_api, live, world):
    assert viewer_api.get("/api/v1/journeys/").status_code == 200
    assert viewer_api.get(_url(live)).status_code == 200
    assert viewer_api.get(_url(live, "enrollments")).status_code == 200
    assert viewer_api.get("/api/v1/events/").status_code == 200

    writes = [
        ("post", "/api/v1/journeys/", {"name": "Mine"}),
        ("patch", _url(live), {"name": "Mine"}),
        ("delete", _url(live) + "?inside=remove", None),
        ("put", _url(live, "steps"), {"steps": []}),
        ("post", _url(live, "steps"), {"type": "exit"}),
        ("post", _url(live, "pause"), None),
        ("post", _url(live, "publish"), None),
        ("post", _url(live, "enrollments"), {"contact_id": world.extras["contact"].pk}),
        ("post", "/api/v1/events/", {"contact_id": world.extras["contact"].pk, "name": "x"}),
    ]
    for method, url, body in writes:
        assert _json(viewer_api, method, url, body).status_code == 403, (method, url)
    live.refresh_from_db()
    assert (live.name, live.status) == ("Alpha Sentinel onboarding", Journey.Status.LIVE)


def test_another_accounts_key_gets_404_for_everything_of_a_journey(charlie_api, live, world):
    enrollment = world.extras["enrollment"]
    calls = [
        ("get", _url(live), None),
        ("patch", _url(live), {"name": "Mine"}),
        ("delete", _url(live) + "?inside=remove", None),
        ("put", _url(live, "steps"), {"steps": [{"type": "exit"}]}),
        ("post", _url(live, "steps"), {"type": "exit"}),
        ("patch", _url(live, f"steps/{WAIT_ID}"), {"amount": 2}),
        ("delete", _url(live, f"steps/{WAIT_ID}"), None),
        ("get", _url(live, "publish"), None),
        ("post", _url(live, "publish"), {"move": True}),
        ("post", _url(live, "pause"), None),
        ("post", _url(live, "close"), {"inside": "remove"}),
        ("get", _url(live, "enrollments"), None),
        ("post", _url(live, "enrollments"), {"contact_id": world.extras["contact"].pk}),
        ("get", _url(live, f"enrollments/{enrollment.pk}"), None),
        ("delete", _url(live, f"enrollments/{enrollment.pk}"), None),
    ]
    for method, url, body in calls:
        response = _json(charlie_api, method, url, body)
        assert response.status_code == 404, (method, url)
        assert "Alpha" not in response.content.decode()

    assert charlie_api.get("/api/v1/journeys/").json()["results"] == []
    assert charlie_api.get("/api/v1/events/").json()["results"] == []
    live.refresh_from_db()
    enrollment.refresh_from_db()
    assert (live.status, live.draft, enrollment.status) == (
        Journey.Status.LIVE,
        [{"id": WAIT_ID, "type": "wait", "amount": 1, "unit": "days"}],
        Enrollment.Status.ACTIVE,
    )


def test_another_account_cannot_record_events_of_alices_contacts(charlie_api, world):
    erin = world.extras["contact"]

    by_id = _json(charlie_api, "post", "/api/v1/events/", {"contact_id": erin.pk, "name": "x"})
    by_address = _json(charlie_api, "post", "/api/v1/events/", {"email": erin.email, "name": "x"})
    replayed = _json(
        charlie_api,
        "post",
        "/api/v1/events/",
        {"contact_id": erin.pk, "name": "x", "idempotency_key": "alpha-sentinel-signup-1"},
    )
    filtered = charlie_api.get(f"/api/v1/events/?contact={erin.pk}")

    assert by_id.status_code == by_address.status_code == replayed.status_code == 400
    assert filtered.json()["results"] == []
    assert ContactEvent.objects.filter(contact=erin).count() == 1


def test_a_key_seen_by_another_account_is_a_key_of_its_own(api, charlie_api, world):
    theirs = contact_services.contact_create(
        account=world.account_b, actor=None, email="bob@bravo.test"
    )

    response = _json(
        charlie_api,
        "post",
        "/api/v1/events/",
        {"contact_id": theirs.pk, "name": "x"},
        HTTP_IDEMPOTENCY_KEY="alpha-sentinel-signup-1",
    )

    assert response.status_code == 201
    assert response.json()["contact_id"] == theirs.pk
    assert "Alpha" not in response.content.decode()


def test_deleting_a_contact_takes_their_enrollments_and_events_with_them(api, live, world):
    # the contacts API deletes by statement: the database itself removes what points at her
    erin = world.extras["contact"]

    response = api.delete(f"/api/v1/contacts/{erin.pk}/")

    assert response.status_code == 204
    assert not Enrollment.objects.filter(contact_id=erin.pk).exists()
    assert not ContactEvent.objects.filter(contact_id=erin.pk).exists()
    assert api.get(_url(live)).json()["totals"]["inside"] == 0


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_a_page_of_enrollments_or_events_costs_the_same_however_many(api, live, world):
    api.get("/api/v1/journeys/")  # the key's first use is stamped once
    enrollments, events = _url(live, "enrollments"), "/api/v1/events/"
    few = (_queries(api, enrollments), _queries(api, events))
    for n in range(5):
        contact = _subscriber(world, f"reader{n}@alpha.test")
        services.contacts_enroll(journey=live, actor=None, contacts=[contact])
        services.event_record(account=world.account_a, contact=contact, name="read")

    many = (_queries(api, enrollments), _queries(api, events))

    assert len(api.get(enrollments).json()["results"]) == 6
    assert many == few
