"""What makes a contact enter a journey, read from what the lower apps already store.

Each live journey reads its trigger every minute (``journeys.tick``), and at once when the
contacts app says a subscription or a tag changed (``contacts.signals``): the rows are the
truth, the signal only a nudge, so a nudge lost with a worker costs a minute, never an
entry. Each read goes back ``OVERLAP`` before the last one, for transactions that
committed late; reading a trigger twice enrolls once (``engine.enroll``'s unique keys).

- subscribed: confirmed subscriptions to the list (double opt-in: once confirmed); an
  import does not start a journey;
- tag added: the tag put on a contact;
- segment: whoever is in the segment now and was not at the last reading, every five
  minutes (those in it when the journey started do not enter);
- date: the day of a date attribute, or ``days`` after it (before, negative), every year
  or once, in the account's time zone; read once a day, as the account's day begins;
- event: ``POST /api/v1/events`` enrolls at once (journeys.services.event_record);
- clicked: a person's click (a machine's never counts) on a campaign's link, or any link.
"""

# ruff: noqa: S608 - SQL text is made from this module's constants; values are parameters
from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable, Iterator

from django.db import connection, transaction
from django.utils import timezone

from audiences import selectors as audiences
from audiences.conditions import Invalid, anniversary_days, matching_sql
from audiences.models import Segment
from contacts.models import ContactTag, Subscription
from events.models import Event
from journeys.engine import Entrant, enroll
from journeys.models import Journey

OVERLAP = dt.timedelta(minutes=10)
# A segment is compiled and read whole: every five minutes, not at each tick.
SEGMENT_EVERY = dt.timedelta(minutes=5)
T = Journey.Trigger
DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _since(journey: Journey, now: dt.datetime) -> dt.datetime:
    """Back ``OVERLAP`` from the last reading, never before the journey started: what
    happened before does not start it."""
    started = journey.started_at or now
    return max((journey.scanned_at or started) - OVERLAP, started)


def zone_of(journey: Journey) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(journey.account.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _subscribed(journey: Journey, now: dt.datetime) -> Iterator[Entrant]:
    found = (
        Subscription.objects.filter(
            contact_list_id=journey.trigger_config.get("list"),
            contact_list__account=journey.account,
            status=Subscription.Status.SUBSCRIBED,
            confirmed_at__gte=_since(journey, now),
            confirmed_at__lte=now,
        )
        .exclude(source=Subscription.Source.IMPORT)
        .values_list("contact_id", "pk", "confirmed_at")
    )
    for contact_id, pk, when in found.iterator():
        yield Entrant(contact_id, f"subscribed:{pk}:{when.timestamp() if when else 0:.0f}")


def _tagged(journey: Journey, now: dt.datetime) -> Iterator[Entrant]:
    found = ContactTag.objects.filter(
        tag_id=journey.trigger_config.get("tag"),
        tag__account=journey.account,
        created_at__gte=_since(journey, now),
        created_at__lte=now,
    ).values_list("contact_id", "tag_id", "created_at")
    for contact_id, tag_id, when in found.iterator():
        yield Entrant(contact_id, f"tag:{tag_id}:{when.timestamp():.0f}")


_SEGMENT_SQL = """
WITH now_in AS MATERIALIZED ({matching}),
gone AS (
    DELETE FROM journeys_segmentmember AS m
    WHERE m.journey_id = %s AND NOT EXISTS (SELECT 1 FROM now_in WHERE now_in.id = m.contact_id)
),
came AS (
    INSERT INTO journeys_segmentmember (journey_id, contact_id)
    SELECT %s, now_in.id FROM now_in
    ON CONFLICT (journey_id, contact_id) DO NOTHING
    RETURNING contact_id
)
SELECT contact_id FROM came
"""


def segment_arrivals(journey: Journey, now: dt.datetime) -> list[int]:
    """Who is in the journey's segment now and was not at the last reading; the reading
    is kept for the next one. Empty when the segment is gone or cannot be read."""
    segment = (
        Segment.objects.for_account(journey.account)
        .filter(pk=journey.trigger_config.get("segment"))
        .first()
    )
    if segment is None:
        return []
    try:
        clean, ctx = audiences.checked(journey.account, segment.definition, now=now)
    except Invalid:
        return []
    q = matching_sql(clean, ctx)
    with connection.cursor() as cursor:
        cursor.execute(
            _SEGMENT_SQL.replace("{matching}", q.sql), [*q.params, journey.pk, journey.pk]
        )
        return [row[0] for row in cursor.fetchall()]


def _segment(journey: Journey, now: dt.datetime) -> Iterator[Entrant] | None:
    if journey.scanned_at is not None and now - journey.scanned_at < SEGMENT_EVERY:
        return None
    key = f"segment:{now.timestamp():.0f}"
    return (Entrant(contact_id, key) for contact_id in segment_arrivals(journey, now))


def _date(journey: Journey, now: dt.datetime) -> Iterator[Entrant] | None:
    zone = zone_of(journey)
    today = now.astimezone(zone).date()
    if journey.scanned_at is not None and journey.scanned_at.astimezone(zone).date() >= today:
        return None  # today's were read at the day's start
    return _birthdays(journey, zone, today)


def _birthdays(journey: Journey, zone: dt.tzinfo, today: dt.date) -> Iterator[Entrant]:
    config = journey.trigger_config
    name = str(config.get("attribute") or "")
    target = today - dt.timedelta(days=int(config.get("days") or 0))
    day = "CASE WHEN (c.attributes ->> %s) ~ %s THEN c.attributes ->> %s END"
    value: list[str] | str
    if config.get("yearly", True):
        test = f"substr({day}, 6, 5) = ANY(%s)"
        value = anniversary_days(target, 0)
    else:
        test = f"{day} = %s"
        value = target.isoformat()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id FROM contacts_contact AS c WHERE c.account_id = %s AND {test}",
            [journey.account_id, name, DATE_PATTERN, name, value],
        )
        ids = [row[0] for row in cursor.fetchall()]
    key = f"date:{today.isoformat()}"
    for contact_id in ids:
        yield Entrant(contact_id, key)


_CLICKS_SQL = """
SELECT DISTINCT ON (d.contact_id) d.contact_id, e.id
FROM stats_event AS e JOIN campaigns_delivery AS d ON d.id = e.delivery_id
WHERE e.account_id = %(account)s AND e.type = %(click)s AND NOT e.machine
  AND e.occurred_at >= %(since)s AND e.occurred_at <= %(now)s
  AND e.campaign_id = %(campaign)s
  AND (%(link)s::bigint IS NULL OR e.link_id = %(link)s::bigint)
  AND d.contact_id IS NOT NULL
ORDER BY d.contact_id, e.id
"""


def _clicked(journey: Journey, now: dt.datetime) -> Iterator[Entrant]:
    config = journey.trigger_config
    with connection.cursor() as cursor:
        cursor.execute(
            _CLICKS_SQL,
            {
                "account": journey.account_id,
                "click": Event.Type.CLICK.value,
                "since": _since(journey, now),
                "now": now,
                "campaign": config.get("campaign"),
                "link": config.get("link") or None,
            },
        )
        rows = cursor.fetchall()
    for contact_id, event_id in rows:
        yield Entrant(contact_id, f"click:{event_id}")


_READERS: dict[str, Callable[[Journey, dt.datetime], Iterable[Entrant] | None]] = {
    T.SUBSCRIBED: _subscribed,
    T.TAG_ADDED: _tagged,
    T.SEGMENT: _segment,
    T.DATE: _date,
    T.CLICKED: _clicked,
}


def scan(journey_id: int, *, now: dt.datetime | None = None) -> int:
    """Read the live journey's trigger since its last reading and enroll whoever it
    names. Returns how many entered."""
    now = now or timezone.now()
    with transaction.atomic():
        journey = (
            Journey.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("account")
            .filter(pk=journey_id, status=Journey.Status.LIVE)
            .first()
        )
        if journey is None:  # not live, or being read by another worker now
            return 0
        reader = _READERS.get(T(journey.trigger))
        entrants = reader(journey, now) if reader else None
        if entrants is None:
            return 0  # not due yet (a segment read minutes ago, today's dates)
        made = enroll(journey, entrants, now=now)
        journey.scanned_at = now
        journey.save(update_fields=["scanned_at"])
    return len(made)


def begin(journey: Journey, now: dt.datetime) -> None:
    """What a trigger reads from when its journey goes live: a segment's members as they
    are (they do not enter); a date trigger reads today's at its first tick."""
    if journey.trigger == T.SEGMENT:
        segment_arrivals(journey, now)
    journey.scanned_at = None if journey.trigger == T.DATE else now
