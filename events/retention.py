"""Retention of tracking events: whole monthly partitions are dropped once the newest
event they can hold is older than the retention (13 months by default), so the purge
takes the same time whatever the number of rows. Events that landed in the default
partition (outside any month's partition) are deleted by date."""

from __future__ import annotations

from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from psycopg import sql

from accounts.retention_policy import Policy
from contacts.models import Contact
from events import partitions


def cutoff(now: datetime) -> datetime:
    """Events that happened before this instant are due."""
    months = settings.MISSIVE_RETENTION["events_months"]
    index = now.year * 12 + now.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    day = min(now.day, 28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31)
    return now.replace(year=year, month=month, day=day)


def _due_partitions(now: datetime) -> list[date]:
    limit = cutoff(now).astimezone(UTC)
    return [
        month
        for month in partitions.existing_months()
        if datetime(*partitions._add_months(month, 1).timetuple()[:3], tzinfo=UTC) <= limit
    ]


def _count(table: str, where: sql.Composable | None = None, params: list | None = None) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    if where is not None:
        query = sql.SQL("{} WHERE {}").format(query, where)
    with connection.cursor() as cursor:
        cursor.execute(query, params or [])
        return cursor.fetchone()[0]


_OLD = sql.SQL("occurred_at < %s")


def due(now: datetime) -> int:
    limit = cutoff(now)
    return sum(_count(partitions.partition_name(m)) for m in _due_partitions(now)) + _count(
        f"{partitions.TABLE}_default", _OLD, [limit]
    )


@transaction.atomic
def purge(now: datetime) -> int:
    removed = due(now)
    months = _due_partitions(now)
    if months:
        partitions.drop_partitions_before(partitions._add_months(months[-1], 1))
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("DELETE FROM {} WHERE {}").format(
                sql.Identifier(f"{partitions.TABLE}_default"), _OLD
            ),
            [cutoff(now)],
        )
    return removed


# A contact's newest open and click (what segments read) are tracking data too: kept as
# long as the events they come from.


def _stale_stamps(now: datetime) -> QuerySet[Contact]:
    limit = cutoff(now)
    return Contact.objects.filter(Q(last_opened_at__lt=limit) | Q(last_clicked_at__lt=limit))


def stamps_due(now: datetime) -> int:
    return _stale_stamps(now).count()


def stamps_purge(now: datetime) -> int:
    limit = cutoff(now)
    opened = Contact.objects.filter(last_opened_at__lt=limit).update(last_opened_at=None)
    clicked = Contact.objects.filter(last_clicked_at__lt=limit).update(last_clicked_at=None)
    return opened + clicked


POLICIES = [
    Policy(
        name="events",
        description="Tracking events (opens, clicks, bounces…), kept 13 months by default, "
        "removed a whole month at a time.",
        due=due,
        purge=purge,
    ),
    Policy(
        name="engagement_stamps",
        description="Each contact's last open and last click, as long as the events they "
        "come from (13 months by default).",
        due=stamps_due,
        purge=stamps_purge,
    ),
]
