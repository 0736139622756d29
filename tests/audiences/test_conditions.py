"""Segment conditions: the SQL they compile to picks exactly the contacts a plain reading
of them picks (tests/audiences/evaluator.py), over random people, subscriptions, tags,
attributes, deliveries, opens, clicks and bounces; a definition that cannot be read is
refused naming the part at fault, and never reads another account's data; opens and
clicks count only when a person made them."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import Account, normalize_email
from audiences import selectors
from audiences.conditions import (
    MAX_CONDITIONS,
    MAX_DAYS,
    Invalid,
    Sql,
    anniversary_days,
    clean_definition,
    compile_sql,
    context_for,
    fields_for,
)
from audiences.models import Segment
from campaigns.engagement import record_engagement
from campaigns.models import Campaign, Delivery, Link
from contacts import services as contact_services
from contacts.models import (
    AttributeDefinition,
    Contact,
    ContactList,
    ContactTag,
    Subscription,
    Tag,
)
from domains.models import MailboxDomain
from events.services import NewEvent, record_events
from tests.audiences import evaluator
from tests.audiences.evaluator import Bounce, Engagement, OnList, Person, Sent, Setting
from tests.factories import World, make_account

# The instants the property is read at: just before a 29 February that is not there,
# a new year (already come east of Greenwich), a leap day tomorrow, a change to summer
# time in Paris.
NOWS = (
    dt.datetime(2026, 2, 27, 13, 30, tzinfo=dt.UTC),
    dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC),
    dt.datetime(2024, 2, 28, 6, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC),
)
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Pacific/Auckland")
# Letters whose lower case PostgreSQL's lower() and Python's str.lower() agree on.
LETTERS = "abeoABEOéÉöÖ"
DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "hotmail.fr",
    "hotmail.com",
    "outlook.com",
    "live.co.uk",
    "msn.com",
    "yahoo.co.uk",
    "yahoo.com",
    "aol.com",
    "ymail.com",
    "icloud.com",
    "me.com",
    "example.org",
    "gmail.example",
    "mygmail.com",
    "outlook",
)
# Company domains whose mail exchangers the beat found: a provider's, or nobody's.
HOSTED = {"example.org": "gmail", "gmail.example": "microsoft", "mygmail.com": "other"}
DELIVERY_STATUSES = tuple(Delivery.Status.values)
# When each campaign of a property went out, before now.
CAMPAIGN_AGES = (dt.timedelta(days=50), dt.timedelta(days=20), dt.timedelta(hours=30))
ATTRIBUTES = {
    "city": "text",
    "nickname": "text",
    "score": "number",
    "birthday": "date",
    "vip": "boolean",
}
NUMBERS = (-2, -0.5, 0, 1, 1.5, 2, 3, 10, 250)
MISSING = object()

PROPERTY = hypothesis_settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@contextmanager
def rolled_back() -> Iterator[None]:
    """What is written inside is gone after: one example never sees another's data."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@dataclass
class Book:
    """An account of one example, its lists, tags, campaigns and their links, and the
    strategies that draw its people (made once: making strategies is not free)."""

    account: Account
    setting: Setting
    lists: list[int]
    tags: list[int]
    campaigns: list[int]
    sent: dict[int, dt.datetime]  # when each campaign went out
    links: dict[int, list[int]]  # each campaign's links
    moments: st.SearchStrategy[dt.datetime] = field(default_factory=st.nothing)
    maybe_moments: st.SearchStrategy[dt.datetime | None] = field(default_factory=st.nothing)
    attribute_values: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict)
    # What the people have, for values that hit: texts, days (in the account's calendar)
    # and ages in whole days, by field.
    pools: dict[str, list[str]] = field(default_factory=dict)
    days: dict[str, list[dt.date]] = field(default_factory=dict)
    ages: dict[str, list[int]] = field(default_factory=dict)


def _book(world: World, now: dt.datetime, zone: str) -> Book:
    account = make_account(world.alice, "Segmented", time_zone=zone)
    for name, type in ATTRIBUTES.items():
        AttributeDefinition.objects.create(account=account, name=name, type=type)
    lists = [ContactList.objects.create(account=account, name=f"List {n}").pk for n in range(2)]
    tags = [Tag.objects.create(account=account, name=f"tag {n}").pk for n in range(3)]
    campaigns, sent, links = [], {}, {}
    for n, age in enumerate(CAMPAIGN_AGES):
        campaign = Campaign.objects.create(
            account=account, name=f"Campaign {n}", subject="Hi", html="<p>Hi</p>"
        )
        campaigns.append(campaign.pk)
        sent[campaign.pk] = now - age
        links[campaign.pk] = [
            Link.objects.create(campaign=campaign, position=p, url=f"https://x.example/{p}").pk
            for p in range(2)
        ]
    for name, provider in HOSTED.items():
        MailboxDomain.objects.create(name=name, provider=provider, checked_at=now)
    setting = Setting(
        now=now,
        zone=zoneinfo.ZoneInfo(zone),
        attribute_types=dict(ATTRIBUTES),
        link_campaigns={link: c for c, ids in links.items() for link in ids},
        hosted=dict(HOSTED),
    )
    book = Book(account, setting, lists, tags, campaigns, sent, links)
    book.moments = moments(setting)
    book.maybe_moments = st.none() | book.moments
    book.attribute_values = {
        name: _attribute_values(setting, type) for name, type in ATTRIBUTES.items()
    }
    return book


# -- people ------------------------------------------------------------------------------------


def moments(setting: Setting) -> st.SearchStrategy[dt.datetime]:
    """Instants around now: at the edges of the account's days, and whole days back from
    now to the second."""
    today = setting.today

    def local(days: int, second: int) -> dt.datetime:
        wall = dt.time(second // 3600, second // 60 % 60, second % 60)
        day = today + dt.timedelta(days=days)
        return dt.datetime.combine(day, wall, tzinfo=setting.zone).astimezone(dt.UTC)

    def back(days: int, seconds: int) -> dt.datetime:
        return setting.now - dt.timedelta(days=days) + dt.timedelta(seconds=seconds)

    return st.one_of(
        st.builds(
            local,
            st.integers(-45, 3) | st.integers(-400, 10),
            st.sampled_from([0, 1, 3599, 43200, 86399]) | st.integers(0, 86399),
        ),
        st.builds(back, st.integers(0, 45) | st.integers(0, 400), st.sampled_from([-1, 0, 1])),
    )


def _iso(day: dt.date) -> str:
    return day.isoformat()


def _birthday(today: dt.date, offset: int, year: int) -> str:
    then = today + dt.timedelta(days=offset)
    if (then.month, then.day) == (2, 29):
        return f"{year - year % 4:04d}-02-29"
    return f"{year:04d}-{then.month:02d}-{then.day:02d}"


def _attribute_values(setting: Setting, type: str) -> st.SearchStrategy[Any]:
    """Values of an attribute of ``type``: missing, null, of the type, or (as a value
    stored before the attribute was declared) not of it."""
    absent = st.sampled_from([MISSING, None])
    today = setting.today
    if type == "text":
        return absent | st.just("") | st.text(LETTERS, min_size=1, max_size=5)
    if type == "number":
        return absent | st.sampled_from(NUMBERS) | st.integers(-5, 5) | st.sampled_from(["3", "x"])
    if type == "date":
        return (
            absent
            | st.builds(lambda n: _iso(today + dt.timedelta(days=n)), st.integers(-400, 400))
            | st.builds(_birthday, st.just(today), st.integers(-3, 40), st.integers(1950, 2010))
            | st.sampled_from(["2000-02-29", "1999-02-28", "1990-03-01", "27/02/1990"])
        )
    return absent | st.booleans() | st.sampled_from(["yes", "true", "false", 1, 0])


NAMES = st.just("") | st.text(LETTERS, min_size=1, max_size=5)
LOCAL_PARTS = st.text("abeoz", min_size=1, max_size=4)
BOUNCE_KINDS = st.sampled_from(["soft", "soft", "hard", "policy", None])
BOUNCE_TYPES = st.sampled_from(["bounce", "bounce", "deferred"])
PERSONAL = st.sampled_from([True, True, True, False])


def _engagement(draw: st.DrawFn, book: Book, campaign: int, sent_at: dt.datetime) -> Engagement:
    type = draw(st.sampled_from(["open", "click"]))
    if draw(st.booleans()):  # some time after it was sent
        minutes = draw(st.integers(0, 60 * 24 * 60))
        at = min(sent_at + dt.timedelta(minutes=minutes), book.setting.now)
    else:
        at = draw(book.moments)
    return Engagement(
        type=type,
        at=at,
        machine=draw(st.booleans()),
        personal=draw(PERSONAL),
        link=draw(st.sampled_from([None, *book.links[campaign]])) if type == "click" else None,
    )


def _delivery(draw: st.DrawFn, book: Book, campaign: int) -> Sent:
    status = draw(st.sampled_from(DELIVERY_STATUSES))
    if status not in ("sent", "complained", "bounced"):
        return Sent(campaign=campaign, status=status, sent_at=None)
    sent_at = book.sent[campaign] + dt.timedelta(seconds=draw(st.integers(0, 6 * 3600)))
    engagements = [
        _engagement(draw, book, campaign, sent_at) for _ in range(draw(st.integers(0, 3)))
    ]
    bounces = [
        Bounce(at=draw(book.moments), kind=draw(BOUNCE_KINDS), type=draw(BOUNCE_TYPES))
        for _ in range(draw(st.integers(0, 2)))
    ]
    return Sent(campaign, status, sent_at, engagements, bounces)


def _subscription(draw: st.DrawFn, book: Book, list_id: int) -> OnList:
    return OnList(
        list=list_id,
        status=draw(st.sampled_from(Subscription.Status.values)),
        source=draw(st.sampled_from(Subscription.Source.values)),
        legal_basis=draw(st.sampled_from(Subscription.LegalBasis.values)),
        consent_at=draw(book.maybe_moments),
    )


@st.composite
def people(draw: st.DrawFn, book: Book) -> Person:
    attributes = {name: draw(values) for name, values in book.attribute_values.items()}
    return Person(
        email=f"{draw(LOCAL_PARTS)}@{draw(st.sampled_from(DOMAINS))}",
        first_name=draw(NAMES),
        last_name=draw(NAMES),
        created_at=draw(book.moments),
        updated_at=draw(book.moments),
        activity_at=draw(book.maybe_moments),
        attributes={k: v for k, v in attributes.items() if v is not MISSING},
        tags={tag for tag in book.tags if draw(st.booleans())},
        subscriptions=[
            _subscription(draw, book, list_id) for list_id in book.lists if draw(st.booleans())
        ],
        deliveries=[
            _delivery(draw, book, campaign) for campaign in book.campaigns if draw(st.booleans())
        ],
    )


def _write(book: Book, everyone: list[Person]) -> None:
    """The people as contacts of the book's account; opens and clicks through the one door
    that records them (which stamps the deliveries and contacts), bounces as events."""
    account = book.account
    for number, person in enumerate(everyone):
        local, _, domain = person.email.partition("@")
        person.email = normalize_email(f"{local}{number}@{domain}")
    contacts = Contact.objects.bulk_create(
        Contact(
            account=account,
            email=p.email,
            first_name=p.first_name,
            last_name=p.last_name,
            attributes=p.attributes,
            created_at=p.created_at,
            updated_at=p.updated_at,
            last_activity_at=p.activity_at,
        )
        for p in everyone
    )
    for person, contact in zip(everyone, contacts, strict=True):
        person.id = contact.pk
    ContactTag.objects.bulk_create(
        ContactTag(tag_id=tag, contact_id=p.id) for p in everyone for tag in p.tags
    )
    Subscription.objects.bulk_create(
        Subscription(
            contact_id=p.id,
            contact_list_id=s.list,
            status=s.status,
            source=s.source,
            legal_basis=s.legal_basis,
            consent_at=s.consent_at,
        )
        for p in everyone
        for s in p.subscriptions
    )
    sent = [(d, p) for p in everyone for d in p.deliveries]
    rows = Delivery.objects.bulk_create(
        Delivery(campaign_id=d.campaign, contact_id=p.id, status=d.status, sent_at=d.sent_at)
        for d, p in sent
    )
    bounces = []
    for (delivery, _), row in zip(sent, rows, strict=True):
        for e in delivery.engagements:
            record_engagement(
                e.type,
                account_id=account.pk,
                campaign_id=delivery.campaign,
                delivery_id=row.pk,
                personal=e.personal,
                machine=e.machine,
                at=e.at,
                link_id=e.link,
            )
        bounces += [
            NewEvent(
                type=b.type,
                account_id=account.pk,
                campaign_id=delivery.campaign,
                delivery_id=row.pk,
                occurred_at=b.at,
                detail={"kind": b.kind, "source": "test"} if b.kind else {"source": "test"},
            )
            for b in delivery.bounces
        ]
    record_events(bounces)


# -- definitions --------------------------------------------------------------------------------


@st.composite
def fragments(draw: st.DrawFn, pool: list[str]) -> str:
    """Text to look for: a piece of what people have, or a few letters; in any case,
    sometimes with spaces around (which do not count)."""
    whole = [text for text in pool if text.strip()]
    if whole and draw(st.integers(0, 3)) > 0:  # mostly
        text = draw(st.sampled_from(whole))
        if draw(st.booleans()):
            start = draw(st.integers(0, len(text) - 1))
            text = text[start : draw(st.integers(start + 1, len(text)))]
    else:
        text = draw(st.text(LETTERS, min_size=1, max_size=3))
    if not text.strip():
        text = "a"
    change = draw(st.sampled_from(["same", "same", "upper", "swap", "spaced"]))
    return {
        "same": text,
        "upper": text.upper(),
        "swap": text.swapcase(),
        "spaced": f" {text} ",
    }[change]


def _landmarks(book: Book, everyone: list[Person]) -> None:
    """Note what the people have, so that conditions are drawn near it: a condition that
    matches nobody or everyone tells little."""
    setting = book.setting
    book.pools = {
        "email": [p.email for p in everyone],
        "email_domain": [p.email.rpartition("@")[2] for p in everyone],
        "first_name": [p.first_name for p in everyone],
        "last_name": [p.last_name for p in everyone],
    }
    book.pools["attributes.city"] = book.pools["attributes.nickname"] = [
        v for p in everyone for v in p.attributes.values() if isinstance(v, str)
    ]
    instants: dict[str, list[dt.datetime | None]] = {
        "created_at": [p.created_at for p in everyone],
        "updated_at": [p.updated_at for p in everyone],
        "last_activity": [p.last_activity for p in everyone],
        "consent_at": [s.consent_at for p in everyone for s in p.subscriptions],
        "opened": [e.at for p in everyone for d in p.deliveries for e in d.engagements],
        "soft_bounced": [b.at for p in everyone for d in p.deliveries for b in d.bounces],
    }
    instants["clicked"] = instants["opened"]
    day = dt.timedelta(days=1)
    for key, found in instants.items():
        moments = [t for t in found if t is not None]
        book.days[key] = [setting.local_day(t) for t in moments]
        book.ages[key] = [(setting.now - t) // day for t in moments]
    dates = [evaluator.attribute_day(p.attributes.get("birthday")) for p in everyone]
    book.days["date"] = [d for d in dates if d is not None]
    today = setting.today
    book.ages["date"] = [abs(today - d).days for d in book.days["date"]] + [
        (d.replace(year=today.year) - today).days % 365
        for d in book.days["date"]
        if (d.month, d.day) != (2, 29)
    ]


def _days(book: Book, kind: str) -> st.SearchStrategy[Any]:
    """A number of days: about as far back (or on) as something people have, or any."""
    near = sorted({max(0, age + k) for age in book.ages.get(kind, []) for k in (-1, 0, 1)})
    days = st.integers(0, 45) | st.sampled_from([0, 1, 7, 30, 90, 365, 366, 400, MAX_DAYS])
    if near:
        days = st.sampled_from(near) | days
    return days | days.map(str)


def _day_values(book: Book, kind: str) -> st.SearchStrategy[str]:
    """A day: on or next to one that people have, or any near today."""
    today = book.setting.today
    near = sorted({d + dt.timedelta(days=k) for d in book.days.get(kind, []) for k in (-1, 0, 1)})
    days = st.builds(lambda n: today + dt.timedelta(days=n), st.integers(-60, 5))
    if near:
        days = st.sampled_from(near) | days
    return days.map(_iso)


def _pair(values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(values, min_size=2, max_size=2).map(sorted)


def _numbers() -> st.SearchStrategy[Any]:
    numbers = st.sampled_from(NUMBERS) | st.integers(-5, 5)
    return numbers | numbers.map(str)


def _vocabulary() -> dict[str, tuple[str, ...]]:
    """Every field of the book's account, with its operators."""
    attributes = {
        f"attributes.{name}": evaluator.ATTRIBUTE_OPS[type] for name, type in ATTRIBUTES.items()
    }
    return {**evaluator.FIELDS, **attributes}


VOCABULARY = _vocabulary()


@st.composite
def conditions(
    draw: st.DrawFn, book: Book, name: str | None = None, op: str | None = None
) -> dict[str, Any]:
    """A condition (of the field ``name`` with the operator ``op``, when given)."""
    if name is None:
        name = draw(st.sampled_from(list(VOCABULARY)))
    if op is None:
        op = draw(st.sampled_from(VOCABULARY[name]))
    kind = ATTRIBUTES[name.partition(".")[2]] if name.startswith("attributes.") else name
    condition: dict[str, Any] = {"field": name, "op": op}

    def pool(*keys: str) -> list[str]:
        return [text for key in keys for text in book.pools.get(key, [])]

    value: Any = None
    if op in ("is_empty", "is_not_empty", "is_true", "is_false"):
        value = None  # these operators take no value
    elif kind in ("text", "email", "first_name", "last_name"):
        value = draw(fragments(pool(name)))
    elif kind == "email_domain":
        value = draw(fragments(pool(name)).filter(str.isascii) | st.sampled_from(DOMAINS))
    elif kind == "mailbox_provider":
        value = draw(st.sampled_from(["gmail", "microsoft", "yahoo", "apple", "other"]))
    elif kind == "tag":
        value = draw(st.sampled_from(book.tags))
    elif kind == "list":
        value = draw(st.sampled_from(book.lists))
    elif kind in ("source", "legal_basis"):
        choices = Subscription.Source if kind == "source" else Subscription.LegalBasis
        value = draw(st.sampled_from(choices.values))
    elif kind == "number":
        value = draw(_pair(st.sampled_from(NUMBERS)) if op == "between" else _numbers())
    elif kind == "received":
        value = draw(st.sampled_from(book.campaigns))
    elif kind == "unopened_streak":
        value = draw(st.integers(0, 4) | st.sampled_from([1.0, "2"]))
    elif op in ("on", "before", "after"):
        value = draw(_day_values(book, kind))
    elif op == "between":
        value = draw(_pair(_day_values(book, kind)))
    elif op in (
        "in_last_days",
        "not_in_last_days",
        "more_than_days_ago",
        "in_next_days",
        "anniversary_within_days",
    ):
        value = draw(_days(book, kind))
    if value is not None:
        condition["value"] = value
    if kind in ("source", "legal_basis", "consent_at") and draw(st.booleans()):
        condition["list"] = draw(st.sampled_from(book.lists))
    if kind in ("opened", "clicked"):
        campaign = draw(st.sampled_from([None, *book.campaigns]))
        if campaign is not None:
            condition["campaign"] = campaign
            if kind == "clicked" and draw(st.booleans()):
                condition["link"] = draw(st.sampled_from(book.links[campaign]))
                if draw(st.booleans()):
                    del condition["campaign"]  # the link says which campaign
    return condition


def groups(book: Book, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Groups two levels deep under the top one at most, within the limit of conditions."""
    one = conditions(book)
    items = one if depth == 2 else st.one_of(one, one, groups(book, depth + 1))
    return st.builds(
        lambda match, items: {"match": match, "conditions": items},
        st.sampled_from(["all", "any"]),
        st.lists(items, min_size=1, max_size=4) if depth == 0 else st.lists(items, max_size=3),
    )


def _each_alone(book: Book, alone: tuple[dict[str, Any], ...]) -> list[dict[int, Any]]:
    """What each condition, checked and compiled on its own, says of each contact of the
    book's account: one statement for them all (a query each would be slow)."""
    ctx = context_for(book.account, book.setting.now)
    q = Sql()
    tests = [
        compile_sql(clean_definition({"conditions": [condition]}, ctx), ctx, q)
        for condition in alone
    ]
    columns = ", ".join(f"({test})" for test in tests)
    account = q.p(book.account.pk)
    # The compiler's text; every value is a parameter.
    statement = f"SELECT c.id, {columns} FROM contacts_contact AS c "  # noqa: S608
    q.finish(f"{statement}WHERE c.account_id = {account}")
    with connection.cursor() as cursor:
        cursor.execute(q.sql, q.params)
        rows = cursor.fetchall()
    return [{row[0]: row[1 + n] for row in rows} for n in range(len(alone))]


def _explain(definition: dict[str, Any], everyone: list[Person], ids: set[int]) -> str:
    lines = [f"definition: {definition}"]
    for person in everyone:
        if person.id in ids:
            lines.append(f"  {person}")
    return "\n".join(lines)


@PROPERTY
@given(data=st.data())
def test_the_sql_picks_whom_the_conditions_describe(world, data):
    now = data.draw(st.sampled_from(NOWS), label="now")
    zone = data.draw(st.sampled_from(ZONES), label="zone")
    with rolled_back():
        # given an account's people, with what they did, as random as they come
        book = _book(world, now, zone)
        size = data.draw(st.integers(1, 25), label="how many")
        everyone = data.draw(st.lists(people(book), min_size=size, max_size=size))
        _write(book, everyone)
        _landmarks(book, everyone)

        # when a condition of each field with each of its operators is read by the
        # database, and random groups of random conditions too
        each = st.tuples(*(conditions(book, n, op) for n, ops in VOCABULARY.items() for op in ops))
        alone = data.draw(each, label="each field and operator")
        grouped = data.draw(st.lists(groups(book), min_size=1, max_size=4), label="groups")
        tested = _each_alone(book, alone)

        # then each is true (never NULL) exactly for whom its plain reading picks
        for condition, results in zip(alone, tested, strict=True):
            definition = {"match": "all", "conditions": [condition]}
            expected = evaluator.who(definition, everyone, book.setting)
            found = {person for person, passes in results.items() if passes}
            assert found == expected, _explain(definition, everyone, found ^ expected)
            assert set(results.values()) <= {True, False}, definition
        # and so are the groups, listed and counted
        for definition in grouped:
            expected = evaluator.who(definition, everyone, book.setting)
            found = set(
                selectors.matching(book.account, definition, now=now).values_list("pk", flat=True)
            )
            assert found == expected, _explain(definition, everyone, found ^ expected)
            assert selectors.count(book.account, definition, now=now) == len(expected)


# -- the vocabulary, and the helpers the evaluator borrows -------------------------------------


def test_the_evaluator_knows_the_whole_vocabulary(world):
    account = world.account_a
    for name, type in ATTRIBUTES.items():
        AttributeDefinition.objects.get_or_create(account=account, name=name, type=type)
    known = {name: set(ops) for name, ops in VOCABULARY.items()}

    vocabulary = {name: set(spec.ops) for name, spec in fields_for(context_for(account)).items()}

    assert vocabulary == known


def test_anniversary_days_are_the_month_days_to_come():
    assert anniversary_days(dt.date(2026, 5, 10), 0) == ["05-10"]
    assert anniversary_days(dt.date(2026, 12, 30), 3) == ["01-01", "01-02", "12-30", "12-31"]
    # 29 February counts on the 28th in a year without it, and on itself in one with it
    assert anniversary_days(dt.date(2026, 2, 27), 1) == ["02-27", "02-28", "02-29"]
    assert anniversary_days(dt.date(2028, 2, 28), 0) == ["02-28"]
    assert anniversary_days(dt.date(2028, 2, 28), 1) == ["02-28", "02-29"]
    assert len(anniversary_days(dt.date(2026, 1, 1), MAX_DAYS)) == 366


def test_the_evaluator_counts_birthdays_like_the_calendar():
    leap_day = dt.date(2000, 2, 29)
    assert evaluator.anniversary_within(leap_day, dt.date(2026, 2, 28), 0)
    assert not evaluator.anniversary_within(leap_day, dt.date(2028, 2, 28), 0)
    assert evaluator.anniversary_within(leap_day, dt.date(2028, 2, 28), 1)
    assert evaluator.anniversary_within(dt.date(1990, 1, 2), dt.date(2025, 12, 30), 3)
    assert not evaluator.anniversary_within(dt.date(1990, 1, 3), dt.date(2025, 12, 30), 3)


# -- definitions that cannot be read -------------------------------------------------------------


@pytest.fixture
def typed(world: World) -> World:
    """Account A with an attribute of each type (city, text, it has already)."""
    for name, type in (("score", "number"), ("birthday", "date"), ("vip", "boolean")):
        contact_services.attribute_define(
            account=world.account_a, actor=world.alice, name=name, type=type
        )
    return world


def _errors(world: World, *items: object) -> dict[str, str]:
    definition = {"match": "all", "conditions": list(items)}
    with pytest.raises(Invalid) as refused:
        selectors.count(world.account_a, definition)
    return refused.value.errors


def test_it_refuses_a_field_segments_do_not_know(world):
    errors = _errors(world, {"field": "shoe_size", "op": "is", "value": "42"})

    assert errors == {"conditions.0.field": "'shoe_size' is not a field segments know."}


def test_it_names_an_attribute_the_account_does_not_have(world):
    errors = _errors(
        world,
        {"field": "attributes.city", "op": "is", "value": "Lyon"},
        {"field": "attributes.shoe_size", "op": "eq", "value": 42},
    )

    assert list(errors) == ["conditions.1.field"]
    assert "no attribute 'shoe_size'" in errors["conditions.1.field"]
    assert "was it deleted?" in errors["conditions.1.field"]


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "attributes.city", "op": "gt", "value": 3},
        {"field": "attributes.score", "op": "contains", "value": "3"},
        {"field": "attributes.birthday", "op": "is_true"},
        {"field": "attributes.vip", "op": "on", "value": "2026-01-01"},
        {"field": "created_at", "op": "anniversary_within_days", "value": 3},
        {"field": "email", "op": "between", "value": ["a", "b"]},
        {"field": "opened", "op": "has"},
        {"field": "tag", "op": "is"},
        {"field": "list", "op": None},
    ],
)
def test_it_refuses_an_operator_the_field_does_not_have(typed, condition):
    errors = _errors(typed, condition)

    assert list(errors) == ["conditions.0.op"]
    assert "can use:" in errors["conditions.0.op"]


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "created_at", "op": "on", "value": "2026-02-30"},
        {"field": "created_at", "op": "before", "value": "yesterday"},
        {"field": "consent_at", "op": "after", "value": 20260101},
        {"field": "attributes.birthday", "op": "on", "value": "01/02/1990"},
        {"field": "attributes.birthday", "op": "between", "value": ["1990-01-01"]},
        {"field": "attributes.birthday", "op": "between", "value": ["1991-01-01", "1990-01-01"]},
        {"field": "updated_at", "op": "between", "value": ["2026-01-01", "2026-13-01"]},
    ],
)
def test_it_refuses_a_date_that_is_not_a_day(typed, condition):
    errors = _errors(typed, condition)

    assert list(errors) == ["conditions.0.value"]


@pytest.mark.parametrize(
    "value", ["many", "", "nan", "inf", "-Infinity", True, None, [1], {"n": 1}]
)
def test_it_refuses_a_number_that_is_not_one(typed, value):
    errors = _errors(typed, {"field": "attributes.score", "op": "gte", "value": value})

    assert list(errors) == ["conditions.0.value"]


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "attributes.score", "op": "between", "value": [5, 1]},
        {"field": "unopened_streak", "op": "at_least", "value": 1.5},
        {"field": "unopened_streak", "op": "at_least", "value": -1},
        {"field": "unopened_streak", "op": "less_than", "value": 10_001},
    ],
)
def test_it_refuses_numbers_out_of_place(typed, condition):
    errors = _errors(typed, condition)

    assert list(errors) == ["conditions.0.value"]


@pytest.mark.parametrize("days", [-1, MAX_DAYS + 1, "7.5", 7.5, True, None, "a week"])
@pytest.mark.parametrize(
    ("field", "op"),
    [
        ("opened", "in_last_days"),
        ("soft_bounced", "in_last_days"),
        ("created_at", "more_than_days_ago"),
        ("attributes.birthday", "anniversary_within_days"),
    ],
)
def test_it_refuses_days_out_of_range(typed, field, op, days):
    errors = _errors(typed, {"field": field, "op": op, "value": days})

    assert list(errors) == ["conditions.0.value"]


def test_it_takes_days_at_the_ends_of_the_range(typed):
    for days in (0, MAX_DAYS, str(MAX_DAYS)):
        definition = {"conditions": [{"field": "opened", "op": "in_last_days", "value": days}]}
        assert selectors.count(typed.account_a, definition) == 0


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"match": "all", "conditions": "everyone"}, "conditions"),
        ({"match": "all", "conditions": {"field": "email"}}, "conditions"),
        ({"match": "all"}, "conditions"),
        ([{"field": "email", "op": "is_empty"}], "definition"),
        ("everyone", "definition"),
        (
            {"match": "all", "conditions": [{"match": "any", "conditions": None}]},
            "conditions.0.conditions",
        ),
        ({"match": "all", "conditions": ["email is empty"]}, "conditions.0"),
        ({"match": "some", "conditions": []}, "match"),
        ({"match": "all", "conditions": [], "limit": 3}, "limit"),
    ],
)
def test_it_refuses_a_group_that_is_not_one(world, definition, path):
    with pytest.raises(Invalid) as refused:
        selectors.count(world.account_a, definition)

    assert list(refused.value.errors) == [path]


def test_it_refuses_groups_nested_past_the_limit(world):
    leaf = {"field": "email", "op": "is_not_empty"}

    def nested(levels: int) -> dict[str, Any]:
        group: dict[str, Any] = {"match": "any", "conditions": [leaf]}
        for _ in range(levels):
            group = {"match": "all", "conditions": [leaf, group]}
        return group

    # two levels of groups under the top one are read
    assert selectors.count(world.account_a, nested(2)) == 1
    # a third is not, and the error names it
    with pytest.raises(Invalid) as refused:
        selectors.count(world.account_a, nested(3))

    assert list(refused.value.errors) == ["conditions.1.conditions.1.conditions.1"]
    assert "2 levels deep at most" in refused.value.errors["conditions.1.conditions.1.conditions.1"]


def test_it_refuses_more_conditions_than_the_limit(world):
    leaf = {"field": "email", "op": "is_not_empty"}
    # the limit counts conditions inside groups too
    at_limit = {
        "match": "all",
        "conditions": [leaf] * (MAX_CONDITIONS - 10)
        + [{"match": "any", "conditions": [leaf] * 10}],
    }
    assert selectors.count(world.account_a, at_limit) == 1

    over = {
        "match": "all",
        "conditions": [{"match": "any", "conditions": [leaf] * 10}] + [leaf] * (MAX_CONDITIONS - 9),
    }
    with pytest.raises(Invalid) as refused:
        selectors.count(world.account_a, over)

    assert list(refused.value.errors) == [f"conditions.{MAX_CONDITIONS - 9}"]
    assert (
        f"{MAX_CONDITIONS} conditions at most"
        in refused.value.errors[f"conditions.{MAX_CONDITIONS - 9}"]
    )


def test_it_names_every_part_at_fault(typed):
    errors = _errors(
        typed,
        {"field": "email", "op": "contains", "value": "  "},
        {"field": "attributes.vip", "op": "is_true"},
        {"match": "any", "conditions": [{"field": "created_at", "op": "on", "value": "soon"}]},
    )

    assert set(errors) == {"conditions.0.value", "conditions.2.conditions.0.value"}


# -- tenancy: a condition never reads another account's data ------------------------------------


@dataclass
class Outsider:
    list: int
    tag: int
    campaign: int
    link: int


@pytest.fixture
def outsider(world: World) -> Outsider:
    """Charlie's list, tag, campaign and link, in account B."""
    account = world.account_b
    campaign = Campaign.objects.create(account=account, name="Bravo news", html="<p>Hi</p>")
    return Outsider(
        list=ContactList.objects.create(account=account, name="Bravo list").pk,
        tag=Tag.objects.create(account=account, name="bravo").pk,
        campaign=campaign.pk,
        link=Link.objects.create(campaign=campaign, position=0, url="https://b.example/").pk,
    )


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda o: {"field": "list", "op": "subscribed", "value": o.list}, "value"),
        (lambda o: {"field": "list", "op": "not_member", "value": str(o.list)}, "value"),
        (lambda o: {"field": "source", "op": "is", "value": "form", "list": o.list}, "list"),
        (
            lambda o: {"field": "legal_basis", "op": "is", "value": "consent", "list": o.list},
            "list",
        ),
        (
            lambda o: {"field": "consent_at", "op": "is_not_empty", "list": o.list},
            "list",
        ),
        (lambda o: {"field": "tag", "op": "has", "value": o.tag}, "value"),
        (lambda o: {"field": "tag", "op": "has_not", "value": o.tag}, "value"),
        (lambda o: {"field": "received", "op": "ever", "value": o.campaign}, "value"),
        (lambda o: {"field": "opened", "op": "ever", "campaign": o.campaign}, "campaign"),
        (
            lambda o: {"field": "clicked", "op": "never", "campaign": str(o.campaign)},
            "campaign",
        ),
        (lambda o: {"field": "clicked", "op": "ever", "link": o.link}, "link"),
    ],
)
def test_it_refuses_the_ids_of_another_account(world, outsider, make, key):
    condition = make(outsider)
    leaf = {"field": "email", "op": "is_not_empty"}

    # at the top, and deep in a group: the path names the part
    assert list(_errors(world, leaf, condition)) == [f"conditions.1.{key}"]
    nested = {"match": "any", "conditions": [leaf, {"match": "all", "conditions": [condition]}]}
    assert list(_errors(world, nested)) == [f"conditions.0.conditions.1.conditions.0.{key}"]


def test_it_refuses_a_link_of_another_campaign(world):
    campaign = world.extras["campaign"]
    other = Campaign.objects.create(account=world.account_a, name="Other", html="<p>Hi</p>")
    link = Link.objects.create(campaign=other, position=0, url="https://a.example/")

    errors = _errors(
        world, {"field": "clicked", "op": "ever", "campaign": campaign.pk, "link": link.pk}
    )

    assert errors == {"conditions.0.link": f"Link {link.pk} is not a link of that campaign."}


def test_charlie_cannot_count_account_a_by_its_ids(world):
    # given account A's list and campaign, with erin on the list
    newsletter = world.extras["list"]
    campaign = world.extras["campaign"]

    # when charlie's account names them
    with pytest.raises(Invalid) as refused:
        selectors.count(
            world.account_b,
            {
                "match": "any",
                "conditions": [
                    {"field": "list", "op": "member", "value": newsletter.pk},
                    {"field": "received", "op": "never", "value": campaign.pk},
                ],
            },
        )

    # then both are refused, and A's own count is untouched
    assert set(refused.value.errors) == {"conditions.0.value", "conditions.1.value"}
    member = {"conditions": [{"field": "list", "op": "member", "value": newsletter.pk}]}
    assert selectors.count(world.account_a, member) == 1
    assert list(selectors.matching(world.account_a, member)) == [world.extras["contact"]]


# -- saved segments whose parts were deleted ---------------------------------------------------


def test_problem_names_an_attribute_deleted_after_the_segment_was_saved(world):
    # given a segment on the city attribute, usable when saved
    segment = Segment.objects.create(
        account=world.account_a,
        name="Lyon",
        definition={
            "match": "all",
            "conditions": [
                {"field": "email", "op": "is_not_empty"},
                {"field": "attributes.city", "op": "is", "value": "Lyon"},
            ],
        },
    )
    assert selectors.problem(segment) == ""

    # when the attribute is deleted
    contact_services.attribute_delete(definition=world.extras["attribute"], actor=world.alice)

    # then the segment says it cannot be used, and where
    problem = selectors.problem(segment)
    assert problem.startswith("The segment “Lyon” cannot be used:")
    assert "no attribute 'city'" in problem
    assert "was it deleted?" in problem
    assert problem.endswith("(at conditions.1.field)")


def test_problem_names_a_list_deleted_after_the_segment_was_saved(world):
    newsletter = world.extras["list"]
    segment = Segment.objects.create(
        account=world.account_a,
        name="Readers",
        definition={"conditions": [{"field": "list", "op": "subscribed", "value": newsletter.pk}]},
    )
    assert selectors.problem(segment) == ""

    newsletter.delete()

    assert selectors.problem(segment).endswith("(at conditions.0.value)")


# -- days are the account's ----------------------------------------------------------------------


def _erin_count(world: World, now: dt.datetime, *conditions: dict[str, Any]) -> int:
    definition = {"match": "all", "conditions": list(conditions)}
    return selectors.count(world.account_a, definition, now=now)


@pytest.mark.parametrize(
    ("zone", "day", "before", "after"),
    [
        # 11:30 UTC on 1 March is half past midnight on 2 March in Auckland
        ("Pacific/Auckland", "2026-03-02", "2026-03-03", "2026-03-01"),
        ("UTC", "2026-03-01", "2026-03-02", "2026-02-28"),
        # and 23:30 on 28 February, twelve hours west of Greenwich
        ("Etc/GMT+12", "2026-02-28", "2026-03-01", "2026-02-27"),
    ],
)
def test_on_before_and_after_are_days_of_the_accounts_time_zone(world, zone, day, before, after):
    # given erin, added at 11:30 UTC on 1 March 2026
    world.account_a.time_zone = zone
    world.account_a.save(update_fields=["time_zone"])
    erin = world.extras["contact"]
    Contact.objects.filter(pk=erin.pk).update(
        created_at=dt.datetime(2026, 3, 1, 11, 30, tzinfo=dt.UTC)
    )
    now = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)

    def added(op: str, value: str) -> int:
        return _erin_count(world, now, {"field": "created_at", "op": op, "value": value})

    # then she was added on the account's day, not another
    assert added("on", day) == 1
    assert added("on", after) == 0
    assert added("before", before) == 1
    assert added("before", day) == 0
    assert added("after", after) == 1
    assert added("after", day) == 0
    assert (
        _erin_count(world, now, {"field": "created_at", "op": "between", "value": [day, day]}) == 1
    )


@pytest.mark.parametrize(
    ("now", "days", "matches"),
    [
        # 2026 has no 29 February: the birthday comes on the 28th
        (dt.datetime(2026, 2, 27, 12, tzinfo=dt.UTC), 0, False),
        (dt.datetime(2026, 2, 27, 12, tzinfo=dt.UTC), 1, True),
        (dt.datetime(2026, 2, 28, 12, tzinfo=dt.UTC), 0, True),
        # 2028 has one: the 28th is not the day
        (dt.datetime(2028, 2, 27, 12, tzinfo=dt.UTC), 1, False),
        (dt.datetime(2028, 2, 27, 12, tzinfo=dt.UTC), 2, True),
        # and the days to come run into the new year
        (dt.datetime(2025, 12, 20, 12, tzinfo=dt.UTC), 70, True),
        (dt.datetime(2025, 12, 20, 12, tzinfo=dt.UTC), 69, False),
    ],
)
def test_a_birthday_on_29_february_comes_on_the_28th_in_other_years(world, now, days, matches):
    contact_services.attribute_define(
        account=world.account_a, actor=world.alice, name="birthday", type="date"
    )
    Contact.objects.filter(pk=world.extras["contact"].pk).update(
        attributes={"birthday": "2000-02-29"}
    )

    found = _erin_count(
        world, now, {"field": "attributes.birthday", "op": "anniversary_within_days", "value": days}
    )

    assert found == int(matches)


# -- people only -------------------------------------------------------------------------------


NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


def _sent(world: World) -> Delivery:
    contact = world.extras["contact"]
    return Delivery.objects.create(
        campaign=world.extras["campaign"],
        contact=contact,
        status=Delivery.Status.SENT,
        sent_at=NOW - dt.timedelta(days=12),
    )


def _engage(delivery: Delivery, type: str, *, machine: bool, ago: dt.timedelta) -> None:
    record_engagement(
        type,
        account_id=delivery.campaign.account_id,
        campaign_id=delivery.campaign_id,
        delivery_id=delivery.pk,
        personal=True,
        machine=machine,
        at=NOW - ago,
    )


def _count(world: World, field: str, op: str, **more: object) -> int:
    definition = {"conditions": [{"field": field, "op": op, **more}]}
    return selectors.count(world.account_a, definition, now=NOW)


@pytest.mark.parametrize(("type", "field"), [("open", "opened"), ("click", "clicked")])
def test_a_machine_never_opens_or_clicks_for_a_person(world, type, field):
    # given erin's copy of the campaign, opened (or clicked) only by an image proxy or a
    # link scanner, an hour ago
    delivery = _sent(world)
    campaign = delivery.campaign_id
    _engage(delivery, type, machine=True, ago=dt.timedelta(hours=1))

    # then she has not opened (clicked) it, in any reading
    assert _count(world, field, "in_last_days", value=7) == 0
    assert _count(world, field, "ever") == 0
    assert _count(world, field, "in_last_days", value=7, campaign=campaign) == 0
    assert _count(world, field, "ever", campaign=campaign) == 0
    assert _count(world, field, "not_in_last_days", value=7) == 1
    assert _count(world, "unopened_streak", "at_least", value=1) == 1

    # when she opens (clicks) it herself, ten days ago
    _engage(delivery, type, machine=False, ago=dt.timedelta(days=10))

    # then she has, though not in the last week: the machine's later one does not count
    assert _count(world, field, "in_last_days", value=30) == 1
    assert _count(world, field, "ever") == 1
    assert _count(world, field, "in_last_days", value=30, campaign=campaign) == 1
    assert _count(world, field, "ever", campaign=campaign) == 1
    assert _count(world, field, "in_last_days", value=7) == 0
    assert _count(world, field, "in_last_days", value=7, campaign=campaign) == 0

    # and a person's open (click) yesterday makes her match the last week
    _engage(delivery, type, machine=False, ago=dt.timedelta(days=1))
    assert _count(world, field, "in_last_days", value=7) == 1
    assert _count(world, field, "in_last_days", value=7, campaign=campaign) == 1
