"""Segments at 1,000,000 contacts and 10,000,000 events: the count, the builder page, the snapshot.

The data is made by set-based SQL (generate_series): a million contacts with a city (one
in ten in Lyon) and a score from 0 to 99, on two lists (2% unsubscribed), three in ten
tagged; ten campaigns over thirteen months, each sent to half of them (5,000,000
deliveries), with sent, open (a third by machines), click and bounce events: 10,000,000
in all, in their monthly partitions. Each contact's last open is then stamped from the
events by the same statement as the upgrade's migration (timed, for information).

Figures, each beside a baseline of the same run:
- the count of "city is Lyon AND has the tag AND opened in the last 90 days" (p50 of 10),
  beside the same predicate written by hand, and for information beside a hand-written
  query that reads the events instead of the stamp;
- the builder page with that segment and its live count (p99 of 20), beside GET /healthz;
- the snapshot of a 500,000-contact segment (score below 50) into the delivery ledger by
  ``take_snapshot``, beside the same ``INSERT … SELECT`` written by hand (median of 3).

``BENCH_SEGMENTS_CONTACTS`` scales it (events and deliveries follow).
"""

# ruff: noqa: S608 - the statements are this benchmark's constants
from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.test import Client
from django.utils import timezone

from benchmarks.harness import Figure, median, percentile, scratch_database, timings_ms

if TYPE_CHECKING:
    from accounts.models import Account, User

CONTACTS = int(os.environ.get("BENCH_SEGMENTS_CONTACTS", "1000000"))
CAMPAIGNS = 10
CITIES = ["Lyon", "Paris", "Lille", "Nantes", "Nice", "Metz", "Brest", "Dijon", "Caen", "Tours"]
COUNTS = 10
PAGES = 20
SNAPSHOTS = 3


def _execute(statement: str, params: Any = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _scalar(statement: str, params: Any = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _make_data(account: Account) -> dict[str, int]:
    from campaigns.models import Campaign, Link
    from campaigns.states import State
    from contacts.models import AttributeDefinition, ContactList, Tag
    from events import partitions

    started_at = time.perf_counter()
    now = timezone.now()
    lists = [ContactList.objects.create(account=account, name=f"List {n}") for n in (1, 2)]
    tag = Tag.objects.create(account=account, name="vip")
    AttributeDefinition.objects.create(account=account, name="city", type="text")
    AttributeDefinition.objects.create(account=account, name="score", type="number")
    _execute(
        "INSERT INTO contacts_contact (account_id, email, first_name, last_name, attributes, "
        "created_at, updated_at) "
        "SELECT %(account)s, 'person' || n || '@example' || (n %% 50) || '.test', 'P', 'Q', "
        "jsonb_build_object('city', (%(cities)s::text[])[1 + (n * 7) %% 10], "
        "'score', (n * 13) %% 100), "
        "%(now)s - (n %% 700) * interval '1 day', %(now)s "
        "FROM generate_series(1, %(contacts)s) AS n",
        {"account": account.pk, "cities": CITIES, "now": now, "contacts": CONTACTS},
    )
    low = _scalar("SELECT min(id) FROM contacts_contact WHERE account_id = %s", [account.pk])
    _execute(
        "INSERT INTO contacts_subscription (contact_id, contact_list_id, status, source, "
        "legal_basis, consent_at, consent_user_agent, consent_text, created_at, updated_at) "
        "SELECT id, CASE WHEN id %% 2 = 0 THEN %(l1)s ELSE %(l2)s END, "
        "CASE WHEN id %% 50 = 0 THEN 'unsubscribed' ELSE 'subscribed' END, 'import', "
        "'consent', %(now)s, '', '', %(now)s, %(now)s FROM contacts_contact "
        "WHERE account_id = %(account)s",
        {"l1": lists[0].pk, "l2": lists[1].pk, "now": now, "account": account.pk},
    )
    _execute(
        "INSERT INTO contacts_contacttag (tag_id, contact_id, created_at) "
        "SELECT %s, id, now() FROM contacts_contact WHERE account_id = %s AND id %% 10 < 3",
        [tag.pk, account.pk],
    )
    month = (now - timedelta(days=400)).date().replace(day=1)
    while month <= now.date():
        partitions.create_partition(month)
        month = partitions._add_months(month, 1)
    per_campaign = CONTACTS // 2
    opens_each = int(CONTACTS * 0.35)
    clicks_each = int(CONTACTS * 0.12)
    campaign_ids = []
    for n in range(CAMPAIGNS):
        sent = now - timedelta(days=5 + 39 * n)  # every five to six weeks, back 13 months
        campaign = Campaign.objects.create(
            account=account,
            name=f"Campaign {n}",
            subject="Hello",
            from_email="news@bench.example",
            html="<p>Hi</p>",
            status=State.SENT,
            snapshot_at=sent,
            started_at=sent,
            finished_at=sent + timedelta(hours=1),
        )
        campaign_ids.append(campaign.pk)
        link = Link.objects.create(campaign=campaign, position=0, url="https://bench.example/")
        common = {
            "account": account.pk,
            "campaign": campaign.pk,
            "sent": sent,
            "low": low,
            "offset": n * 97_003,
            "n": per_campaign,
            "contacts": CONTACTS,
            "opens": opens_each,
            "clicks": clicks_each,
            "link": link.pk,
        }
        # Half the contacts, a different half each time.
        _execute(
            "INSERT INTO campaigns_delivery (campaign_id, contact_id, status, sent_at) "
            "SELECT %(campaign)s, %(low)s + (k * 2 + %(offset)s) %% %(contacts)s, 'sent', "
            "%(sent)s FROM generate_series(0, %(n)s::bigint - 1) AS k "
            "ON CONFLICT DO NOTHING",
            common,
        )
        deliveries = (
            "WITH d AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM campaigns_delivery "
            "WHERE campaign_id = %(campaign)s) "
        )
        _execute(
            deliveries + "INSERT INTO stats_event (account_id, campaign_id, delivery_id, type, "
            "occurred_at, machine, detail) SELECT %(account)s, %(campaign)s, d.id, "
            "CASE WHEN d.n %% 100 = 0 THEN 'bounce' ELSE 'sent' END, "
            "%(sent)s + (d.n %% 3600) * interval '1 second', false, "
            "CASE WHEN d.n %% 200 = 0 THEN '{\"kind\": \"soft\"}'::jsonb ELSE '{}'::jsonb END "
            "FROM d",
            common,
        )
        _execute(
            deliveries + "INSERT INTO stats_event (account_id, campaign_id, delivery_id, type, "
            "occurred_at, machine, detail) SELECT %(account)s, %(campaign)s, d.id, 'open', "
            "%(sent)s + ((k %% 1000) ^ 2 / 1000000.0 * 259000) * interval '1 second', "
            "k %% 3 = 0, '{}' FROM generate_series(1, %(opens)s::bigint) AS k "
            "JOIN d ON d.n = 1 + (k * 7919) %% %(n)s",
            common,
        )
        _execute(
            deliveries + "INSERT INTO stats_event (account_id, campaign_id, delivery_id, "
            "link_id, type, occurred_at, machine, detail) SELECT %(account)s, %(campaign)s, "
            "d.id, %(link)s, 'click', "
            "%(sent)s + ((k %% 997) ^ 2 / 994009.0 * 259000) * interval '1 second', "
            "k %% 10 = 0, '{}' FROM generate_series(1, %(clicks)s::bigint) AS k "
            "JOIN d ON d.n = 1 + (k * 104729) %% %(n)s",
            common,
        )
    events = _scalar("SELECT count(*) FROM stats_event WHERE account_id = %s", [account.pk])
    generated = time.perf_counter() - started_at
    stamped_at = time.perf_counter()
    from importlib import import_module

    backfill = import_module("campaigns.migrations.0007_engagement_stamps").BACKFILL
    _execute(backfill)
    stamped = time.perf_counter() - stamped_at
    _execute("ANALYZE")
    print(
        f"   data: {CONTACTS:,} contacts, {CAMPAIGNS * per_campaign:,} deliveries, "
        f"{events:,} events in {generated:.0f} s; last opens and clicks stamped from the "
        f"events (the upgrade's migration) in {stamped:.0f} s"
    )
    return {"tag": tag.pk, "list1": lists[0].pk, "list2": lists[1].pk, "campaign": campaign_ids[0]}


def _count_figures(account: Account, ids: dict[str, int]) -> list[Figure]:
    from audiences import selectors

    definition = {
        "match": "all",
        "conditions": [
            {"field": "attributes.city", "op": "is", "value": "Lyon"},
            {"field": "tag", "op": "has", "value": ids["tag"]},
            {"field": "opened", "op": "in_last_days", "value": 90},
        ],
    }
    by_hand = (
        "SELECT count(*) FROM contacts_contact c WHERE c.account_id = %(account)s "
        "AND lower(c.attributes ->> 'city') = 'lyon' "
        "AND EXISTS (SELECT 1 FROM contacts_contacttag t WHERE t.contact_id = c.id "
        "AND t.tag_id = %(tag)s) "
        "AND c.last_opened_at >= now() - interval '90 days'"
    )
    from_events = (
        "SELECT count(*) FROM contacts_contact c WHERE c.account_id = %(account)s "
        "AND lower(c.attributes ->> 'city') = 'lyon' "
        "AND EXISTS (SELECT 1 FROM contacts_contacttag t WHERE t.contact_id = c.id "
        "AND t.tag_id = %(tag)s) "
        "AND c.id IN (SELECT d.contact_id FROM stats_event e "
        "JOIN campaigns_delivery d ON d.id = e.delivery_id "
        "WHERE e.account_id = %(account)s AND e.type = 'open' AND NOT e.machine "
        "AND e.occurred_at >= now() - interval '90 days')"
    )
    params = {"account": account.pk, "tag": ids["tag"]}
    found = selectors.count(account, definition)
    assert found == _scalar(by_hand, params), "the compiled count must equal the hand-written"
    assert found == _scalar(from_events, params), "the stamp must agree with the events"
    print(f"   segment count: {found:,} contacts")
    compiled = timings_ms(lambda: selectors.count(account, definition), COUNTS, warmup=2)
    hand = timings_ms(lambda: _scalar(by_hand, params), COUNTS, warmup=2)
    events = timings_ms(lambda: _scalar(from_events, params), 3, warmup=1)
    or_group = {
        "match": "all",
        "conditions": [
            {"field": "list", "op": "subscribed", "value": ids["list1"]},
            {
                "match": "any",
                "conditions": [
                    {"field": "attributes.score", "op": "gte", "value": 90},
                    {
                        "field": "clicked",
                        "op": "in_last_days",
                        "value": 30,
                        "campaign": ids["campaign"],
                    },
                ],
            },
        ],
    }
    other = timings_ms(lambda: selectors.count(account, or_group), 5, warmup=1)
    return [
        Figure(
            "count, 3 conditions (p50 ms)",
            median(compiled),
            "hand-written SQL",
            median(hand),
            "ms",
            "under 1000 ms",
        ),
        Figure(
            "hand SQL reading events instead (p50 ms)",
            median(events),
            "hand SQL on the stamp",
            median(hand),
            "ms",
            "information",
        ),
        Figure(
            "count, list AND (score OR clicked campaign 30 d) (p50 ms)",
            median(other),
            "3-condition count",
            median(compiled),
            "ms",
            "information",
        ),
    ]


def _page_figure(user: User, ids: dict[str, int]) -> Figure:
    client = Client()
    client.force_login(user, backend="allauth.account.auth_backends.AuthenticationBackend")
    form = {
        "name": "Lyon openers",
        "r-match": "all",
        "r_0-field": "attributes.city",
        "r_0-op": "is",
        "r_0-value": "Lyon",
        "r_1-field": "tag",
        "r_1-op": "has",
        "r_1-value": str(ids["tag"]),
        "r_2-field": "opened",
        "r_2-op": "in_last_days",
        "r_2-value": "90",
    }

    def builder() -> None:
        response = client.post("/segments/new/", form, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert b"live-count" in response.content

    def health() -> None:
        assert client.get("/healthz").status_code == 200

    page = timings_ms(builder, PAGES, warmup=2)
    baseline = timings_ms(health, PAGES, warmup=2)
    return Figure(
        "builder page with live count (p99 ms)",
        percentile(page, 99),
        "GET /healthz",
        percentile(baseline, 99),
        "ms",
        "under 1500 ms",
    )


_HAND_SNAPSHOT = """
INSERT INTO campaigns_delivery (campaign_id, contact_id)
SELECT DISTINCT %(campaign)s, s.contact_id
FROM contacts_subscription s
JOIN contacts_contact c ON c.id = s.contact_id
WHERE s.contact_list_id = ANY(%(lists)s) AND s.status = 'subscribed'
  AND c.account_id = %(account)s
  AND CASE WHEN jsonb_typeof(c.attributes -> 'score') = 'number'
      THEN (c.attributes ->> 'score')::float8 END < 50
  AND NOT EXISTS (SELECT 1 FROM contacts_suppression x
      WHERE x.email_sha256 = encode(sha256(convert_to(c.email, 'UTF8')), 'hex')
        AND (x.account_id = %(account)s OR x.account_id IS NULL))
ORDER BY 2
ON CONFLICT (campaign_id, contact_id) WHERE enrollment_id IS NULL DO NOTHING
"""


def _snapshot_figure(account: Account, user: User, ids: dict[str, int]) -> Figure:
    from audiences import services as audience_services
    from campaigns import sending
    from campaigns.models import Campaign
    from campaigns.states import State

    segment = audience_services.segment_create(
        account=account,
        actor=user,
        name="Score below 50",
        definition={
            "match": "all",
            "conditions": [{"field": "attributes.score", "op": "lt", "value": 50}],
        },
    )

    def campaign(name: str) -> Campaign:
        made = Campaign.objects.create(
            account=account,
            name=name,
            subject="Hello",
            from_email="news@bench.example",
            html="<p>Hi</p>",
            status=State.SENDING,
            started_at=timezone.now(),
            segment=segment,
        )
        made.lists.set([ids["list1"], ids["list2"]])
        return made

    ours, hand, sizes = [], [], set()
    for round_ in range(SNAPSHOTS):
        mine = campaign(f"Snapshot {round_}")
        started = time.perf_counter()
        sizes.add(sending.take_snapshot(mine.pk))
        ours.append(time.perf_counter() - started)
        theirs = campaign(f"By hand {round_}")
        started = time.perf_counter()
        sizes.add(
            _execute(
                _HAND_SNAPSHOT,
                {
                    "campaign": theirs.pk,
                    "lists": [ids["list1"], ids["list2"]],
                    "account": account.pk,
                },
            )
        )
        hand.append(time.perf_counter() - started)
        _execute(
            "DELETE FROM campaigns_delivery WHERE campaign_id IN (%s, %s)", [mine.pk, theirs.pk]
        )
        _execute("VACUUM ANALYZE campaigns_delivery")
    assert len(sizes) == 1, f"both snapshots must take the same audience, got {sizes}"
    print(f"   snapshot: {sizes.pop():,} recipients")
    return Figure(
        "snapshot of a segment (median s)",
        median(ours),
        "INSERT … SELECT by hand",
        median(hand),
        "s",
        "at most 1.5x",
    )


def run() -> list[Figure]:
    from accounts import services as account_services
    from accounts.models import User

    with scratch_database():
        user = User.objects.create_user(
            email="owner@bench.example",
            password="Bench-pass-1",  # noqa: S106 - a scratch database's user
            first_name="Bench",
        )
        account = account_services.account_create(owner=user, name="Bench segments")
        ids = _make_data(account)
        figures = _count_figures(account, ids)
        figures.append(_page_figure(user, ids))
        figures.append(_snapshot_figure(account, user, ids))
        return figures
