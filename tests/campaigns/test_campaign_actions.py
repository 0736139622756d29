"""Sending from the campaign page: confirm and start, schedule in the account's time zone,
pause, resume, cancel, and the progress panel that follows the send."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from accounts.models import AuditEntry
from campaigns import selectors, services
from campaigns.models import Campaign, Delivery
from campaigns.states import State
from contacts import services as contact_services
from tests.factories import World

UTC = dt.UTC


@pytest.fixture
def campaign(world: World) -> Campaign:
    """Alice's draft, ready to send to erin; zed, also on the list, is suppressed."""
    newsletter = world.extras["list"]
    contact_services.contact_create(
        account=world.account_a, actor=world.alice, email="zed@example.net", lists=[newsletter]
    )
    contact_services.suppression_add(
        account=world.account_a, actor=world.alice, email="zed@example.net"
    )
    draft = world.extras["campaign"]
    draft.lists.set([newsletter])
    return draft


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _sending(campaign: Campaign, django_capture_on_commit_callbacks) -> Campaign:
    with django_capture_on_commit_callbacks(execute=False):
        return services.campaign_start(campaign=campaign, actor=None)


def _set(campaign: Campaign, **counters: object) -> Campaign:
    Campaign.objects.filter(pk=campaign.pk).update(**counters)
    campaign.refresh_from_db()
    return campaign


# Start


def test_it_asks_before_sending_and_says_whom_it_will_reach(
    alice_client, campaign, django_capture_on_commit_callbacks
):
    # when alice opens "Send now"
    page = alice_client.get(f"/campaigns/{campaign.pk}/start/").content.decode()

    # then she is told who receives it, and nothing is sent yet
    assert "It goes to <strong>1</strong> recipient; 1 subscribed contact left out" in page
    assert ">Send now</button>" in page
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT

    # when she confirms
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = alice_client.post(f"/campaigns/{campaign.pk}/start/")

    # then the campaign is sending, its audience to be taken once the transaction commits
    assert response.status_code == 302
    assert response.url == f"/campaigns/{campaign.pk}/"
    assert _messages(response) == ["“Alpha Sentinel launch” is being sent."]
    campaign.refresh_from_db()
    assert campaign.status == State.SENDING
    assert campaign.started_at is not None
    assert len(callbacks) == 1
    assert AuditEntry.objects.filter(account=campaign.account, action="campaign.started").exists()


def test_it_refuses_to_start_and_says_every_reason(alice_client, world):
    draft = world.extras["campaign"]  # no list
    Campaign.objects.filter(pk=draft.pk).update(subject="")

    page = alice_client.get(f"/campaigns/{draft.pk}/start/").content.decode()
    assert "Write a subject." in page
    assert "Choose at least one list, or a segment." in page
    assert ">Send now</button>" not in page

    response = alice_client.post(f"/campaigns/{draft.pk}/start/")

    assert _messages(response) == ["Write a subject.", "Choose at least one list, or a segment."]
    draft.refresh_from_db()
    assert draft.status == State.DRAFT
    assert draft.started_at is None


# Schedule


@pytest.mark.parametrize(
    ("wall_clock", "utc"),
    [
        ("2031-07-01T09:30", dt.datetime(2031, 7, 1, 7, 30, tzinfo=UTC)),  # CEST, +02:00
        ("2031-01-15T09:30", dt.datetime(2031, 1, 15, 8, 30, tzinfo=UTC)),  # CET, +01:00
    ],
)
def test_it_schedules_at_a_wall_clock_time_of_the_accounts_zone(
    alice_client, world, campaign, wall_clock, utc
):
    world.account_a.time_zone = "Europe/Paris"
    world.account_a.save()

    response = alice_client.post(f"/campaigns/{campaign.pk}/schedule/", {"when": wall_clock})

    # then the instant stored is the one meant in Paris
    campaign.refresh_from_db()
    assert campaign.status == State.SCHEDULED
    assert campaign.scheduled_at == utc
    local = wall_clock.replace("T", " ")
    assert _messages(response) == [
        f"“Alpha Sentinel launch” will be sent on {local.replace(' ', ' at ')} (Europe/Paris)."
    ]
    # and it is shown back in Paris time
    page = alice_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert f"for {local} (Europe/Paris)" in page


def test_it_refuses_a_time_that_does_not_exist_in_the_accounts_zone(alice_client, world, campaign):
    world.account_a.time_zone = "Europe/Paris"
    world.account_a.save()

    # 02:30 is skipped when clocks go forward in Paris
    response = alice_client.post(
        f"/campaigns/{campaign.pk}/schedule/", {"when": "2031-03-30T02:30"}
    )

    [message] = _messages(response)
    assert message.startswith("Not scheduled:")
    assert "Europe/Paris" in message
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT


def test_it_refuses_a_time_in_the_past_with_the_services_reason(alice_client, campaign):
    response = alice_client.post(
        f"/campaigns/{campaign.pk}/schedule/", {"when": "2001-01-01T09:00"}
    )

    assert _messages(response) == ["Choose a time at least a minute from now."]
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT


def test_it_takes_a_scheduled_campaign_back_to_draft(alice_client, campaign):
    services.campaign_schedule(
        campaign=campaign, actor=None, when=timezone.now() + dt.timedelta(days=1)
    )
    page = alice_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert ">Back to draft</button>" in page
    assert 'id="campaign-form"' not in page  # scheduled: read-only

    alice_client.post(f"/campaigns/{campaign.pk}/unschedule/")

    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT
    assert campaign.scheduled_at is None


# Pause, resume, cancel


def test_it_pauses_resumes_and_cancels_a_send(
    alice_client, campaign, django_capture_on_commit_callbacks
):
    _sending(campaign, django_capture_on_commit_callbacks)
    page = alice_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert ">Pause</button>" in page
    assert ">Send now" not in page

    alice_client.post(f"/campaigns/{campaign.pk}/pause/")
    campaign.refresh_from_db()
    assert campaign.status == State.PAUSED
    assert ">Resume</button>" in alice_client.get(f"/campaigns/{campaign.pk}/").content.decode()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        alice_client.post(f"/campaigns/{campaign.pk}/resume/")
    campaign.refresh_from_db()
    assert campaign.status == State.SENDING
    assert len(callbacks) == 1

    # cancelling asks first
    page = alice_client.get(f"/campaigns/{campaign.pk}/cancel/").content.decode()
    assert "cannot be resumed" in page
    campaign.refresh_from_db()
    assert campaign.status == State.SENDING

    response = alice_client.post(f"/campaigns/{campaign.pk}/cancel/")
    assert _messages(response) == [
        "“Alpha Sentinel launch” is cancelled: nobody else will receive it."
    ]
    campaign.refresh_from_db()
    assert campaign.status == State.CANCELLED
    assert campaign.finished_at is not None


def test_it_shows_an_action_the_state_refuses_as_a_message(alice_client, campaign):
    response = alice_client.post(f"/campaigns/{campaign.pk}/pause/")

    assert _messages(response) == ["“Pause” is not possible while the campaign is draft."]
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT


def test_the_actions_are_post_only(alice_client, campaign):
    for action in ("schedule", "unschedule", "pause", "resume"):
        assert alice_client.get(f"/campaigns/{campaign.pk}/{action}/").status_code == 405


def test_a_viewer_sees_the_campaign_but_cannot_act(
    vera_client, campaign, django_capture_on_commit_callbacks
):
    page = vera_client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Send now" not in page
    assert 'id="schedule"' not in page

    for action in ("start", "cancel"):
        assert vera_client.get(f"/campaigns/{campaign.pk}/{action}/").status_code == 403
    assert vera_client.post(f"/campaigns/{campaign.pk}/start/").status_code == 403
    assert (
        vera_client.post(
            f"/campaigns/{campaign.pk}/schedule/", {"when": "2031-07-01T09:30"}
        ).status_code
        == 403
    )
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT

    _sending(campaign, django_capture_on_commit_callbacks)
    for action in ("pause", "cancel"):
        assert vera_client.post(f"/campaigns/{campaign.pk}/{action}/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == State.SENDING


def test_an_outsider_cannot_start_another_accounts_campaign(charlie_client, campaign):
    assert charlie_client.post(f"/campaigns/{campaign.pk}/start/").status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == State.DRAFT


# Progress


def test_the_progress_panel_polls_while_sending(alice_client, campaign):
    now = timezone.now()
    _set(
        campaign,
        status=State.SENDING,
        started_at=now - dt.timedelta(seconds=100),
        snapshot_at=now - dt.timedelta(seconds=99),
        recipients_count=1000,
        sent_count=400,
        failed_count=5,
        skipped_count=95,
    )

    response = alice_client.get(f"/campaigns/{campaign.pk}/progress/", HTTP_HX_REQUEST="true")

    # 500 of 1,000 handled in 100 s: 5 per second, 100 s to go
    panel = response.content.decode()
    assert 'hx-trigger="every 2s"' in panel
    assert f'hx-get="/campaigns/{campaign.pk}/progress/"' in panel
    assert "400 of 1,000 sent · 50%" in panel
    assert "5.0 per second" in panel
    assert "about 1\xa0minute left" in panel
    assert '<progress max="100" value="50"' in panel
    assert 'data-testid="failed-count">5<' in panel
    assert 'data-testid="skipped-count">95<' in panel
    assert "HX-Refresh" not in response


def test_the_progress_panel_costs_the_same_at_a_million_recipients(
    alice_client, campaign, django_assert_num_queries
):
    _set(
        campaign,
        status=State.SENDING,
        started_at=timezone.now(),
        snapshot_at=timezone.now(),
        recipients_count=1_000_000,
        sent_count=999_000,
    )
    alice_client.get(f"/campaigns/{campaign.pk}/progress/")

    # session, user, membership with its account, the campaign: no count of deliveries
    with django_assert_num_queries(4):
        response = alice_client.get(f"/campaigns/{campaign.pk}/progress/")

    assert "999,000 of 1,000,000 sent" in response.content.decode()


def test_the_progress_panel_stops_polling_once_sent(alice_client, campaign):
    now = timezone.now()
    _set(
        campaign,
        status=State.SENT,
        started_at=now - dt.timedelta(seconds=10),
        snapshot_at=now - dt.timedelta(seconds=10),
        finished_at=now,
        recipients_count=20,
        sent_count=20,
    )

    response = alice_client.get(f"/campaigns/{campaign.pk}/progress/", HTTP_HX_REQUEST="true")

    panel = response.content.decode()
    assert "hx-trigger" not in panel
    assert "20 of 20 sent · 100%" in panel
    # the page reloads once, to show the campaign as sent
    assert response["HX-Refresh"] == "true"


def test_the_page_shows_why_a_send_failed(alice_client, campaign):
    _set(
        campaign,
        status=State.FAILED,
        failure_reason="The sending backend refused the login.",
        finished_at=timezone.now(),
    )

    page = alice_client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert "The send failed: The sending backend refused the login." in page
    assert 'hx-trigger="every' not in page  # nothing polls


def test_the_page_lists_the_recent_failures(alice_client, world, campaign):
    erin = world.extras["contact"]
    Delivery.objects.create(
        campaign=campaign, contact=erin, status=Delivery.Status.FAILED, error="550 No such user"
    )
    _set(
        campaign,
        status=State.SENDING,
        started_at=timezone.now(),
        recipients_count=1,
        failed_count=1,
    )

    page = alice_client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert "Recent failures" in page
    assert "erin@alpha.test" in page
    assert "550 No such user" in page


def test_a_sending_campaign_is_shown_read_only(alice_client, campaign):
    _set(campaign, status=State.SENDING, started_at=timezone.now())

    page = alice_client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert 'id="campaign-form"' not in page
    assert 'data-testid="content"' in page
    assert "<dd>Hello</dd>" in page  # the subject
    assert "Before sending" not in page


def test_the_list_shows_each_status_and_sent_of_total(alice_client, campaign):
    _set(
        campaign,
        status=State.SENDING,
        snapshot_at=timezone.now(),
        recipients_count=1200,
        sent_count=300,
    )

    page = alice_client.get("/campaigns/").content.decode()

    assert 'data-testid="status">Sending<' in page
    assert "300 / 1,200" in page


def test_progress_comes_from_the_counters_alone(campaign, django_assert_num_queries):
    started = timezone.now() - dt.timedelta(seconds=50)
    campaign = _set(
        campaign,
        status=State.PAUSED,
        started_at=started,
        snapshot_at=started,
        recipients_count=1_000_000,
        sent_count=240_000,
        failed_count=10_000,
    )

    with django_assert_num_queries(0):
        progress = selectors.progress(campaign, now=started + dt.timedelta(seconds=50))

    assert (progress.total, progress.remaining, progress.percent) == (1_000_000, 750_000, 25)
    assert progress.rate == 5000.0
    assert progress.seconds_left is None  # paused: no estimate
    assert progress.finished is False


def test_recent_failures_are_not_looked_for_when_the_counter_says_none(
    campaign, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert selectors.recent_failures(campaign) == []
