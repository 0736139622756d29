"""Campaign reports, read from the roll-up's counters (stats/rollup.py), never from the
events: a report costs a handful of small queries whether its campaign reached ten people
or a million.

People by default: opens by privacy prefetchers and scanners and clicks by link scanners
are left out unless ``include_machines`` is asked for, and are then added to the totals
and to the recipients who opened or clicked; either way the report says how many were
left out for which reason (events/machines.py). Rates:

- open, click, complaint and unsubscribe rates are of the delivered messages;
- the click-to-open rate is of the recipients who opened;
- bounce rates are of the messages sent.

"Delivered" is what the sending provider reported through its webhooks; when it reports
none (plain SMTP), it is the messages sent less those that bounced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db.models import F, Sum
from django.db.models.expressions import Combinable
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Account
from campaigns.models import Campaign, Link
from events import machines
from stats.models import (
    CampaignStats,
    DomainStats,
    HourlyStats,
    LinkStats,
    MachineStats,
    RollupState,
)

HOURLY_SPAN = dt.timedelta(hours=48)  # the chart's first part, hour by hour
DAILY_DAYS = 60  # then day by day, for this many days at most
TOP_DOMAINS = 10


def ratio(part: int, whole: int) -> float | None:
    """``part`` of ``whole`` (0.25 for a quarter); None when there is no whole."""
    return part / whole if whole else None


@dataclass(frozen=True)
class Totals:
    recipients: int  # in the audience when the send began
    sent: int
    delivered: int
    delivered_reported: bool  # False: sent less bounced, no provider reports deliveries
    opens: int
    opens_unique: int  # recipients who opened
    clicks: int
    clicks_unique: int  # recipients who clicked
    machine_opens: int
    machine_clicks: int
    anonymous_opens: int  # through anonymous links: in the totals, nobody counted once
    anonymous_clicks: int
    bounced: int  # recipients whose message bounced, whatever the kind
    bounced_hard: int
    bounced_soft: int
    bounced_other: int  # policy rejections, unknown kinds
    # Recipients whose server put the message off for the sender's sake (rate limits,
    # reputation): a sending problem, not the recipients'.
    deferred: int
    complaints: int
    unsubscribes: int

    @property
    def open_rate(self) -> float | None:
        return ratio(self.opens_unique, self.delivered)

    @property
    def click_rate(self) -> float | None:
        return ratio(self.clicks_unique, self.delivered)

    @property
    def click_to_open_rate(self) -> float | None:
        return ratio(self.clicks_unique, self.opens_unique)

    @property
    def bounce_rate(self) -> float | None:
        return ratio(self.bounced, self.sent)

    @property
    def hard_bounce_rate(self) -> float | None:
        return ratio(self.bounced_hard, self.sent)

    @property
    def soft_bounce_rate(self) -> float | None:
        return ratio(self.bounced_soft, self.sent)

    @property
    def complaint_rate(self) -> float | None:
        return ratio(self.complaints, self.delivered)

    @property
    def unsubscribe_rate(self) -> float | None:
        return ratio(self.unsubscribes, self.delivered)


@dataclass(frozen=True)
class MachineRow:
    """Opens and clicks judged a machine's for one reason."""

    reason: str  # a key of events.machines.REASONS; "" when none was kept
    label: str
    opens: int
    clicks: int


@dataclass(frozen=True)
class LinkRow:
    link_id: int
    position: int
    url: str
    clicks: int
    clicks_unique: int
    click_rate: float | None  # recipients who clicked it, of those delivered


@dataclass(frozen=True)
class DomainRow:
    domain: str  # "" for recipients erased since
    sent: int
    delivered: int
    opens_unique: int
    clicks_unique: int
    bounced: int
    bounced_hard: int
    bounced_soft: int
    complaints: int
    unsubscribes: int

    @property
    def open_rate(self) -> float | None:
        return ratio(self.opens_unique, self.delivered)

    @property
    def click_rate(self) -> float | None:
        return ratio(self.clicks_unique, self.delivered)

    @property
    def bounce_rate(self) -> float | None:
        return ratio(self.bounced, self.sent)


@dataclass(frozen=True)
class Point:
    start: dt.datetime  # aware, in the account's time zone
    opens: int
    clicks: int


@dataclass(frozen=True)
class CampaignReport:
    campaign: Campaign
    include_machines: bool
    as_of: dt.datetime | None  # every event recorded before this is counted
    totals: Totals
    links: list[LinkRow]
    machines: list[MachineRow]  # why opens and clicks were judged machines', most first
    top_domains: list[DomainRow]  # by recipients who opened
    bounce_domains: list[DomainRow]  # by recipients whose message bounced
    hourly: list[Point]  # the first 48 hours of the send
    daily: list[Point]  # then day by day
    now: dt.datetime = field(default_factory=timezone.now)

    @property
    def age_seconds(self) -> int | None:
        """How far behind the counters are."""
        if self.as_of is None:
            return None
        return max(0, round((self.now - self.as_of).total_seconds()))


def rollup_as_of() -> dt.datetime | None:
    return RollupState.objects.filter(pk=1).values_list("as_of", flat=True).first()


def ago(seconds: int | None) -> str:
    """ "12 s ago", "3 min ago", "2 h ago", "4 days ago"; "not yet" for None."""
    if seconds is None:
        return "not yet"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


# -- one campaign ------------------------------------------------------------------------------


def _totals(campaign: Campaign, stats: CampaignStats, include_machines: bool) -> Totals:
    delivered_reported = stats.delivered > 0
    return Totals(
        recipients=campaign.recipients_count,
        sent=stats.sent,
        delivered=stats.delivered if delivered_reported else max(stats.sent - stats.bounced, 0),
        delivered_reported=delivered_reported,
        opens=stats.opens + (stats.machine_opens if include_machines else 0),
        opens_unique=stats.opens_unique_all if include_machines else stats.opens_unique,
        clicks=stats.clicks + (stats.machine_clicks if include_machines else 0),
        clicks_unique=stats.clicks_unique_all if include_machines else stats.clicks_unique,
        machine_opens=stats.machine_opens,
        machine_clicks=stats.machine_clicks,
        anonymous_opens=stats.anonymous_opens,
        anonymous_clicks=stats.anonymous_clicks,
        bounced=stats.bounced,
        bounced_hard=stats.bounced_hard,
        bounced_soft=stats.bounced_soft,
        bounced_other=stats.bounced_other,
        deferred=stats.deferred,
        complaints=stats.complaints,
        unsubscribes=stats.unsubscribes,
    )


def _links(
    account: Account, campaign: Campaign, delivered: int, include_machines: bool
) -> list[LinkRow]:
    counters = {
        row.link_id: row for row in LinkStats.objects.for_account(account).filter(campaign=campaign)
    }
    rows = []
    for link in Link.objects.for_account(account).filter(campaign=campaign).order_by("position"):
        stats = counters.get(link.pk) or LinkStats()
        unique = stats.clicks_unique_all if include_machines else stats.clicks_unique
        rows.append(
            LinkRow(
                link_id=link.pk,
                position=link.position,
                url=link.url,
                clicks=stats.clicks + (stats.machine_clicks if include_machines else 0),
                clicks_unique=unique,
                click_rate=ratio(unique, delivered),
            )
        )
    return rows


def _machines(account: Account, campaign: Campaign) -> list[MachineRow]:
    rows = (
        MachineStats.objects.for_account(account)
        .filter(campaign=campaign)
        .order_by((F("opens") + F("clicks")).desc(), "reason")
    )
    return [
        MachineRow(
            reason=row.reason,
            label=machines.REASONS.get(row.reason, row.reason or "recorded without a reason"),
            opens=row.opens,
            clicks=row.clicks,
        )
        for row in rows
    ]


def _domain_row(row: DomainStats, include_machines: bool, delivered_reported: bool) -> DomainRow:
    return DomainRow(
        domain=row.domain,
        sent=row.sent,
        delivered=row.delivered if delivered_reported else max(row.sent - row.bounced, 0),
        opens_unique=row.opens_unique_all if include_machines else row.opens_unique,
        clicks_unique=row.clicks_unique_all if include_machines else row.clicks_unique,
        bounced=row.bounced,
        bounced_hard=row.bounced_hard,
        bounced_soft=row.bounced_soft,
        complaints=row.complaints,
        unsubscribes=row.unsubscribes,
    )


def _domains(
    account: Account, campaign: Campaign, include_machines: bool, delivered_reported: bool
) -> tuple[list[DomainRow], list[DomainRow]]:
    rows = DomainStats.objects.for_account(account).filter(campaign=campaign)
    opened = "opens_unique_all" if include_machines else "opens_unique"
    engaged = rows.filter(**{f"{opened}__gt": 0}).order_by(f"-{opened}", "-sent", "domain")
    bounced = rows.filter(bounced__gt=0).order_by("-bounced", "-sent", "domain")
    return (
        [_domain_row(r, include_machines, delivered_reported) for r in engaged[:TOP_DOMAINS]],
        [_domain_row(r, include_machines, delivered_reported) for r in bounced[:TOP_DOMAINS]],
    )


def _origin(account: Account, campaign: Campaign) -> dt.datetime | None:
    """Where the chart starts: the hour the send began, or of the first open or click."""
    start = campaign.started_at or (
        HourlyStats.objects.for_account(account)
        .filter(campaign=campaign)
        .order_by("hour")
        .values_list("hour", flat=True)
        .first()
    )
    return start.replace(minute=0, second=0, microsecond=0) if start else None


def _timeline(
    account: Account, campaign: Campaign, include_machines: bool, now: dt.datetime
) -> tuple[list[Point], list[Point]]:
    origin = _origin(account, campaign)
    if origin is None:
        return [], []
    tz = ZoneInfo(account.time_zone)
    split = origin + HOURLY_SPAN
    rows = HourlyStats.objects.for_account(account).filter(campaign=campaign)
    opens: Combinable = F("opens")
    clicks: Combinable = F("clicks")
    if include_machines:
        opens, clicks = opens + F("machine_opens"), clicks + F("machine_clicks")
    by_hour = {
        hour: (o, c)
        for hour, o, c in rows.filter(hour__gte=origin, hour__lt=split).values_list(
            "hour", opens, clicks
        )
    }
    hours = min(48, max(1, int((now - origin).total_seconds() // 3600) + 1))
    hourly = []
    for n in range(hours):
        hour = origin + dt.timedelta(hours=n)
        o, c = by_hour.get(hour, (0, 0))
        hourly.append(Point(start=hour.astimezone(tz), opens=o, clicks=c))
    if now < split:
        return hourly, []
    first_day = split.astimezone(tz).date()
    last_day = min(now.astimezone(tz).date(), first_day + dt.timedelta(days=DAILY_DAYS - 1))
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tz)
    by_day = {
        row["day"]: (row["o"], row["c"])
        for row in rows.filter(hour__gte=split, hour__lt=end)
        .annotate(day=TruncDate("hour", tzinfo=tz))
        .values("day")
        .annotate(o=Sum(opens), c=Sum(clicks))
        .order_by("day")
    }
    daily = []
    day = first_day
    while day <= last_day:
        o, c = by_day.get(day, (0, 0))
        daily.append(Point(start=dt.datetime.combine(day, dt.time(), tz), opens=o, clicks=c))
        day += dt.timedelta(days=1)
    return hourly, daily


def campaign_report(
    account: Account,
    campaign: Campaign,
    *,
    include_machines: bool = False,
    now: dt.datetime | None = None,
) -> CampaignReport:
    """The report of ``campaign``, one of ``account``'s."""
    now = now or timezone.now()
    stats = (
        CampaignStats.objects.for_account(account).filter(campaign=campaign).first()
        or CampaignStats()
    )
    totals = _totals(campaign, stats, include_machines)
    top_domains, bounce_domains = _domains(
        account, campaign, include_machines, totals.delivered_reported
    )
    hourly, daily = _timeline(account, campaign, include_machines, now)
    return CampaignReport(
        campaign=campaign,
        include_machines=include_machines,
        as_of=rollup_as_of(),
        totals=totals,
        links=_links(account, campaign, totals.delivered, include_machines),
        machines=_machines(account, campaign),
        top_domains=top_domains,
        bounce_domains=bounce_domains,
        hourly=hourly,
        daily=daily,
        now=now,
    )


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}"


def _cell(value: object) -> object:
    """A spreadsheet must not run a cell as a formula (a domain or URL starting with =)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return f"'{value}"
    return value


def report_csv_rows(report: CampaignReport) -> Iterator[list[object]]:
    """The report as CSV rows: sections (summary, links, domains, timeline), each with a
    header row, separated by an empty row. Rates are percentages."""
    t = report.totals
    who = "people and machines" if report.include_machines else "people"
    yield ["campaign", _cell(report.campaign.name)]
    yield ["counted", who]
    yield ["as of", report.as_of.isoformat() if report.as_of else ""]
    yield []
    yield ["metric", "value", "rate %"]
    delivered = "delivered" if t.delivered_reported else "delivered (sent less bounced)"
    for label, value, rate in (
        ("recipients", t.recipients, None),
        ("sent", t.sent, None),
        (delivered, t.delivered, None),
        ("opens", t.opens, None),
        ("unique opens", t.opens_unique, t.open_rate),
        ("clicks", t.clicks, None),
        ("unique clicks", t.clicks_unique, t.click_rate),
        ("click-to-open", t.clicks_unique, t.click_to_open_rate),
        ("bounced", t.bounced, t.bounce_rate),
        ("hard bounces", t.bounced_hard, t.hard_bounce_rate),
        ("soft bounces", t.bounced_soft, t.soft_bounce_rate),
        ("other bounces", t.bounced_other, ratio(t.bounced_other, t.sent)),
        ("deferred for the sender's reputation or rate", t.deferred, ratio(t.deferred, t.sent)),
        ("complaints", t.complaints, t.complaint_rate),
        ("unsubscribes", t.unsubscribes, t.unsubscribe_rate),
        ("machine opens", t.machine_opens, None),
        ("machine clicks", t.machine_clicks, None),
        ("anonymous opens", t.anonymous_opens, None),
        ("anonymous clicks", t.anonymous_clicks, None),
    ):
        yield [label, value, _percent(rate)]
    yield []
    yield ["machine reason", "description", "opens", "clicks"]
    for row in report.machines:
        yield [row.reason or "(none)", row.label, row.opens, row.clicks]
    yield []
    yield ["link", "url", "clicks", "unique clicks", "click rate %"]
    for link in report.links:
        yield [
            link.position,
            _cell(link.url),
            link.clicks,
            link.clicks_unique,
            _percent(link.click_rate),
        ]
    for title, rows in (
        ("top domains by opens", report.top_domains),
        ("top domains by bounces", report.bounce_domains),
    ):
        yield []
        yield [
            title,
            "sent",
            "delivered",
            "unique opens",
            "unique clicks",
            "bounced",
            "hard bounces",
            "soft bounces",
            "complaints",
            "unsubscribes",
            "open rate %",
            "click rate %",
            "bounce rate %",
        ]
        for d in rows:
            yield [
                _cell(d.domain or "(erased)"),
                d.sent,
                d.delivered,
                d.opens_unique,
                d.clicks_unique,
                d.bounced,
                d.bounced_hard,
                d.bounced_soft,
                d.complaints,
                d.unsubscribes,
                _percent(d.open_rate),
                _percent(d.click_rate),
                _percent(d.bounce_rate),
            ]
    yield []
    yield ["period", "start", "opens", "clicks"]
    for period, points in (("hour", report.hourly), ("day", report.daily)):
        for p in points:
            yield [period, p.start.isoformat(), p.opens, p.clicks]


# -- the account's campaigns side by side ------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow:
    campaign_id: int
    name: str
    started_at: dt.datetime | None
    sent: int
    open_rate: float | None
    click_rate: float | None
    bounce_rate: float | None
    complaint_rate: float | None


def campaign_comparison(account: Account, *, limit: int = 8) -> list[ComparisonRow]:
    """The account's last ``limit`` campaigns that went out, newest first, people only."""
    campaigns = list(
        Campaign.objects.for_account(account)
        .filter(started_at__isnull=False, kind=Campaign.Kind.CAMPAIGN)
        .order_by("-started_at", "-pk")
        .only("pk", "name", "started_at", "recipients_count")[:limit]
    )
    stats = {
        s.campaign_id: s
        for s in CampaignStats.objects.for_account(account).filter(
            campaign_id__in=[c.pk for c in campaigns]
        )
    }
    rows = []
    for campaign in campaigns:
        totals = _totals(campaign, stats.get(campaign.pk) or CampaignStats(), False)
        rows.append(
            ComparisonRow(
                campaign_id=campaign.pk,
                name=campaign.name,
                started_at=campaign.started_at,
                sent=totals.sent,
                open_rate=totals.open_rate,
                click_rate=totals.click_rate,
                bounce_rate=totals.bounce_rate,
                complaint_rate=totals.complaint_rate,
            )
        )
    return rows
