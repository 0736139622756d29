"""How healthy an account's sending is, and the thresholds of every feedback rule.

Mailbox providers judge a sender by its complaint rate: Gmail and Yahoo ask bulk senders
to stay under 0.1% and refuse them above 0.3%. Missive shows the account's rate over its
last 30 days, warns at 0.1% and suspends the account's sending at 0.3%, so one customer's
list does not burn the reputation of the platform's sending infrastructure. The limits of
the bounce rules (stats/feedback.py) live here too, so every threshold is in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import Account
from campaigns.models import Campaign
from events.models import Event

# -- complaints ------------------------------------------------------------------------------
COMPLAINT_WINDOW = timedelta(days=30)
COMPLAINT_WARNING_RATE = 0.001  # 0.1%: shown to the customer as a warning
COMPLAINT_SUSPEND_RATE = 0.003  # 0.3%: the account's sending is suspended
# Below this many messages in the window the rate says little (one complaint on ten
# messages is 10%), so it never suspends an account; the warning still shows.
COMPLAINT_MIN_SENT = 1000

# -- bounces -------------------------------------------------------------------------------
# Soft bounces (the mailbox's own trouble: full, busy, out of reach; not the deferrals
# of the sender's reputation or rate, stats/feedback.py) suppress an address once
# this many different messages to it failed, the first and the last at least
# SOFT_BOUNCE_SPAN apart, all within SOFT_BOUNCE_WINDOW.
SOFT_BOUNCE_LIMIT = 3
SOFT_BOUNCE_SPAN = timedelta(hours=72)
SOFT_BOUNCE_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class ComplaintHealth:
    rate: float
    complaints: int
    sent: int

    @property
    def warning(self) -> bool:
        """At or over 0.1%: the dashboard says so."""
        return self.complaints > 0 and self.rate >= COMPLAINT_WARNING_RATE

    @property
    def over_limit(self) -> bool:
        """At or over 0.3% on enough volume: sending must stop."""
        return self.sent >= COMPLAINT_MIN_SENT and self.rate >= COMPLAINT_SUSPEND_RATE


def complaint_rate(account: Account, *, now: datetime | None = None) -> tuple[float, int, int]:
    """(rate, complaints, messages sent) over the account's last 30 days, from events.

    Read through the campaigns that could have sent in the window, so PostgreSQL walks the
    (campaign, type, occurred_at) index instead of every event of the account."""
    since = (now or timezone.now()) - COMPLAINT_WINDOW
    campaign_ids = list(
        Campaign.objects.for_account(account)
        .filter(started_at__isnull=False)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=since))
        .values_list("pk", flat=True)
    )
    if not campaign_ids:
        return 0.0, 0, 0
    counts = (
        Event.objects.for_account(account)
        .filter(
            campaign_id__in=campaign_ids,
            type__in=[Event.Type.SENT, Event.Type.COMPLAINT],
            occurred_at__gte=since,
        )
        .aggregate(
            sent=Count("id", filter=Q(type=Event.Type.SENT)),
            complaints=Count("id", filter=Q(type=Event.Type.COMPLAINT)),
        )
    )
    sent, complaints = counts["sent"], counts["complaints"]
    return (complaints / sent if sent else 0.0), complaints, sent


def complaint_health(account: Account, *, now: datetime | None = None) -> ComplaintHealth:
    """The complaint rate with its flags, for the dashboard."""
    rate, complaints, sent = complaint_rate(account, now=now)
    return ComplaintHealth(rate=rate, complaints=complaints, sent=sent)
