"""Monthly partitions of the event table: created ahead of time by a beat task, dropped
whole by retention (a constant-time purge, whatever the number of rows).

Partitions are named ``stats_event_yYYYYmMM`` and cover one calendar month in UTC. A
default partition catches any event outside them, so none is ever refused; when a month's
partition is created later, the rows of that month are moved out of the default one.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

TABLE = "stats_event"
_NAME = re.compile(rf"^{TABLE}_y(\d{{4}})m(\d{{2}})$")


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def existing_months() -> list[date]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = %s",
            [TABLE],
        )
        names = [row[0] for row in cursor.fetchall()]
    months = []
    for name in names:
        match = _NAME.match(name)
        if match:
            months.append(date(int(match.group(1)), int(match.group(2)), 1))
    return sorted(months)


def _bounds(month: date) -> tuple[str, str]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end_month = _add_months(month, 1)
    end = datetime(end_month.year, end_month.month, 1, tzinfo=UTC)
    return start.isoformat(), end.isoformat()


@transaction.atomic
def create_partition(month: date) -> bool:
    """Create the partition of ``month`` if missing (moving its rows out of the default
    partition). True when it was created."""
    month = _month_start(month)
    if month in existing_months():
        return False
    name = sql.Identifier(partition_name(month))
    start, end = (sql.Literal(bound) for bound in _bounds(month))
    default = sql.Identifier(f"{TABLE}_default")
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "CREATE TEMP TABLE missive_moved_events AS "
                "WITH gone AS (DELETE FROM {default} WHERE occurred_at >= {start} "
                "AND occurred_at < {end} RETURNING *) SELECT * FROM gone"
            ).format(default=default, start=start, end=end)
        )
        cursor.execute(
            sql.SQL(
                "CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ({start}) TO ({end})"
            ).format(name=name, table=sql.Identifier(TABLE), start=start, end=end)
        )
        cursor.execute(
            sql.SQL("INSERT INTO {table} SELECT * FROM missive_moved_events").format(
                table=sql.Identifier(TABLE)
            )
        )
        cursor.execute("DROP TABLE missive_moved_events")
    return True


def ensure_partitions(*, months_ahead: int = 3, today: date | None = None) -> list[str]:
    """Partitions for this month and the next ``months_ahead``; the names created."""
    this_month = _month_start(today or timezone.now().date())
    created = []
    for offset in range(months_ahead + 1):
        month = _add_months(this_month, offset)
        if create_partition(month):
            created.append(partition_name(month))
    return created


def drop_partitions_before(month: date) -> list[str]:
    """Drop every monthly partition that ends before ``month`` begins; the names dropped."""
    month = _month_start(month)
    dropped = []
    for old in existing_months():
        if old < month:
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(partition_name(old))))
            dropped.append(partition_name(old))
    return dropped
