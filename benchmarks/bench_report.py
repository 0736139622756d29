"""Campaign report at 1,000,000 recipients and 3,000,000 events, and the roll-up that keeps it.

The data is made by set-based SQL (generate_series): contacts at 40 domains, one delivery
each, then sent, delivered, bounce, open (a third of them by machines) and click events
spread over three days. The roll-up runs once over all of it (timed beside a single
GROUP BY over the same events, what a report without counters would pay on every view),
then the report page, its machine view and the API are requested beside GET /healthz.
Last, the roll-up's steady state: a run after 10,000 new events, and runs every second
while another session records events one INSERT at a time, as the pixel endpoint does
(how long a run waits for writers, how far behind the counters are just after it).

``BENCH_REPORT_RECIPIENTS`` scales the campaign (events are three per recipient).
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import connection
from django.test import Client
from django.utils import timezone

from benchmarks.harness import Figure, median, percentile, scratch_database, timings_ms

if TYPE_CHECKING:
    from accounts.models import Account, User
    from campaigns.models import Campaign

RECIPIENTS = int(os.environ.get("BENCH_REPORT_RECIPIENTS", "1000000"))
REQUESTS = 50
LINKS = 5
DOMAINS = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "gmx.de",
    "web.de",
    "aol.com",
    "proton.me",
    "wanadoo.fr",
    "sfr.fr",
    "live.com",
    "msn.com",
    "yahoo.fr",
    "hotmail.fr",
    "t-online.de",
    "libero.it",
] + [f"company{n}.example" for n in range(20)]


def _execute(statement: str, params: list | dict | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _make_campaign(owner: User, account: Account) -> Campaign:
    from campaigns.models import Campaign, Link
    from campaigns.states import State

    started = timezone.now() - timedelta(days=3)
    campaign = Campaign.objects.create(
        account=account,
        name="Bench million",
        subject="Hello",
        from_email="news@bench.example",
        html="<p>Hi</p>",
        status=State.SENT,
        snapshot_at=started,
        started_at=started,
        finished_at=started + timedelta(hours=1),
        recipients_count=RECIPIENTS,
        sent_count=RECIPIENTS,
        created_by=owner,
    )
    for position in range(1, LINKS + 1):
        Link.objects.create(
            campaign=campaign, position=position, url=f"https://bench.example/p{position}"
        )
    started_at = time.perf_counter()
    _execute(
        "INSERT INTO contacts_contact (account_id, email, first_name, last_name, attributes, "
        "created_at, updated_at) "
        "SELECT %(account)s, 'person' || n || '@' || (%(domains)s::text[])[1 + n %% %(count)s], "
        "'', '', '{}', now(), now() FROM generate_series(1, %(recipients)s) AS n",
        {
            "account": account.pk,
            "domains": DOMAINS,
            "count": len(DOMAINS),
            "recipients": RECIPIENTS,
        },
    )
    _execute(
        "INSERT INTO campaigns_delivery (campaign_id, contact_id, status, sent_at) "
        "SELECT %s, id, 'sent', %s FROM contacts_contact WHERE account_id = %s ORDER BY id",
        [campaign.pk, started, account.pk],
    )
    _make_events(campaign, started)
    _execute("ANALYZE")
    print(
        f"   data: {RECIPIENTS:,} contacts and deliveries, {3 * RECIPIENTS:,} events "
        f"in {time.perf_counter() - started_at:.0f} s"
    )
    return campaign


def _make_events(campaign: Campaign, started: datetime) -> None:
    """3 events per recipient: sent (all), delivered (97%) or bounce (2% hard, 1% soft),
    opens (70 per 100 recipients, a third by machines, most in the first hours) and
    clicks (30 per 100, a tenth by scanners) over the campaign's links."""
    common = {
        "account": campaign.account_id,
        "campaign": campaign.pk,
        "started": started,
        "n": RECIPIENTS,
        "links": LINKS,
    }
    _execute(
        """
        WITH d AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM campaigns_delivery
                   WHERE campaign_id = %(campaign)s)
        INSERT INTO stats_event (account_id, campaign_id, delivery_id, type, occurred_at,
                                 machine, detail)
        SELECT %(account)s, %(campaign)s, d.id, 'sent',
               %(started)s + (d.n %% 3600) * interval '1 second', false, '{}'
        FROM d
        """,
        common,
    )
    _execute(
        """
        WITH d AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM campaigns_delivery
                   WHERE campaign_id = %(campaign)s)
        INSERT INTO stats_event (account_id, campaign_id, delivery_id, type, occurred_at,
                                 machine, detail)
        SELECT %(account)s, %(campaign)s, d.id,
               CASE WHEN d.n %% 100 < 3 THEN 'bounce' ELSE 'delivered' END,
               %(started)s + (d.n %% 3600 + 20) * interval '1 second', false,
               CASE WHEN d.n %% 100 < 2 THEN '{"kind": "hard"}'::jsonb
                    WHEN d.n %% 100 < 3 THEN '{"kind": "soft"}'::jsonb ELSE '{}'::jsonb END
        FROM d
        """,
        common,
    )
    # Opens and clicks land on recipients spread by a multiplicative hash, most of them
    # in the first hours (the square of a uniform draw), up to three days.
    _execute(
        """
        WITH d AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM campaigns_delivery
                   WHERE campaign_id = %(campaign)s)
        INSERT INTO stats_event (account_id, campaign_id, delivery_id, type, occurred_at,
                                 machine, detail)
        SELECT %(account)s, %(campaign)s, d.id, 'open',
               %(started)s + ((k %% 1000) ^ 2 / 1000000.0 * 259000) * interval '1 second',
               k %% 3 = 0, '{}'
        FROM generate_series(1, (%(n)s * 7 / 10)::bigint) AS k
        JOIN d ON d.n = 1 + (k * 7919) %% %(n)s
        """,
        common,
    )
    _execute(
        """
        WITH d AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM campaigns_delivery
                   WHERE campaign_id = %(campaign)s)
        INSERT INTO stats_event (account_id, campaign_id, delivery_id, link_id, type,
                                 occurred_at, machine, detail)
        SELECT %(account)s, %(campaign)s, d.id, l.id, 'click',
               %(started)s + ((k %% 997) ^ 2 / 994009.0 * 259000) * interval '1 second',
               k %% 10 = 0, '{}'
        FROM generate_series(1, (%(n)s * 3 / 10)::bigint) AS k
        JOIN d ON d.n = 1 + (k * 104729) %% %(n)s
        JOIN campaigns_link AS l
          ON l.campaign_id = %(campaign)s AND l.position = 1 + k %% %(links)s
        """,
        common,
    )


def _naive_aggregate(campaign_id: int) -> float:
    """What a report without counters would run on every view: one pass over the
    campaign's events."""
    started = time.perf_counter()
    _execute(
        "SELECT type, machine, count(*), count(DISTINCT delivery_id) FROM stats_event "
        "WHERE campaign_id = %s GROUP BY type, machine",
        [campaign_id],
    )
    return time.perf_counter() - started


def _new_opens(campaign: Campaign, count: int, offset: int) -> None:
    _execute(
        "INSERT INTO stats_event (account_id, campaign_id, delivery_id, type, occurred_at, "
        "machine, detail) "
        "SELECT %(account)s, %(campaign)s, d.id, 'open', now(), false, '{}' "
        "FROM generate_series(1, %(count)s) AS k "
        "JOIN campaigns_delivery AS d ON d.id = (SELECT min(id) FROM campaigns_delivery "
        "WHERE campaign_id = %(campaign)s) + (k * 31 + %(offset)s) %% %(n)s",
        {
            "account": campaign.account_id,
            "campaign": campaign.pk,
            "count": count,
            "offset": offset,
            "n": RECIPIENTS,
        },
    )


def _steady_state(campaign: Campaign) -> tuple[float, float, float, int]:
    """Runs every second for 10 s while another session inserts opens one transaction
    at a time: (mean run seconds, max seconds behind just after a run, inserts per
    second, runs held back by a writer)."""
    from django.db import connections

    from stats.rollup import rollup

    stop = threading.Event()
    inserted = [0]
    min_id = _first_delivery(campaign.pk)

    def writer() -> None:
        other = connections.create_connection("default")
        other.connect()
        try:
            with other.cursor() as cursor:
                n = 0
                while not stop.is_set():
                    cursor.execute(
                        "INSERT INTO stats_event (account_id, campaign_id, delivery_id, type, "
                        "occurred_at, machine, detail) "
                        "VALUES (%s, %s, %s, 'open', now(), false, '{}')",
                        [campaign.account_id, campaign.pk, min_id + (n * 7) % RECIPIENTS],
                    )
                    n += 1
                inserted[0] = n
        finally:
            other.close()

    thread = threading.Thread(target=writer)
    thread.start()
    runs, behind, held = [], [], 0
    started = time.perf_counter()
    try:
        for _ in range(10):
            time.sleep(1)
            run = rollup()
            runs.append(run.seconds)
            held += run.held_back
            if run.as_of:
                behind.append((timezone.now() - run.as_of).total_seconds())
    finally:
        stop.set()
        thread.join()
    elapsed = time.perf_counter() - started
    return sum(runs) / len(runs), max(behind), inserted[0] / elapsed, held


def _first_delivery(campaign_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(id) FROM campaigns_delivery WHERE campaign_id = %s", [campaign_id]
        )
        return cursor.fetchone()[0]


def run() -> list[Figure]:
    # A database of this benchmark's own, so it never meets another benchmark's.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = "bench_missive_report"
    with scratch_database():
        from stats.rollup import rollup
        from tests.factories import make_account, make_api_key, make_user

        owner = make_user("bench@example.com")
        account = make_account(owner, "Bench Inc")
        campaign = _make_campaign(owner, account)

        naive_seconds = min(_naive_aggregate(campaign.pk) for _ in range(3))
        first = rollup()
        print(
            f"   first roll-up: {first.events:,} events in {first.seconds:.1f} s "
            f"({first.events / first.seconds:,.0f} events/s)"
        )
        _new_opens(campaign, 10_000, 0)
        incremental = rollup()
        print(
            f"   roll-up of {incremental.events:,} new events: {incremental.seconds * 1000:.0f} ms"
        )
        idle = min(rollup().seconds for _ in range(5))

        client = Client()
        client.force_login(owner, backend="allauth.account.auth_backends.AuthenticationBackend")
        _key, secret = make_api_key(account)
        api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        url = f"/campaigns/{campaign.pk}/report/"
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        totals = response.context["report"].totals
        print(
            f"   report: {totals.recipients:,} recipients, {totals.delivered:,} delivered, "
            f"{totals.opens_unique:,} opened ({totals.opens:,} opens), "
            f"{totals.clicks_unique:,} clicked, {totals.bounced:,} bounced"
        )
        report_ms = timings_ms(lambda: client.get(url), REQUESTS)
        machines_ms = timings_ms(lambda: client.get(url, {"machines": "1"}), REQUESTS)
        api_ms = timings_ms(lambda: api.get(f"/api/v1/campaigns/{campaign.pk}/report/"), REQUESTS)
        csv_ms = timings_ms(lambda: client.get(f"/campaigns/{campaign.pk}/report.csv"), REQUESTS)
        health_ms = timings_ms(lambda: client.get("/healthz"), REQUESTS)

        run_seconds, behind, insert_rate, held = _steady_state(campaign)
        print(
            f"   steady state: one writer at {insert_rate:,.0f} inserts/s, runs every second: "
            f"{run_seconds * 1000:.0f} ms a run on average, {held} of 10 held back by a writer, "
            f"at most {behind:.2f} s behind just after a run"
        )
    return [
        Figure("report page p50", median(report_ms), "GET /healthz p50", median(health_ms), "ms"),
        Figure(
            "report page p99",
            percentile(report_ms, 99),
            "GET /healthz p99",
            percentile(health_ms, 99),
            "ms",
            "< 300 ms (aim < 100)",
        ),
        Figure(
            "report page, machines too, p99",
            percentile(machines_ms, 99),
            "GET /healthz p99",
            percentile(health_ms, 99),
            "ms",
            "< 300 ms",
        ),
        Figure(
            "report API p99",
            percentile(api_ms, 99),
            "GET /healthz p99",
            percentile(health_ms, 99),
            "ms",
            "< 300 ms",
        ),
        Figure(
            "report CSV p99",
            percentile(csv_ms, 99),
            "GET /healthz p99",
            percentile(health_ms, 99),
            "ms",
        ),
        Figure(
            f"first roll-up, {first.events / 1e6:.0f}M events",
            first.seconds,
            "one GROUP BY over them",
            naive_seconds,
            "s",
        ),
        Figure(
            "roll-up of 10,000 new events",
            incremental.seconds * 1000,
            "a run with none",
            idle * 1000,
            "ms",
            "well under the 10 s beat",
        ),
        Figure(
            "steady run, writer at work",
            run_seconds * 1000,
            "a run with none",
            idle * 1000,
            "ms",
        ),
    ]
