"""Purging 13-month-old events from a 10,000,000-row event table: the retention policy
(whole monthly partitions dropped) beside a plain DELETE of the same rows.

The events are spread evenly over the last 14 months, in their monthly partitions, by
set-based SQL. The DELETE runs first, inside a transaction that is rolled back, so the
policy then meets the same rows. ``BENCH_RETENTION_EVENTS`` scales the table.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from benchmarks.harness import Figure, scratch_database

EVENTS = int(os.environ.get("BENCH_RETENTION_EVENTS", "10000000"))
MONTHS = 14


def _fill(now: datetime) -> tuple[datetime, float]:
    from events import partitions

    start = (now - timedelta(days=MONTHS * 31)).replace(day=1, hour=0, minute=0, second=0)
    month = start.date()
    while month <= now.date():
        partitions.create_partition(month)
        month = partitions._add_months(month, 1)
    span = (now - start).total_seconds()
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO stats_event (account_id, campaign_id, delivery_id, type, occurred_at) "
            "SELECT 1, 1 + g %% 50, g, 'open', %s + make_interval(secs => g * %s) "
            "FROM generate_series(0, %s - 1) AS g",
            [start, span / EVENTS, EVENTS],
        )
        cursor.execute("ANALYZE stats_event")
    return start, time.perf_counter() - began


def run() -> list[Figure]:
    from events.retention import _due_partitions, due
    from privacy.runner import run_policies

    now = datetime.now(UTC)
    with scratch_database():
        _start, filled = _fill(now)
        months = _due_partitions(now)
        from events import partitions

        limit = datetime(*partitions._add_months(months[-1], 1).timetuple()[:3], tzinfo=UTC)
        rows = due(now)
        print(
            f"   {EVENTS:,} events over {MONTHS} months written in {filled:.1f} s; "
            f"{rows:,} are due (the {len(months)} month(s) before {limit:%Y-%m-%d})"
        )
        began = time.perf_counter()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM stats_event WHERE occurred_at < %s", [limit])
                deleted = cursor.rowcount
            transaction.set_rollback(True)
        delete_seconds = time.perf_counter() - began
        began = time.perf_counter()
        (outcome,) = run_policies(names=["events"], now=now)
        purge_seconds = time.perf_counter() - began
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM stats_event WHERE occurred_at < %s", [limit])
            left = cursor.fetchone()[0]
        print(
            f"   plain DELETE removed {deleted:,} rows (rolled back); the policy removed "
            f"{outcome.count:,}; {left:,} due rows left after it"
        )
    return [
        Figure(
            f"purge of 13-month-old events, {EVENTS:,} rows",
            purge_seconds * 1000,
            "plain DELETE of the same rows",
            delete_seconds * 1000,
            "ms",
            target="< 1,000 ms (aim: constant time)",
        )
    ]
