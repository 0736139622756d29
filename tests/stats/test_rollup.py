"""The roll-up folds new events into the report counters exactly once: people and
machines apart, recipients counted once, per link, per hour and per domain. Run twice or
from two workers at once it counts nothing twice, and it never steps over an event whose
transaction commits after a later one's."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

from django.db import connection, connections

from campaigns.models import Campaign
from stats.models import (
    CampaignStats,
    DomainStats,
    HourlyStats,
    LinkStats,
    MachineStats,
    RollupState,
)
from stats.rollup import rollup
from stats.tasks import rollup_task
from tests.stats.campaign_with_events import STORY_EMAILS, record_story, sent_campaign

COUNTER_FIELDS = [
    f.name
    for f in CampaignStats._meta.fields
    if f.name not in ("campaign", "account", "updated_at")
]


def _counters(campaign: Campaign) -> dict[str, int]:
    stats = CampaignStats.objects.get(campaign=campaign)
    return {name: getattr(stats, name) for name in COUNTER_FIELDS}


STORY_COUNTERS = {
    "sent": 5,
    "delivered": 3,
    "opens": 4,
    "machine_opens": 2,
    "opens_unique": 2,
    "opens_unique_all": 3,
    "clicks": 4,
    "machine_clicks": 2,
    "clicks_unique": 2,
    "clicks_unique_all": 3,
    "anonymous_opens": 0,
    "anonymous_clicks": 0,
    "bounced": 2,
    "bounced_hard": 1,
    "bounced_soft": 1,
    "bounced_other": 0,
    "deferred": 0,
    "complaints": 1,
    "unsubscribes": 1,
}


def test_it_counts_people_and_machines_apart_and_each_recipient_once(world):
    # given a campaign sent to five people, and what they (and machines) did
    sc = sent_campaign(world.account_a, STORY_EMAILS)
    record_story(sc)

    # when the roll-up runs
    run = rollup(wait=0)

    # then totals count events, *_unique count recipients, machines are kept apart
    assert run.events == 5 + 20
    assert _counters(sc.campaign) == STORY_COUNTERS
    assert CampaignStats.objects.get(campaign=sc.campaign).account == world.account_a


def test_it_counts_clicks_per_link(world):
    sc = sent_campaign(world.account_a, STORY_EMAILS)
    record_story(sc)

    rollup(wait=0)

    sale, boots = (LinkStats.objects.get(link=link) for link in sc.links)
    assert (sale.clicks, sale.machine_clicks, sale.clicks_unique, sale.clicks_unique_all) == (
        3,
        1,
        2,
        3,
    )
    assert (boots.clicks, boots.machine_clicks, boots.clicks_unique, boots.clicks_unique_all) == (
        1,
        1,
        1,
        2,
    )
    assert {sale.campaign_id, boots.campaign_id} == {sc.campaign.pk}


def test_it_counts_opens_and_clicks_per_hour(world):
    sc = sent_campaign(world.account_a, STORY_EMAILS)
    record_story(sc)

    rollup(wait=0)

    hours = {
        h.hour: (h.opens, h.machine_opens, h.clicks, h.machine_clicks)
        for h in HourlyStats.objects.filter(campaign=sc.campaign)
    }
    assert hours == {
        datetime(2026, 11, 2, 9, tzinfo=UTC): (2, 2, 2, 2),
        datetime(2026, 11, 2, 11, tzinfo=UTC): (2, 0, 2, 0),
    }


def test_it_counts_recipients_per_domain(world):
    sc = sent_campaign(world.account_a, STORY_EMAILS)
    record_story(sc)

    rollup(wait=0)

    domains = {
        d.domain: (
            d.sent,
            d.delivered,
            d.opens_unique,
            d.opens_unique_all,
            d.clicks_unique,
            d.clicks_unique_all,
            d.bounced_hard,
            d.bounced_soft,
            d.complaints,
            d.unsubscribes,
        )
        for d in DomainStats.objects.filter(campaign=sc.campaign)
    }
    assert domains == {
        "gmail.test": (2, 2, 2, 2, 2, 2, 0, 0, 1, 1),
        "yahoo.test": (2, 1, 0, 1, 0, 1, 0, 1, 0, 0),
        "corp.test": (1, 0, 0, 0, 0, 0, 1, 0, 0, 0),
    }


def test_it_counts_a_recipient_once_across_runs(world):
    # given a first open and a first click on the sale link, already rolled up
    sc = sent_campaign(world.account_a, ["ann@gmail.test", "ben@gmail.test"])
    sc.record(
        sc.event("open", "ann@gmail.test"),
        sc.event("click", "ann@gmail.test", link=0),
        sc.event("bounce", "ben@gmail.test", kind="soft"),
    )
    rollup(wait=0)

    # when ann opens and clicks again, on both links, ben bounces again, then opens
    sc.record(
        sc.event("open", "ann@gmail.test", at=timedelta(hours=5)),
        sc.event("click", "ann@gmail.test", at=timedelta(hours=5), link=0),
        sc.event("click", "ann@gmail.test", at=timedelta(hours=5), link=1),
        sc.event("bounce", "ben@gmail.test", at=timedelta(hours=6), kind="soft"),
        sc.event("open", "ben@gmail.test", at=timedelta(hours=7)),
    )
    rollup(wait=0)

    # then each recipient counts once per kind, the events every time
    stats = CampaignStats.objects.get(campaign=sc.campaign)
    assert (stats.opens, stats.opens_unique) == (3, 2)
    assert (stats.clicks, stats.clicks_unique) == (3, 1)
    assert (stats.bounced, stats.bounced_soft) == (1, 1)
    sale, boots = (LinkStats.objects.get(link=link) for link in sc.links)
    assert (sale.clicks, sale.clicks_unique) == (2, 1)
    assert (boots.clicks, boots.clicks_unique) == (1, 1)
    gmail = DomainStats.objects.get(campaign=sc.campaign, domain="gmail.test")
    assert (gmail.opens_unique, gmail.clicks_unique, gmail.bounced) == (2, 1, 1)


def test_a_second_run_counts_nothing_twice(world):
    sc = sent_campaign(world.account_a, STORY_EMAILS)
    record_story(sc)
    first = rollup(wait=0)

    again = rollup(wait=0)

    assert again.events == 0
    assert again.last_event_id == first.last_event_id
    assert _counters(sc.campaign) == STORY_COUNTERS
    assert HourlyStats.objects.filter(campaign=sc.campaign).count() == 2


def test_it_says_how_fresh_the_counters_are(world):
    before = datetime.now(UTC)

    run = rollup(wait=0)

    state = RollupState.objects.get()
    assert state.as_of == run.as_of
    assert before - timedelta(seconds=1) < state.as_of <= datetime.now(UTC)
    assert state.last_event_id == run.last_event_id


def test_it_counts_policy_rejections_as_bounces_of_their_own_kind(world):
    # given what provider feedback records (stats/feedback.py): a receiving server's
    # refusal for the sender's reputation, the provider's own refusal, a deferral
    sc = sent_campaign(world.account_a, ["ann@gmail.test", "ben@gmail.test", "cat@gmail.test"])
    sc.record(
        sc.event("rejected", "ann@gmail.test", kind="policy", status="5.7.1"),
        sc.event("rejected", "ben@gmail.test", kind="rejected"),
        sc.event("deferred", "cat@gmail.test", kind="soft", deferred=True),
    )

    rollup(wait=0)

    # then only the policy refusal is a bounce, of the "other" kind
    stats = CampaignStats.objects.get(campaign=sc.campaign)
    assert (stats.bounced, stats.bounced_other, stats.bounced_hard, stats.bounced_soft) == (
        1,
        1,
        0,
        0,
    )


def test_it_counts_the_senders_deferrals_as_sending_problems(world):
    # given what provider feedback records (stats/feedback.py): Gmail's rate limit, twice
    # for ann; a message to ben given up on after its server stayed busy; cat's full
    # mailbox, which is hers, not the sender's
    sc = sent_campaign(
        world.account_a,
        ["ann@gmail.test", "ben@gmail.test", "cat@gmail.test", "dan@gmail.test"],
    )
    sc.record(
        sc.event("deferred", "ann@gmail.test", kind="policy", status="4.7.28", deferred=True),
        sc.event("deferred", "ann@gmail.test", kind="policy", status="4.7.28", deferred=True),
        sc.event("failed", "ben@gmail.test", kind="deferred", status="4.3.2"),
        sc.event("deferred", "cat@gmail.test", kind="soft", status="4.2.2", deferred=True),
        sc.event("failed", "dan@gmail.test", error="Gave up after 5 attempts"),
    )

    rollup(wait=0)

    # then ann and ben count once each as sending problems, nobody as a bounce
    stats = CampaignStats.objects.get(campaign=sc.campaign)
    assert (stats.deferred, stats.bounced) == (2, 0)


def test_it_counts_machines_by_why_they_were_judged_so(world):
    # given the story, and a machine open recorded before reasons were kept
    sc = sent_campaign(world.account_a, STORY_EMAILS)
    record_story(sc)
    sc.record(sc.event("open", "ben@gmail.test", at=timedelta(minutes=4), machine=True))

    # when the roll-up runs twice
    rollup(wait=0)
    rollup(wait=0)

    # then each reason has its opens and clicks, once
    rows = MachineStats.objects.filter(campaign=sc.campaign).order_by("reason")
    assert [(r.reason, r.opens, r.clicks) for r in rows] == [
        ("", 1, 0),
        ("apple_mpp", 2, 0),
        ("scanner", 0, 1),
        ("timing", 0, 1),
    ]
    assert {r.account_id for r in rows} == {world.account_a.pk}


def test_it_counts_anonymous_opens_in_the_totals_only(world):
    sc = sent_campaign(world.account_a, ["ann@gmail.test"])
    anonymous = sc.event("open", "ann@gmail.test")
    sc.record(dataclasses.replace(anonymous, delivery_id=None))

    rollup(wait=0)

    stats = CampaignStats.objects.get(campaign=sc.campaign)
    assert (stats.opens, stats.opens_unique, stats.anonymous_opens) == (1, 0, 1)


def test_it_passes_over_events_of_a_deleted_campaign(world):
    gone = sent_campaign(world.account_a, ["ann@gmail.test"], name="Gone")
    kept = sent_campaign(world.account_a, ["ben@gmail.test"], name="Kept")
    Campaign.objects.filter(pk=gone.campaign.pk).delete()

    run = rollup(wait=0)

    assert run.events == 1
    assert not CampaignStats.objects.filter(campaign_id=gone.campaign.pk).exists()
    assert CampaignStats.objects.get(campaign=kept.campaign).sent == 1


def test_the_beat_task_runs_the_rollup(world):
    sc = sent_campaign(world.account_a, ["ann@gmail.test"])

    assert rollup_task() == 1
    assert CampaignStats.objects.get(campaign=sc.campaign).sent == 1


# -- concurrency: committed data, other connections --------------------------------------------


def _other_connection():
    """A second session on the test database, in a transaction of its own."""
    other = connections.create_connection("default")
    other.connect()
    other.set_autocommit(False)
    return other


def _insert_open(cursor, sc, email: str) -> None:
    cursor.execute(
        "INSERT INTO stats_event (account_id, campaign_id, delivery_id, type, occurred_at, "
        "machine, detail) VALUES (%s, %s, %s, 'open', now(), false, '{}')",
        [sc.campaign.account_id, sc.campaign.pk, sc.deliveries[email].pk],
    )


def test_it_never_steps_over_an_event_committed_late(transactional_db, world):
    # given a campaign, its sent events counted
    sc = sent_campaign(world.account_a, ["ann@gmail.test", "ben@gmail.test"])
    rollup(wait=0)
    other = _other_connection()
    try:
        # when another session records ann's open (an id drawn, not yet committed) and
        # ben's open, drawn after it, is committed first
        with other.cursor() as cursor:
            _insert_open(cursor, sc, "ann@gmail.test")
        sc.record(sc.event("open", "ben@gmail.test"))

        held = rollup(wait=0.05)

        # then the roll-up holds back rather than count ben's and lose ann's for ever
        assert held.held_back
        assert held.events == 0
        assert CampaignStats.objects.get(campaign=sc.campaign).opens == 0

        # and once ann's open is committed, both are counted, once
        other.commit()
    finally:
        other.close()
    rollup(wait=0)
    rollup(wait=0)
    stats = CampaignStats.objects.get(campaign=sc.campaign)
    assert (stats.opens, stats.opens_unique) == (2, 2)


def test_it_moves_on_when_a_late_event_is_rolled_back(transactional_db, world):
    sc = sent_campaign(world.account_a, ["ann@gmail.test", "ben@gmail.test"])
    other = _other_connection()
    try:
        with other.cursor() as cursor:
            _insert_open(cursor, sc, "ann@gmail.test")
        sc.record(sc.event("open", "ben@gmail.test"))
        assert rollup(wait=0.05).held_back
        other.rollback()
    finally:
        other.close()

    run = rollup(wait=0)

    assert not run.held_back
    stats = CampaignStats.objects.get(campaign=sc.campaign)
    assert (stats.sent, stats.opens) == (2, 1)


def test_a_run_while_another_is_at_work_does_nothing(transactional_db, world):
    sc = sent_campaign(world.account_a, ["ann@gmail.test"])
    rollup(wait=0)
    sc.record(sc.event("open", "ann@gmail.test"))
    other = _other_connection()
    try:
        # another worker's run holds the state row
        with other.cursor() as cursor:
            cursor.execute("SELECT 1 FROM stats_rollupstate WHERE id = 1 FOR UPDATE")

        run = rollup(wait=0)

        assert run.skipped
        assert CampaignStats.objects.get(campaign=sc.campaign).opens == 0
    finally:
        other.rollback()
        other.close()
    assert rollup(wait=0).events == 1


def test_runs_at_the_same_time_count_every_event_once(transactional_db, world):
    # given events arriving while four workers run the roll-up over and over
    sc = sent_campaign(world.account_a, ["ann@gmail.test", "ben@gmail.test"])
    done = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while not done.is_set():
                rollup(wait=0.5)
        except BaseException as error:  # reported to the test below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for n in range(60):
            sc.record(sc.event("open", "ann@gmail.test" if n % 2 else "ben@gmail.test"))
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=30)

    # when a last run catches up
    rollup(wait=1)

    # then every event is counted exactly once
    assert errors == []
    stats = CampaignStats.objects.get(campaign=sc.campaign)
    assert (stats.sent, stats.opens, stats.opens_unique) == (2, 60, 2)
