"""A birthday journey in an account's own time zone, across the night the clocks go back
(Paris, New York and Sydney, 2026): each contact gets one greeting, at 09:00 local on
their birthday, 29 February's on the 28th in a year without it.

Time moves hour by hour through two stretches of 2026 (every quarter of an hour in the
two days around the change), and at each step the test does what ``journeys.tick`` and
the campaign workers do: read the trigger, move the due enrollments, send what they
queued (here, in this process, to a transport that keeps what it is handed).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator

import pytest
import time_machine

from campaigns import sending
from campaigns.models import Delivery
from contacts import services as contact_services
from journeys import engine, services, triggers
from journeys.models import Enrollment, Journey
from tests.journeys.test_scale import Handed, KeepingTransport, make_sender

HOUR = dt.timedelta(hours=1)
QUARTER = dt.timedelta(minutes=15)
E = Enrollment.Status


def local_midnight(day: dt.date, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(dt.UTC)


def moments(
    first: dt.date, last: dt.datetime, zone: zoneinfo.ZoneInfo, change: dt.date | None
) -> Iterator[dt.datetime]:
    """From the local midnight that opens ``first`` up to ``last``: every hour, and every
    quarter of an hour from noon before the day of ``change`` to noon after it."""
    now = local_midnight(first, zone)
    busy_from = busy_to = None
    if change is not None:
        busy_from = local_midnight(change, zone) - 12 * HOUR
        busy_to = local_midnight(change + dt.timedelta(days=1), zone) + 12 * HOUR
    while now <= last:
        yield now
        busy = busy_from is not None and busy_from <= now < busy_to
        now += QUARTER if busy else HOUR


def tick(journey: Journey, campaign_id: int, transport: KeepingTransport) -> None:
    """What a minute of beat and workers does for the journey, here: read the trigger,
    move the due enrollments, send what they queued."""
    triggers.scan(journey.pk)
    queued, more = 0, True
    while more:
        report = engine.advance(journey.pk)
        queued, more = queued + report.queued, report.more
    more = True
    while more:
        more = queued and sending.send_batch(campaign_id, transport=transport).more


# The two stretches: the last days of February, and the week around the change.
FEBRUARY = (dt.date(2026, 2, 26), dt.date(2026, 3, 2))
BIRTHDAYS = {
    # name: (birthday, the local day it is celebrated in 2026; None: not in these days)
    "feb27": ("1990-02-27", dt.date(2026, 2, 27)),
    "feb28": ("1992-02-28", dt.date(2026, 2, 28)),
    "leapling": ("2000-02-29", dt.date(2026, 2, 28)),
    "mar01": ("1988-03-01", dt.date(2026, 3, 1)),
}


@pytest.mark.parametrize(
    ("zone_name", "change"),
    [
        pytest.param("Europe/Paris", dt.date(2026, 10, 25), id="paris"),
        pytest.param("America/New_York", dt.date(2026, 11, 1), id="new-york"),
        # Ahead of UTC by more than nine hours: the UTC day begins after 09:00 local, so
        # a trigger that read the UTC day would greet a day late.
        pytest.param("Australia/Sydney", dt.date(2026, 4, 5), id="sydney"),
    ],
)
def test_each_contact_is_greeted_once_at_nine_local_on_their_birthday(
    db, enqueued, zone_name: str, change: dt.date
):
    zone = zoneinfo.ZoneInfo(zone_name)
    # the clocks go back that night: an hour more of offset before than after
    before, after = (
        dt.datetime.combine(change + dt.timedelta(days=d), dt.time(12), tzinfo=zone).utcoffset()
        for d in (-1, 1)
    )
    assert before == after + HOUR

    autumn = (change - dt.timedelta(days=3), change + dt.timedelta(days=3))
    birthdays = dict(BIRTHDAYS)
    for offset in (-3, -1, 0, 1, 3):
        day = change + dt.timedelta(days=offset)
        birthdays[f"autumn{offset:+d}"] = (day.replace(year=1979).isoformat(), day)
    birthdays["change day, twin"] = (change.replace(year=2001).isoformat(), change)
    # the day after: read at its midnight, still waiting for 09:00 when time stops
    after_autumn = autumn[1] + dt.timedelta(days=1)
    waiting = {"day after": (after_autumn.replace(year=1999).isoformat(), after_autumn)}
    never = {"in june": "1985-06-15", "no birthday": ""}

    # given a birthday journey of an account in that zone, live from the first midnight
    with time_machine.travel(local_midnight(FEBRUARY[0], zone) - dt.timedelta(hours=2)):
        owner, account, contact_list = make_sender(
            "Dates Ltd", "dates.example", time_zone=zone_name
        )
        contact_services.attribute_define(
            account=account, actor=owner, name="birthday", type="date"
        )
        people = {}
        for n, (name, birthday) in enumerate(
            [(k, v[0]) for k, v in {**birthdays, **waiting}.items()] + list(never.items())
        ):
            people[name] = contact_services.contact_create(
                account=account,
                actor=None,
                email=f"p{n}@example.net",
                first_name=name,
                attributes={"birthday": birthday} if birthday else {},
                lists=[contact_list],
            )
        # and someone whose birthday falls on the day of the change, but who left
        gone = contact_services.contact_create(
            account=account,
            actor=None,
            email="gone@example.net",
            attributes={"birthday": change.replace(year=1995).isoformat()},
            lists=[contact_list],
        )
        contact_services.unsubscribe(account=account, actor=None, contact_ids=[gone.pk], how="test")
        journey = services.journey_create(
            account=account, actor=owner, name="Birthday", starter="birthday"
        )
        [wait, email] = journey.draft
        assert (wait["type"], wait["until"]["time"], email["type"]) == ("wait", "09:00", "email")
        journey = services.journey_start(journey=journey, actor=owner)

    # when time goes by, through the end of February and the week of the change
    handed = Handed()
    transport = KeepingTransport(handed)
    for first, last in (FEBRUARY, autumn):
        stop = local_midnight(last + dt.timedelta(days=1), zone) + 8 * HOUR
        for now in moments(first, stop, zone, change if first == autumn[0] else None):
            with time_machine.travel(now, tick=False):
                tick(journey, email["campaign"], transport)

    # then each was handed one greeting, at 09:00 on their day, whatever the offset
    greeted = {name: contact for name, contact in people.items() if name in birthdays}
    assert dict(handed.messages) == {(email["campaign"], c.email): 1 for c in greeted.values()}
    rows = Delivery.objects.filter(campaign_id=email["campaign"])
    assert rows.count() == len(greeted)
    sent = {}
    for name, contact in greeted.items():
        [row] = rows.filter(contact=contact)
        assert row.status == Delivery.Status.SENT
        local = row.sent_at.astimezone(zone)
        sent[name] = row.sent_at
        expected = birthdays[name][1]
        assert (local.date(), local.time()) == (expected, dt.time(9)), (name, local)
    # (the same 09:00, an hour apart in UTC on either side of the change)
    assert sent["autumn-1"] + dt.timedelta(days=1) + HOUR == sent["autumn+0"]
    assert sent["autumn+0"] + dt.timedelta(days=1) == sent["autumn+1"]
    assert sent["autumn+0"] == sent["change day, twin"]

    # each entered once, on their day; the next day's waits for its 09:00
    entries = {
        contact.first_name: key
        for contact, key in (
            (e.contact, e.entry_key)
            for e in Enrollment.objects.filter(journey=journey).select_related("contact")
        )
    }
    assert entries == {
        **{name: f"date:{day.isoformat()}" for name, (_, day) in birthdays.items()},
        **{name: f"date:{day.isoformat()}" for name, (_, day) in waiting.items()},
    }
    for name, (_, day) in waiting.items():
        enrollment = Enrollment.objects.get(journey=journey, contact=people[name])
        assert (enrollment.status, enrollment.step) == (E.ACTIVE, wait["id"])
        assert enrollment.due_at == dt.datetime.combine(day, dt.time(9), tzinfo=zone)
    assert not Enrollment.objects.filter(contact=gone).exists()
    assert not Enrollment.objects.filter(contact__in=[people[n] for n in never]).exists()
