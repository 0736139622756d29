"""Provider webhook ingestion in events/s (SendGrid, batched), beside a bare INSERT.

Set up in the scratch database: a sent campaign of N deliveries (one contact each, known
``esp_message_id`` values). N SendGrid events (70 % delivered, 20 % opens, 10 % hard
bounces), each with its own ``sg_event_id`` and one delivery's message id, are posted to
Missive's tracking webhook through Django's test client (in process: the app, not HTTP),
``BENCH_WEBHOOK_BATCH`` events per request as SendGrid batches them. The baseline writes
the same N rows into ``stats_event``, one INSERT per event through a cursor in
autocommit: the cost of the storage alone.
``BENCH_WEBHOOK_EVENTS`` scales the run.
"""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime, timedelta

from django.db import connection

from benchmarks.harness import Figure, scratch_database

EVENTS = int(os.environ.get("BENCH_WEBHOOK_EVENTS", "20000"))
BATCH = int(os.environ.get("BENCH_WEBHOOK_BATCH", "100"))
SECRET = "missive:bench-webhook"  # noqa: S105 - the scratch run's own
REPLAYED = 3  # batches posted again afterwards: they must store nothing


def _execute(statement: str, params: list | dict | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def _count(where: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM stats_event WHERE {where}", params)  # noqa: S608
        return cursor.fetchone()[0]


def _make_campaign(sent_at: datetime) -> tuple[int, list[tuple[int, str, str]]]:
    """The account, its sent campaign and N deliveries; (delivery id, esp message id,
    contact email) of each."""
    from campaigns.models import Campaign
    from campaigns.states import State
    from events import partitions
    from tests.factories import make_account, make_user

    partitions.ensure_partitions()
    partitions.create_partition(sent_at.date())  # the first days of a month
    owner = make_user("bench-webhooks@example.com")
    account = make_account(owner, "Bench Webhooks")
    campaign = Campaign.objects.create(
        account=account,
        name="Bench webhooks",
        subject="Hello",
        from_email="news@bench.example",
        html="<p>Hi</p>",
        status=State.SENT,
        snapshot_at=sent_at,
        started_at=sent_at,
        finished_at=sent_at + timedelta(minutes=10),
        recipients_count=EVENTS,
        sent_count=EVENTS,
        created_by=owner,
        track_opens=False,  # so the provider's opens are kept
    )
    _execute(
        "INSERT INTO contacts_contact (account_id, email, first_name, last_name, attributes, "
        "created_at, updated_at) "
        "SELECT %s, 'person' || n || '@bench.example', '', '', '{}', now(), now() "
        "FROM generate_series(1, %s) AS n",
        [account.pk, EVENTS],
    )
    _execute(
        "INSERT INTO campaigns_delivery (campaign_id, contact_id, status, sent_at, "
        "esp_message_id) "
        "SELECT %s, id, 'sent', %s, 'bench-msg-' || id FROM contacts_contact "
        "WHERE account_id = %s ORDER BY id",
        [campaign.pk, sent_at, account.pk],
    )
    _execute("ANALYZE")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT d.id, d.esp_message_id, c.email FROM campaigns_delivery d "
            "JOIN contacts_contact c ON c.id = d.contact_id WHERE d.campaign_id = %s "
            "ORDER BY d.id",
            [campaign.pk],
        )
        deliveries = cursor.fetchall()
    assert len(deliveries) == EVENTS
    return campaign.pk, deliveries


def _events(deliveries: list[tuple[int, str, str]], at: int) -> list[dict]:
    """One SendGrid event per delivery: 7 delivered, 2 opens, 1 hard bounce in 10."""
    events = []
    for n, (_pk, message_id, email) in enumerate(deliveries):
        common = {
            "email": email,
            "timestamp": at + n % 600,
            "smtp-id": f"<{message_id}@ismtpd.sendgrid.net>",
            "sg_event_id": f"bench-event-{n}",
            "sg_message_id": f"{message_id}.filter0001.1.0",
            "anymail_id": message_id,
        }
        kind = n % 10
        if kind < 7:
            common.update(event="delivered", response="250 2.0.0 OK", tls=1)
        elif kind < 9:
            common.update(
                event="open",
                useragent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0",
                ip="203.0.113.7",
            )
        else:
            common.update(
                event="bounce",
                type="bounce",
                status="5.1.1",
                reason="550 5.1.1 The email account that you tried to reach does not exist.",
            )
        events.append(common)
    return events


def _post_all(bodies: list[str]) -> float:
    from django.test import Client
    from django.urls import reverse

    client = Client()
    url = reverse("anymail:sendgrid_tracking_webhook")
    auth = "Basic " + base64.b64encode(SECRET.encode()).decode()
    began = time.perf_counter()
    for body in bodies:
        response = client.post(
            url, data=body, content_type="application/json", HTTP_AUTHORIZATION=auth
        )
        assert response.status_code == 200, (response.status_code, response.content[:200])
    return time.perf_counter() - began


# The storage alone: the row as events.services writes it, with none of the rules.
_INSERT_SQL = """
INSERT INTO stats_event
    (account_id, campaign_id, delivery_id, link_id, type, occurred_at, machine, detail,
     dedup_key)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)
ON CONFLICT DO NOTHING
RETURNING id
"""


def _bare_insert(campaign_id: int, account_id: int, rows: list[tuple]) -> float:
    """The same events, one INSERT each (autocommit, as each webhook event commits)."""
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for delivery_id, type_, at, detail, key in rows:
            cursor.execute(
                _INSERT_SQL,
                [account_id, campaign_id, delivery_id, None, type_, at, False, detail, key],
            )
            cursor.fetchone()
    return time.perf_counter() - began


def run() -> list[Figure]:
    from django.test import override_settings

    from campaigns.models import Campaign

    now = datetime.now(UTC).replace(microsecond=0)
    with scratch_database():
        started = time.perf_counter()
        campaign_id, deliveries = _make_campaign(now - timedelta(hours=2))
        account_id = Campaign.objects.get(pk=campaign_id).account_id
        events = _events(deliveries, int((now - timedelta(hours=1)).timestamp()))
        bodies = [json.dumps(events[i : i + BATCH]) for i in range(0, len(events), BATCH)]
        print(
            f"   {EVENTS:,} deliveries set up in {time.perf_counter() - started:.1f} s; "
            f"{len(bodies):,} requests of {BATCH} events"
        )

        with override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET}):
            webhook_seconds = _post_all(bodies)
            stored = _count("dedup_key LIKE %s", ["SendGrid:bench-event-%"])
            _post_all(bodies[:REPLAYED])
            replayed = _count("dedup_key LIKE %s", ["SendGrid:bench-event-%"]) - stored
        assert stored == EVENTS, f"{stored:,} events stored, {EVENTS:,} posted"
        assert replayed == 0, f"a replay stored {replayed} more"
        bounced = _count("type = 'bounce' AND dedup_key LIKE %s", ["SendGrid:%"])
        print(
            f"   webhooks: {stored:,} events stored ({bounced:,} bounces); "
            f"{REPLAYED} batches replayed stored {replayed}"
        )

        types = {"delivered": "delivered", "open": "open", "bounce": "bounce"}
        rows = [
            (
                delivery_id,
                types[event["event"]],
                datetime.fromtimestamp(event["timestamp"], UTC),
                json.dumps({"kind": event["event"], "source": "SendGrid"}),
                f"bare:{event['sg_event_id']}",
            )
            for (delivery_id, _id, _email), event in zip(deliveries, events, strict=True)
        ]
        bare_seconds = _bare_insert(campaign_id, account_id, rows)
        assert _count("dedup_key LIKE %s", ["bare:%"]) == EVENTS

    webhook_rate = EVENTS / webhook_seconds
    bare_rate = EVENTS / bare_seconds
    print(
        f"   webhooks {webhook_seconds:.1f} s ({webhook_rate:,.0f} events/s, "
        f"{webhook_rate / BATCH:,.1f} requests/s); bare INSERTs {bare_seconds:.1f} s "
        f"({bare_rate:,.0f} events/s); the webhook runs at {webhook_rate / bare_rate:.2f} "
        "of the storage's rate"
    )
    return [
        Figure(
            f"SendGrid webhook ingestion, {EVENTS:,} events, {BATCH} per request",
            webhook_rate,
            "bare INSERT per event",
            bare_rate,
            "events/s",
        )
    ]
