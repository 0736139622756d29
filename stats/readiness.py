"""Where a sending domain stands with Gmail, Yahoo and Microsoft.

Their published rules for bulk senders (Gmail and Yahoo since February 2024, Microsoft's
Outlook.com since May 2025): SPF and DKIM that pass, a DMARC record (at least p=none)
aligned with the From domain, one-click unsubscribe (RFC 8058) whose headers the DKIM
signature covers, a complaint rate under 0.1% that never reaches 0.3%, few bounces, and,
for a host that sends directly, a PTR record that points back to it and TLS. Each line
of the checklist says its status, the figure measured and what to do.

The DNS lines read the domain's last check (domains.services.domain_check); the rates
come from the events of the campaigns sent from the domain over the last 30 days.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

from campaigns.models import Campaign
from domains import pacing
from domains.checks import DomainReport
from domains.hosts import sending_host_report
from domains.models import DkimKey, SendingDomain
from domains.records import RecordCheck
from domains.spf import required_spf
from events.models import Event
from stats.health import COMPLAINT_SUSPEND_RATE, COMPLAINT_WARNING_RATE, COMPLAINT_WINDOW

PASS, WARN, FAIL, UNKNOWN = "pass", "warn", "fail", "unknown"
STATUSES = [PASS, WARN, FAIL, UNKNOWN]
# Bounces: receivers start to distrust a sender above about 2% and most platforms act at 5%.
BOUNCE_WARNING_RATE = 0.02
BOUNCE_LIMIT_RATE = 0.05
HOST_REPORT_CACHE = 60 * 60
PROVIDERS = [("gmail", "Gmail"), ("yahoo", "Yahoo"), ("microsoft", "Microsoft")]


@dataclass(frozen=True)
class Line:
    rule: str
    required_by: str
    status: str  # pass, warn, fail or unknown
    figure: str
    advice: str


@dataclass(frozen=True)
class Rates:
    sent: int
    complaints: int
    hard_bounces: int
    deferrals: int

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0

    @property
    def bounce_rate(self) -> float:
        return self.hard_bounces / self.sent if self.sent else 0.0


def domain_rates(domain: SendingDomain, *, now: datetime | None = None) -> Rates:
    """The last 30 days of the campaigns sent from the domain's addresses."""
    since = (now or timezone.now()) - COMPLAINT_WINDOW
    if domain.account is None:
        return Rates(0, 0, 0, 0)
    campaign_ids = list(
        Campaign.objects.for_account(domain.account)
        .filter(from_email__iendswith="@" + domain.name, started_at__isnull=False)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=since))
        .values_list("pk", flat=True)
    )
    if not campaign_ids:
        return Rates(0, 0, 0, 0)
    counts = (
        Event.objects.for_account(domain.account)
        .filter(campaign_id__in=campaign_ids, occurred_at__gte=since)
        .aggregate(
            sent=Count("id", filter=Q(type=Event.Type.SENT)),
            complaints=Count("id", filter=Q(type=Event.Type.COMPLAINT)),
            hard=Count("id", filter=Q(type=Event.Type.BOUNCE, detail__kind="hard")),
            deferrals=Count("id", filter=Q(type=Event.Type.DEFERRED)),
        )
    )
    return Rates(counts["sent"], counts["complaints"], counts["hard"], counts["deferrals"])


def _check(report: DomainReport | None, key: str) -> RecordCheck | None:
    if report is None:
        return None
    return next((c for c in report.checks if c.key == key), None)


def _dns_line(rule: str, who: str, check: RecordCheck | None, ok_advice: str) -> Line:
    if check is None:
        return Line(rule, who, UNKNOWN, "not checked yet", "Choose “Check now” on the domain.")
    if check.status == "found":
        return Line(rule, who, PASS, "found", ok_advice)
    if check.status == "unavailable":
        return Line(rule, who, UNKNOWN, "could not look up", check.message)
    found = "; ".join(check.found) if check.found else check.status
    return Line(rule, who, FAIL, found, check.message)


def _percent(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def sends_directly() -> bool:
    """Whether Missive hands mail to an SMTP server of the operator's (rather than to an
    email provider's API, whose own hosts then face the receivers)."""
    return settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"


def host_report() -> list[RecordCheck]:
    """PTR and TLS of the SMTP host Missive sends through, looked up once an hour."""
    key = f"readiness:host:{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
    cached = cache.get(key)
    if cached is None:
        found = sending_host_report(settings.EMAIL_HOST, int(settings.EMAIL_PORT))
        cached = [{**asdict(c), "status": str(c.status)} for c in found]
        cache.set(key, cached, HOST_REPORT_CACHE)
    return [RecordCheck.from_dict(c) for c in cached]


def readiness(domain: SendingDomain, *, now: datetime | None = None) -> list[Line]:
    """The checklist of the domain, in the order the rules are usually read."""
    report = DomainReport.from_dict(domain.report) if domain.report else None
    both, everyone = "Gmail, Yahoo", "Gmail, Yahoo, Microsoft"
    lines: list[Line] = []
    signing = list(domain.keys.filter(state=DkimKey.State.ACTIVE))
    dkim_checks = [_check(report, f"dkim:{key.selector}") for key in signing]
    if not signing:
        lines.append(
            Line(
                "DKIM passes",
                everyone,
                FAIL,
                "no signing key",
                "Publish the DKIM record shown on the domain's page and check it.",
            )
        )
    else:
        worst = next((c for c in dkim_checks if c is None or c.status != "found"), dkim_checks[0])
        lines.append(
            _dns_line("DKIM passes", everyone, worst, "Every message is signed with this key.")
        )
    spf = _check(report, "spf")
    if required_spf() is None and (spf is None or spf.status != "found"):
        lines.append(
            Line(
                "SPF passes",
                everyone,
                WARN,
                "sending hosts not configured",
                "Missive's operator has not said which hosts send (MISSIVE_SPF_INCLUDE or "
                "MISSIVE_SENDING_IPS), so SPF cannot be checked; DMARC passes through DKIM.",
            )
        )
    else:
        lines.append(_dns_line("SPF passes", everyone, spf, "The sending hosts are authorized."))
    dmarc = _check(report, "dmarc")
    lines.append(
        _dns_line(
            "DMARC record present",
            everyone,
            dmarc,
            "p=none is enough to start; move "
            "to quarantine or reject once reports show only your own mail.",
        )
    )
    if report is None:
        lines.append(Line("DMARC aligned", everyone, UNKNOWN, "not checked yet", ""))
    else:
        passes = report.alignment.dmarc_can_pass
        lines.append(
            Line(
                "DMARC aligned",
                everyone,
                PASS if passes else FAIL,
                report.alignment.message or ("aligned" if passes else "not aligned"),
                ""
                if passes
                else "DMARC passes when the DKIM signature (or SPF) is aligned "
                "with the From domain under your record's adkim/aspf modes: publish the "
                "DKIM record and check again.",
            )
        )
    signed = bool(signing) and sends_directly()
    lines.append(
        Line(
            "One-click unsubscribe (RFC 8058)",
            both,
            PASS if signed or not sends_directly() else WARN,
            "List-Unsubscribe and List-Unsubscribe-Post in every message"
            + (", covered by the DKIM signature" if signed else ""),
            ""
            if signed
            else (
                "The sending provider signs the messages."
                if not sends_directly()
                else "Without a signing key the headers are not covered by a signature."
            ),
        )
    )
    lines.append(
        Line("Feedback-ID header", "Gmail", PASS, "campaign:account:missive in every message", "")
    )
    rates = domain_rates(domain, now=now)
    if not rates.sent:
        lines.append(Line("Complaint rate (30 days)", both, UNKNOWN, "nothing sent", ""))
        lines.append(Line("Bounce rate (30 days)", everyone, UNKNOWN, "nothing sent", ""))
    else:
        rate = rates.complaint_rate
        status = (
            FAIL
            if rate >= COMPLAINT_SUSPEND_RATE
            else WARN
            if rate >= COMPLAINT_WARNING_RATE
            else PASS
        )
        lines.append(
            Line(
                "Complaint rate (30 days)",
                both,
                status,
                f"{_percent(rate)} ({rates.complaints} of {rates.sent})",
                ""
                if status == PASS
                else "Stay under 0.1% and never reach 0.3%: send only to "
                "people who asked, make unsubscribing easy, and remove the inactive.",
            )
        )
        rate = rates.bounce_rate
        status = (
            FAIL if rate >= BOUNCE_LIMIT_RATE else WARN if rate >= BOUNCE_WARNING_RATE else PASS
        )
        lines.append(
            Line(
                "Bounce rate (30 days)",
                everyone,
                status,
                f"{_percent(rate)} ({rates.hard_bounces} of {rates.sent})",
                ""
                if status == PASS
                else "Remove addresses that do not exist: confirm new "
                "subscribers (double opt-in) and clean old lists before sending.",
            )
        )
    lines.append(
        Line(
            "Deferrals (30 days)",
            everyone,
            PASS if rates.deferrals == 0 else WARN,
            str(rates.deferrals),
            ""
            if not rates.deferrals
            else "Receivers asked Missive to slow down (4.7.x): "
            "it paces that provider on its own; a warm-up helps a new domain.",
        )
    )
    for provider, label in PROVIDERS:
        deferred, pace = pacing.deferrals_today(provider), pacing.provider_pace(provider)
        lines.append(
            Line(
                f"Pace at {label}",
                label,
                WARN if deferred else PASS,
                f"{deferred} deferral{'s' if deferred != 1 else ''} today (all of Missive)"
                + (f", slowed to {pace:g} messages a second" if deferred and pace else ""),
                "Missive slowed down on its own after the provider asked it to (4.7.x); it "
                "speeds up again 15 minutes after the last deferral."
                if deferred
                else "",
            )
        )
    if sends_directly():
        for check in host_report():
            lines.append(_dns_line(check.label, "Gmail, Yahoo", check, ""))
    return lines
