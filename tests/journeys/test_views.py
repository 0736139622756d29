"""The journey pages: the list, the starters, the journey page (settings, the step editor
and what moves a journey), the report and who is inside; as the owner, a viewer and an
outsider, with what a visitor can type into a form or an address."""

from __future__ import annotations

import zoneinfo

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from contacts import services as contact_services
from contacts.models import Tag
from journeys import engine, services
from journeys import steps as stepping
from journeys.models import Enrollment, Journey, JourneyVersion, StepTally
from tests.factories import World

SENDER = "news@alpha.test"
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def account(world: World):
    world.account_a.default_from_email = SENDER
    world.account_a.save(update_fields=["default_from_email"])
    return world.account_a


@pytest.fixture
def welcome(world: World, account) -> Journey:
    """A draft from the welcome starter: three emails and two waits, its list to choose."""
    return services.journey_create(
        account=account, actor=world.alice, name="Welcome", starter="welcome"
    )


@pytest.fixture
def winback(world: World, account) -> Journey:
    """A draft from the re-engagement starter: an email, a wait and an if / else."""
    return services.journey_create(
        account=account, actor=world.alice, name="Win back", starter="reengagement"
    )


@pytest.fixture
def live(world: World, account) -> Journey:
    """A live journey of one 30-day wait, started by a subscription to the news, with
    erin inside at the wait."""
    journey = services.journey_create(
        account=account,
        actor=world.alice,
        name="Alpha Sentinel welcome",
        trigger="subscribed",
        trigger_config={"list": world.extras["list"].pk},
    )
    wait = services.step_add(journey=journey, actor=world.alice, type="wait")
    services.step_change(
        journey=journey,
        actor=world.alice,
        step_id=wait["id"],
        settings={"amount": 30, "unit": "days"},
    )
    services.journey_start(journey=journey, actor=world.alice)
    journey.refresh_from_db()
    services.contacts_enroll(journey=journey, actor=world.alice, contacts=[world.extras["contact"]])
    engine.advance(journey.pk)
    return journey


@pytest.fixture
def inside(live: Journey) -> Enrollment:
    """Erin's enrollment in the live journey."""
    return Enrollment.objects.get(journey=live)


def url(name: str, journey: Journey, *more: object) -> str:
    return reverse(name, args=[journey.pk, *more])


def body(response) -> str:
    return response.content.decode()


def ids(journey: Journey) -> list[str]:
    journey.refresh_from_db()
    return [step["id"] for step in stepping.walk(journey.draft)]


def step(journey: Journey, step_id: str) -> dict:
    journey.refresh_from_db()
    found = stepping.find(journey.draft, step_id)
    assert found is not None
    holder, position = found
    return holder[position]


def settings_data(journey: Journey, **changes: object) -> dict:
    data = {
        "name": journey.name,
        "trigger": journey.trigger,
        "entry": journey.entry,
        "exit_on_unsubscribe": "on",
        "goal": "",
    }
    data.update(changes)
    return data


# -- the list and the starters ----------------------------------------------------------------


def test_it_lists_journeys_with_their_status_trigger_and_counts(alice_client: Client, live):
    response = alice_client.get(reverse("journeys"))

    assert response.status_code == 200
    page = body(response)
    assert "Alpha Sentinel welcome" in page
    assert "Live" in page
    assert "Subscribes to “Alpha Sentinel News”" in page
    [row] = [r for r in response.context["rows"] if r[0].pk == live.pk]
    assert (row[0].inside, row[0].completed) == (1, 0)
    assert 'aria-current="page">Journeys</a>' in page


def test_it_shows_an_empty_list_with_a_call_to_make_one(charlie_client: Client, world):
    response = charlie_client.get(reverse("journeys"))

    assert response.status_code == 200
    assert "No journeys yet" in body(response)
    assert "Make your first journey" in body(response)
    assert "Alpha Sentinel" not in body(response)


def test_it_offers_every_starter_and_an_empty_journey(alice_client: Client):
    response = alice_client.get(reverse("journey_new") + "?starter=birthday")

    page = body(response)
    for name in ("Welcome series", "Birthday", "Re-engagement", "Post-purchase"):
        assert name in page
    assert "An empty journey" in page
    assert "Email · Wait 3 days · Email · Wait 4 days · Email" in page
    assert 'value="birthday" checked' in page


def test_it_makes_a_journey_from_the_welcome_starter(alice_client: Client, world, account):
    response = alice_client.post(
        reverse("journey_new"), {"name": "Hello newcomers", "starter": "welcome"}
    )

    journey = Journey.objects.for_account(account).get(name="Hello newcomers")
    assert response.status_code == 302
    assert response["Location"] == url("journey_detail", journey)
    assert journey.status == Journey.Status.DRAFT
    assert [s["type"] for s in journey.draft] == ["email", "wait", "email", "wait", "email"]
    assert Campaign.objects.filter(account=account, kind="journey").count() == 3


def test_it_makes_an_empty_journey(alice_client: Client, account):
    alice_client.post(reverse("journey_new"), {"name": "By hand", "starter": "empty"})

    journey = Journey.objects.for_account(account).get(name="By hand")
    assert journey.draft == []
    page = body(alice_client.get(url("journey_detail", journey)))
    assert "No steps yet" in page
    assert "Add at least one step." in page


def test_it_refuses_a_journey_without_a_name_or_starter(alice_client: Client, account):
    before = Journey.objects.for_account(account).count()

    response = alice_client.post(reverse("journey_new"), {"name": "  ", "starter": "nope"})

    assert response.status_code == 400
    assert response.context["form"].errors.keys() == {"name", "starter"}
    assert Journey.objects.for_account(account).count() == before


def test_it_ignores_an_unknown_starter_in_the_address(alice_client: Client):
    response = alice_client.get(reverse("journey_new") + "?starter=%00nope")

    assert response.status_code == 200
    assert 'value="welcome" checked' in body(response)


# -- the journey page -------------------------------------------------------------------------


def test_it_shows_the_steps_with_their_summaries_and_branches(alice_client: Client, winback):
    response = alice_client.get(url("journey_detail", winback))

    assert response.status_code == 200
    page = body(response)
    email = Campaign.objects.get(pk=winback.draft[0]["campaign"])
    assert f"“{email.name}”" in page
    assert f'href="{reverse("campaign_detail", args=[email.pk])}"' in page
    assert 'aria-label="Edit email of step 1">Edit email</a>' in page
    assert "Wait 7 days" in page
    assert "If opened the email of step 1" in page
    assert 'data-testid="branch-3-yes"' in page
    assert 'data-testid="branch-3-no"' in page
    assert "Add the tag “inactive”" in page
    # the controls between steps and at the start of each branch, each named apart
    assert "Add a step at the start" in page
    assert "Add a step after step 3" in page
    assert "Add a step to the yes branch of step 3" in page
    assert "Add a step to the no branch of step 3" in page
    assert "Enters the segment “Inactive for 90 days”" in page


def test_it_shows_each_steps_counts(alice_client: Client, live):
    StepTally.objects.filter(journey=live, step=live.draft[0]["id"]).update(reached=3)

    page = body(alice_client.get(url("journey_detail", live)))

    assert "<span>1 waiting here</span> · <span>2 passed</span>" in page
    assert 'data-testid="totals"' in page


def test_it_escapes_a_hostile_name(alice_client: Client, account, world):
    journey = services.journey_create(
        account=account, actor=world.alice, name="<script>alert(1)</script>"
    )

    page = body(alice_client.get(url("journey_detail", journey)))

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_it_saves_the_settings(alice_client: Client, world, welcome):
    newsletter = world.extras["list"]
    segment = world.extras["segment"]

    response = alice_client.post(
        url("journey_detail", welcome),
        settings_data(
            welcome,
            name="Welcome aboard",
            trigger_list=newsletter.pk,
            entry="every_time",
            goal="segment",
            goal_segment=segment.pk,
            lists=[newsletter.pk],
            exit_on_unsubscribe="",
        ),
    )

    assert response.status_code == 302
    welcome.refresh_from_db()
    assert welcome.name == "Welcome aboard"
    assert welcome.trigger_config == {"list": newsletter.pk}
    assert welcome.entry == "every_time"
    assert welcome.goal == {"segment": segment.pk}
    assert welcome.exit_on_unsubscribe is False
    assert list(welcome.lists.all()) == [newsletter]


def test_it_renames_a_journey_whose_list_is_still_to_choose(alice_client: Client, welcome):
    response = alice_client.post(url("journey_detail", welcome), settings_data(welcome, name="Hi"))

    assert response.status_code == 302
    welcome.refresh_from_db()
    assert (welcome.name, welcome.trigger_config) == ("Hi", {})


def test_it_shows_the_services_errors_beside_the_fields(alice_client: Client, welcome):
    response = alice_client.post(
        url("journey_detail", welcome),
        settings_data(welcome, trigger="tag_added", goal="event", goal_event="not a name!"),
    )

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["trigger_tag"] == ["Choose a tag."]
    welcome.refresh_from_db()
    assert welcome.trigger == "subscribed"


def test_it_asks_for_the_goals_event_and_refuses_a_bad_one(alice_client: Client, welcome):
    missing = alice_client.post(
        url("journey_detail", welcome), settings_data(welcome, goal="event")
    )
    bad = alice_client.post(
        url("journey_detail", welcome),
        settings_data(welcome, goal="event", goal_event="not a name!"),
    )

    assert missing.context["form"].errors["goal_event"] == ["Name the event that ends the journey."]
    assert bad.status_code == 400
    assert "Name the goal" in bad.context["form"].errors["goal_event"][0]


def test_it_keeps_the_trigger_of_a_journey_that_started(alice_client: Client, live):
    form = alice_client.get(url("journey_detail", live)).context["form"]
    assert form.fields["trigger"].disabled
    assert form.fields["entry"].disabled

    alice_client.post(
        url("journey_detail", live), settings_data(live, trigger="event", trigger_event="x")
    )

    live.refresh_from_db()
    assert live.trigger == "subscribed"


# -- steps ------------------------------------------------------------------------------------


def test_it_opens_a_steps_form_in_its_card(alice_client: Client, welcome):
    wait = ids(welcome)[1]

    response = alice_client.get(url("journey_step_edit", welcome, wait), **HX)

    page = body(response)
    assert page.startswith(f'<div class="step-card step-wait" id="step-{wait}"')
    assert f'name="{wait}-amount" value="3"' in page
    assert 'aria-label="Save step 2"' in page


def test_it_changes_a_wait_through_htmx(alice_client: Client, welcome):
    wait = ids(welcome)[1]

    response = alice_client.post(
        url("journey_step", welcome, wait),
        {f"{wait}-mode": "for", f"{wait}-amount": "2", f"{wait}-unit": "weeks"},
        **HX,
    )

    assert response.status_code == 200
    assert "Wait 2 weeks" in body(response)
    assert "Saved." in body(response)
    assert step(welcome, wait) == {"id": wait, "type": "wait", "amount": 2, "unit": "weeks"}


def test_it_changes_a_wait_to_a_time_of_day(alice_client: Client, welcome):
    wait = ids(welcome)[1]

    alice_client.post(
        url("journey_step", welcome, wait),
        {
            f"{wait}-mode": "until",
            f"{wait}-time": "09:30",
            f"{wait}-weekdays": ["0", "4"],
            f"{wait}-zone": "contact",
        },
    )

    assert step(welcome, wait)["until"] == {"time": "09:30", "weekdays": [0, 4], "zone": "contact"}


def test_it_shows_a_wait_form_error_on_the_card(alice_client: Client, welcome):
    wait = ids(welcome)[1]

    swapped = alice_client.post(
        url("journey_step", welcome, wait), {f"{wait}-mode": "for", f"{wait}-amount": ""}, **HX
    )
    whole = alice_client.post(
        url("journey_step", welcome, wait), {f"{wait}-mode": "for", f"{wait}-amount": ""}
    )

    # htmx swaps only successful answers: the card with its error comes back as one
    assert swapped.status_code == 200
    assert "Say how long to wait." in body(swapped)
    assert whole.status_code == 400
    assert "Say how long to wait." in body(whole)
    assert step(welcome, wait)["amount"] == 3


def test_it_shows_the_services_refusal_on_the_card(alice_client: Client, welcome):
    wait = ids(welcome)[1]

    response = alice_client.post(
        url("journey_step", welcome, wait),
        {f"{wait}-mode": "for", f"{wait}-amount": "500", f"{wait}-unit": "weeks"},
        **HX,
    )

    assert 'data-testid="step-error"><li>Wait at least 1 and at most two years.' in body(response)
    assert step(welcome, wait)["amount"] == 3


def test_it_adds_a_step_after_another_and_opens_its_form(alice_client: Client, welcome):
    first = ids(welcome)[0]

    response = alice_client.post(
        url("journey_step_add", welcome), {"type": "wait", "after": first, "branch": ""}, **HX
    )

    assert response.status_code == 200
    added = ids(welcome)[1]
    assert step(welcome, added) == {"id": added, "type": "wait", "amount": 1, "unit": "days"}
    page = body(response)
    assert page.startswith('<section class="card" id="steps">')
    assert f'name="{added}-amount"' in page


def test_it_adds_a_step_first_in_a_branch(alice_client: Client, winback):
    condition = ids(winback)[2]

    response = alice_client.post(
        url("journey_step_add", winback), {"type": "exit", "after": condition, "branch": "yes"}
    )

    assert response.status_code == 302
    assert [s["type"] for s in step(winback, condition)["yes"]] == ["exit"]


def test_it_refuses_an_unknown_type_or_a_missing_step(alice_client: Client, welcome):
    before = ids(welcome)

    unknown = alice_client.post(
        url("journey_step_add", welcome), {"type": "teleport", "after": ""}, follow=True
    )
    missing = alice_client.post(
        url("journey_step_add", welcome), {"type": "wait", "after": "s999999"}, follow=True
    )

    assert "Unknown step type “teleport”." in body(unknown)
    assert "That step is not in the journey any more" in body(missing)
    assert ids(welcome) == before


def test_it_sends_an_htmx_request_it_refuses_to_the_page_and_its_message(
    alice_client: Client, welcome
):
    response = alice_client.post(url("journey_step_add", welcome), {"type": "teleport"}, **HX)

    # (a redirect htmx followed would swap the whole page into the steps)
    assert response.status_code == 200
    assert response["HX-Redirect"] == url("journey_detail", welcome)
    assert "Unknown step type" in body(alice_client.get(url("journey_detail", welcome)))


def test_it_sets_a_condition_on_a_tag(alice_client: Client, world, winback):
    condition = ids(winback)[2]
    tag = world.extras["tag"]

    response = alice_client.post(
        url("journey_step", winback, condition),
        {f"{condition}-test": "tag", f"{condition}-tag": tag.pk},
        **HX,
    )

    assert "If has the tag “Alpha Sentinel VIP”" in body(response)
    changed = step(winback, condition)
    assert changed["definition"]["conditions"] == [{"field": "tag", "op": "has", "value": tag.pk}]
    assert changed["event"] == []
    assert [s["type"] for s in changed["no"]] == ["tag"]  # the branches stay


def test_it_sets_a_condition_on_the_events_property(alice_client: Client, winback):
    condition = ids(winback)[2]

    alice_client.post(
        url("journey_step", winback, condition),
        {
            f"{condition}-test": "event",
            f"{condition}-property": "order_total",
            f"{condition}-op": "gt",
            f"{condition}-value": "50",
        },
    )

    changed = step(winback, condition)
    assert changed["event"] == [{"property": "order_total", "op": "gt", "value": "50"}]
    assert changed["definition"]["conditions"] == []


def test_it_sets_a_condition_on_a_click_in_an_email_step(alice_client: Client, winback):
    condition = ids(winback)[2]
    campaign = winback.draft[0]["campaign"]
    page = body(alice_client.get(url("journey_step_edit", winback, condition), **HX))
    assert f'<option value="{campaign}" selected>Step 1: ' in page

    response = alice_client.post(
        url("journey_step", winback, condition),
        {f"{condition}-test": "clicked", f"{condition}-email": campaign},
        **HX,
    )

    assert "If clicked the email of step 1" in body(response)
    assert step(winback, condition)["definition"]["conditions"] == [
        {"field": "clicked", "op": "ever", "campaign": campaign}
    ]


def test_it_asks_for_what_the_condition_tests(alice_client: Client, winback):
    condition = ids(winback)[2]

    response = alice_client.post(
        url("journey_step", winback, condition), {f"{condition}-test": "tag"}, **HX
    )

    assert "Choose the tag to test." in body(response)


def test_it_makes_a_new_tag_for_a_tag_step(alice_client: Client, account, winback):
    tag_step = ids(winback)[3]

    alice_client.post(
        url("journey_step", winback, tag_step),
        {f"{tag_step}-action": "remove", f"{tag_step}-new_tag": "Lapsed readers"},
        **HX,
    )

    tag = Tag.objects.for_account(account).get(name="Lapsed readers")
    assert step(winback, tag_step) == {
        "id": tag_step,
        "type": "tag",
        "action": "remove",
        "tag": tag.pk,
    }


def test_it_sets_a_list_step_and_an_attribute_step(alice_client: Client, world, welcome):
    last = ids(welcome)[-1]
    alice_client.post(url("journey_step_add", welcome), {"type": "list", "after": last})
    alice_client.post(url("journey_step_add", welcome), {"type": "attribute", "after": last})
    attribute, list_step = ids(welcome)[-2:]
    newsletter = world.extras["list"]

    alice_client.post(
        url("journey_step", welcome, list_step),
        {f"{list_step}-action": "unsubscribe", f"{list_step}-list": newsletter.pk},
        **HX,
    )
    response = alice_client.post(
        url("journey_step", welcome, attribute),
        {f"{attribute}-name": "city", f"{attribute}-value": "Lyon"},
        **HX,
    )

    assert step(welcome, list_step)["list"] == newsletter.pk
    assert step(welcome, list_step)["action"] == "unsubscribe"
    assert step(welcome, attribute)["value"] == "Lyon"
    assert "Set city to “Lyon”" in body(response)


def test_it_shows_what_a_new_step_still_needs(alice_client: Client, welcome):
    alice_client.post(url("journey_step_add", welcome), {"type": "tag", "after": ""})

    page = body(alice_client.get(url("journey_detail", welcome)))
    refused = alice_client.post(url("journey_start", welcome), follow=True)

    assert 'data-testid="step-problem">Choose tag.' in page
    assert '<li class="error">Step: Choose tag.</li>' in body(refused)


def test_it_moves_a_step_up_and_down(alice_client: Client, welcome):
    first, wait = ids(welcome)[:2]

    response = alice_client.post(url("journey_step_move", welcome, wait), {"direction": "up"}, **HX)
    assert response.status_code == 200
    assert ids(welcome)[:2] == [wait, first]

    alice_client.post(url("journey_step_move", welcome, wait), {"direction": "down"})
    assert ids(welcome)[:2] == [first, wait]

    sideways = alice_client.post(
        url("journey_step_move", welcome, wait), {"direction": "left"}, follow=True
    )
    assert "Move a step up or down." in body(sideways)


def test_it_removes_a_step_after_a_confirmation(alice_client: Client, welcome):
    email = ids(welcome)[0]
    campaign = welcome.draft[0]["campaign"]

    confirm = alice_client.get(url("journey_step_remove", welcome, email))
    assert "Remove step 1 (Send an email)?" in body(confirm)
    assert ids(welcome)[0] == email

    alice_client.post(url("journey_step_remove", welcome, email))

    assert email not in ids(welcome)
    assert not Campaign.objects.filter(pk=campaign).exists()


def test_it_answers_404_for_a_step_that_is_not_there(alice_client: Client, welcome):
    for name in ("journey_step", "journey_step_edit", "journey_step_remove"):
        assert alice_client.get(url(name, welcome, "s000000"), **HX).status_code == 404
    response = alice_client.post(url("journey_step_move", welcome, "nope"), {"direction": "up"})
    assert response.status_code == 404


# -- moving a journey -------------------------------------------------------------------------


def test_it_lists_why_a_journey_cannot_start(alice_client: Client, welcome):
    page = body(alice_client.get(url("journey_detail", welcome)))
    assert "Trigger: Choose a list." in page

    response = alice_client.post(url("journey_start", welcome), follow=True)

    welcome.refresh_from_db()
    assert welcome.status == Journey.Status.DRAFT
    assert '<li class="error">The journey cannot start yet:</li>' in body(response)
    assert '<li class="error">Trigger: Choose a list.</li>' in body(response)


def test_it_starts_a_journey_once_its_list_is_chosen(alice_client: Client, world, welcome):
    alice_client.post(
        url("journey_detail", welcome), settings_data(welcome, trigger_list=world.extras["list"].pk)
    )

    response = alice_client.post(url("journey_start", welcome), follow=True)

    welcome.refresh_from_db()
    assert welcome.status == Journey.Status.LIVE
    assert welcome.version.number == 1
    assert "is live" in body(response)
    assert Campaign.objects.filter(pk=welcome.draft[0]["campaign"], status="sending").exists()


def test_it_pauses_and_resumes(alice_client: Client, live):
    alice_client.post(url("journey_pause", live))
    live.refresh_from_db()
    assert live.status == Journey.Status.PAUSED
    assert "Resume" in body(alice_client.get(url("journey_detail", live)))

    alice_client.post(url("journey_resume", live))
    live.refresh_from_db()
    assert live.status == Journey.Status.LIVE


def test_it_refuses_to_resume_a_live_journey(alice_client: Client, live):
    response = alice_client.post(url("journey_resume", live), follow=True)

    assert "Only a paused journey can be resumed." in body(response)


def test_it_asks_what_becomes_of_those_inside_before_ending(alice_client: Client, live):
    confirm = alice_client.get(url("journey_end", live))
    assert "1 contact is inside now." in body(confirm)
    assert "Let those inside finish; no one new enters" in body(confirm)
    assert "Take everyone out now" in body(confirm)

    unsaid = alice_client.post(url("journey_end", live), {})
    assert unsaid.status_code == 400
    assert "Say what happens to the contacts inside." in body(unsaid)

    alice_client.post(url("journey_end", live), {"inside": "finish"})
    live.refresh_from_db()
    assert live.status == Journey.Status.CLOSING
    assert Enrollment.objects.filter(journey=live, status="active").count() == 1


def test_it_ends_a_journey_taking_everyone_out(alice_client: Client, live):
    alice_client.post(url("journey_end", live), {"inside": "remove"})

    live.refresh_from_db()
    assert live.status == Journey.Status.ENDED
    assert not Enrollment.objects.filter(journey=live, status="active").exists()
    page = body(alice_client.get(url("journey_detail", live)))
    assert "Save settings" not in page
    assert "Add a step" not in page


def test_it_deletes_a_journey_with_people_inside_only_when_told(alice_client: Client, live):
    refused = alice_client.post(url("journey_delete", live), {})
    assert refused.status_code == 400
    assert "1 contact is inside: say to take them out" in body(refused)
    assert Journey.objects.filter(pk=live.pk).exists()

    response = alice_client.post(url("journey_delete", live), {"take_out": "on"})

    assert response.status_code == 302
    assert response["Location"] == reverse("journeys")
    assert not Journey.objects.filter(pk=live.pk).exists()


def test_it_deletes_a_draft_without_asking_about_anyone(alice_client: Client, welcome):
    confirm = alice_client.get(url("journey_delete", welcome))
    assert "take_out" not in body(confirm)
    assert "Nobody is inside now." in body(confirm)

    alice_client.post(url("journey_delete", welcome), {})

    assert not Journey.objects.filter(pk=welcome.pk).exists()


def test_it_previews_and_publishes_the_changes_moving_those_inside(alice_client: Client, live):
    wait = ids(live)[0]
    alice_client.post(url("journey_step_add", live), {"type": "exit", "after": wait})
    page = body(alice_client.get(url("journey_detail", live)))
    assert 'data-testid="draft-changed"' in page
    assert "Publish changes…" in page

    preview = alice_client.get(url("journey_publish", live))
    assert (
        "<strong>1</strong> contact inside can move to the new version at the same step; "
        "<strong>0</strong> are at steps it no longer has"
    ) in body(preview)

    alice_client.post(url("journey_publish", live), {"move": "move"})

    live.refresh_from_db()
    assert live.version.number == 2
    assert Enrollment.objects.get(journey=live).version == live.version
    assert "Publish changes…" not in body(alice_client.get(url("journey_detail", live)))


def test_it_lets_those_at_a_removed_step_finish_their_version(alice_client: Client, live):
    wait = ids(live)[0]
    alice_client.post(url("journey_step_add", live), {"type": "exit", "after": wait})
    alice_client.post(url("journey_step_remove", live, wait))

    preview = alice_client.get(url("journey_publish", live))
    assert "<strong>0</strong> contacts inside can move" in body(preview)
    assert "<strong>1</strong> is at steps it no longer has" in body(preview)

    alice_client.post(url("journey_publish", live), {"move": "keep"})

    live.refresh_from_db()
    first = JourneyVersion.objects.get(journey=live, number=1)
    assert live.version.number == 2
    assert Enrollment.objects.get(journey=live).version == first


def test_it_has_nothing_to_publish_when_the_draft_is_the_version(alice_client: Client, live):
    preview = alice_client.get(url("journey_publish", live))
    alice_client.post(url("journey_publish", live), {"move": "move"})

    assert "Nothing to publish" in body(preview)
    assert JourneyVersion.objects.filter(journey=live).count() == 1


# -- the report and who is inside -------------------------------------------------------------


def test_it_reports_each_step_with_the_emails_rates(alice_client: Client, account, welcome):
    email = Campaign.objects.get(pk=welcome.draft[0]["campaign"])
    Campaign.objects.filter(pk=email.pk).update(started_at=timezone.now())
    for n in range(4):
        contact = contact_services.contact_create(
            account=account, actor=None, email=f"reader{n}@example.net"
        )
        Delivery.objects.create(
            campaign=email,
            contact=contact,
            status=Delivery.Status.SENT,
            first_opened_at=timezone.now() if n < 2 else None,
            first_clicked_at=timezone.now() if n == 0 else None,
        )
    StepTally.objects.create(journey=welcome, step=welcome.draft[0]["id"], reached=4)

    response = alice_client.get(url("journey_report", welcome))

    assert response.status_code == 200
    first = response.context["lines"][0]
    assert (first.card.figures.reached, first.card.figures.email.sent) == (4, 4)
    assert (first.open_rate, first.click_rate) == ("50.0%", "25.0%")
    page = body(response)
    assert reverse("campaign_report", args=[email.pk]) in page
    assert 'data-testid="report-step-5"' in page


def test_it_lists_who_is_inside_in_the_accounts_time_zone(
    alice_client: Client, world, live, inside
):
    world.account_a.time_zone = "Pacific/Auckland"
    world.account_a.save(update_fields=["time_zone"])

    response = alice_client.get(url("journey_contacts", live))

    page = body(response)
    assert "erin@alpha.test" in page
    assert "Step 1: Wait 30 days" in page
    local = inside.due_at.astimezone(zoneinfo.ZoneInfo("Pacific/Auckland"))
    assert local.strftime("%Y-%m-%d %H:%M") in page


@pytest.mark.parametrize("page", ["abc", "0", "-1", "²", "99999999999999999999", "7"])
def test_it_pages_the_contacts_whatever_the_page_asked(alice_client: Client, live, page):
    response = alice_client.get(url("journey_contacts", live) + f"?page={page}")

    assert response.status_code == 200
    assert "erin@alpha.test" in body(response)


def test_it_takes_a_contact_out_after_a_confirmation(alice_client: Client, live, inside):
    enrollment = inside

    confirm = alice_client.get(url("journey_enrollment_remove", live, enrollment.pk))
    assert "Take erin@alpha.test out of" in body(confirm)

    response = alice_client.post(url("journey_enrollment_remove", live, enrollment.pk))

    assert response["Location"] == url("journey_contacts", live)
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.EXITED
    assert "Nobody is inside" in body(alice_client.get(url("journey_contacts", live)))


def test_it_puts_a_subscribed_contact_in_by_address(alice_client: Client, world, live):
    fred = contact_services.contact_create(
        account=world.account_a, actor=None, email="fred@alpha.test", lists=[world.extras["list"]]
    )

    response = alice_client.post(url("journey_contacts", live), {"email": " Fred@Alpha.test "})

    assert response.status_code == 302
    assert Enrollment.objects.filter(journey=live, contact=fred, status="active").exists()


@pytest.mark.parametrize(
    ("email", "reason"),
    [
        ("nobody@alpha.test", "No contact has the address nobody@alpha.test in this account"),
        ("erin@alpha.test", "keeps them out, as they are inside now or went through before"),
        ("not an address", "address"),
    ],
)
def test_it_says_why_a_contact_did_not_enter(alice_client: Client, live, email, reason):
    response = alice_client.post(url("journey_contacts", live), {"email": email})

    assert response.status_code == 400
    assert reason in response.context["form"].errors["email"][0]
    assert Enrollment.objects.filter(journey=live).count() == 1


def test_it_says_an_unsubscribed_contact_cannot_enter(alice_client: Client, world, live):
    contact_services.contact_create(account=world.account_a, actor=None, email="gil@alpha.test")

    response = alice_client.post(url("journey_contacts", live), {"email": "gil@alpha.test"})

    assert "subscribed to none of the journey" in response.context["form"].errors["email"][0]


def test_it_puts_no_one_in_a_journey_that_is_not_live(alice_client: Client, welcome):
    response = alice_client.post(url("journey_contacts", welcome), {"email": "erin@alpha.test"})

    assert response.context["form"].errors["email"] == ["Contacts enter only a live journey."]


# -- who may do what --------------------------------------------------------------------------


def _outsider_urls(journey: Journey, enrollment: Enrollment) -> list[str]:
    step_id = journey.draft[0]["id"]
    return [
        url("journey_detail", journey),
        url("journey_report", journey),
        url("journey_contacts", journey),
        url("journey_start", journey),
        url("journey_pause", journey),
        url("journey_resume", journey),
        url("journey_end", journey),
        url("journey_delete", journey),
        url("journey_publish", journey),
        url("journey_step_add", journey),
        url("journey_step", journey, step_id),
        url("journey_step_edit", journey, step_id),
        url("journey_step_move", journey, step_id),
        url("journey_step_remove", journey, step_id),
        url("journey_enrollment_remove", journey, enrollment.pk),
    ]


def test_an_outsider_gets_404_on_every_page_of_the_journey(charlie_client: Client, live, inside):
    enrollment = inside

    for address in _outsider_urls(live, enrollment):
        got = charlie_client.get(address, **HX).status_code
        posted = charlie_client.post(address, {"inside": "remove", "take_out": "on"}).status_code
        assert {got, posted} <= {404, 405}, address
        assert 404 in {got, posted}, address

    live.refresh_from_db()
    assert live.status == Journey.Status.LIVE
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.ACTIVE


def test_an_enrollment_of_another_journey_is_not_found(alice_client: Client, world, welcome):
    response = alice_client.get(
        url("journey_enrollment_remove", welcome, world.extras["enrollment"].pk)
    )

    assert response.status_code == 404


def test_a_viewer_sees_the_journey_but_changes_nothing(vera_client: Client, live):
    page = body(vera_client.get(url("journey_detail", live)))
    assert "Save settings" not in page
    assert "Add a step" not in page
    assert "Pause" not in page

    vera_client.post(url("journey_detail", live), settings_data(live, name="Renamed"))
    assert vera_client.post(url("journey_pause", live)).status_code == 403
    assert vera_client.post(url("journey_step_add", live), {"type": "exit"}).status_code == 403
    assert vera_client.get(url("journey_contacts", live)).status_code == 200

    live.refresh_from_db()
    assert (live.name, live.status, len(live.draft)) == ("Alpha Sentinel welcome", "live", 1)


# -- the campaign page of a journey's email ---------------------------------------------------


def test_the_campaign_page_of_a_journeys_email_says_so_and_offers_no_send(
    alice_client: Client, welcome
):
    email = welcome.draft[0]["campaign"]

    page = body(alice_client.get(reverse("campaign_detail", args=[email])))

    assert "This email is a step of a journey" in page
    assert f'href="{reverse("journeys")}"' in page
    for offer in ("Send now", 'id="schedule"', 'id="ab-test"', "Delete…", 'id="readiness"'):
        assert offer not in page
    assert 'id="campaign-form"' in page  # it is edited here


def test_a_campaign_page_of_a_campaign_keeps_its_actions(alice_client: Client, world, account):
    campaign = world.extras["campaign"]

    page = body(alice_client.get(reverse("campaign_detail", args=[campaign.pk])))

    assert "This email is a step of a journey" not in page
    assert "Send now" in page


def test_it_says_a_wait_of_one_in_the_singular(alice_client: Client, welcome):
    wait = ids(welcome)[1]
    alice_client.post(
        url("journey_step", welcome, wait),
        {f"{wait}-mode": "for", f"{wait}-amount": "1", f"{wait}-unit": "hours"},
    )

    page = body(alice_client.get(url("journey_detail", welcome)))

    assert "Wait 1 hour<" in page


def test_it_updates_the_start_checklist_beside_a_swapped_step(alice_client: Client, world, welcome):
    tag = world.extras["tag"]
    alice_client.post(
        url("journey_detail", welcome), settings_data(welcome, trigger_list=world.extras["list"].pk)
    )

    added = alice_client.post(url("journey_step_add", welcome), {"type": "tag"}, **HX)
    tag_step = ids(welcome)[0]
    saved = alice_client.post(
        url("journey_step", welcome, tag_step),
        {f"{tag_step}-action": "add", f"{tag_step}-tag": tag.pk},
        **HX,
    )

    # the checklist above the steps comes with each answer, out of band
    assert '<div id="readiness" hx-swap-oob="true">' in body(added)
    assert "Step: Choose tag." in body(added)
    assert '<div id="readiness" hx-swap-oob="true">' in body(saved)
    assert 'data-testid="ready"' in body(saved)
