"""Report counters, kept by the roll-up (stats/rollup.py) from the events
(events/models.py)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Account
from accounts.scoping import AccountScopedManager

# # Reports read these rows, never the events: a campaign of a million recipients is one
# CampaignStats row, a row per link, per hour with opens or clicks, and per recipient
# domain. Counts named ``*_unique`` count recipients (deliveries), the others events.
# People and machines are kept apart: ``opens`` are people's, ``machine_opens`` the
# image proxies' and prefetchers'; ``*_unique_all`` counts recipients whatever opened or
# clicked for them.


def _counter() -> models.BigIntegerField:
    return models.BigIntegerField(default=0, db_default=0)


class RollupState(models.Model):
    """Where the roll-up stands: a single row (id 1)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    # Every event whose id is at most this one is counted, and no other.
    last_event_id = models.BigIntegerField(default=0)
    # Every event recorded before this instant is counted: what "updated 12 s ago" says.
    as_of = models.DateTimeField(null=True, blank=True)
    # A horizon read earlier whose writers were still at work: counted once they end.
    pending_event_id = models.BigIntegerField(null=True, blank=True)
    pending_as_of = models.DateTimeField(null=True, blank=True)
    pending_writers = models.JSONField(default=list, blank=True)
    ran_at = models.DateTimeField(null=True, blank=True)
    last_run_events = models.PositiveIntegerField(default=0)
    last_run_seconds = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"events up to #{self.last_event_id}"


class CampaignStats(models.Model):
    campaign = models.OneToOneField(
        "campaigns.Campaign", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    sent = _counter()
    delivered = _counter()  # recipients the provider reported delivered
    opens = _counter()
    machine_opens = _counter()
    opens_unique = _counter()
    opens_unique_all = _counter()
    clicks = _counter()
    machine_clicks = _counter()
    clicks_unique = _counter()
    clicks_unique_all = _counter()
    # Through anonymous links (accounts that track anonymously, recipients who objected
    # to tracking): in the totals above, but nobody can be counted once.
    anonymous_opens = _counter()
    anonymous_clicks = _counter()
    bounced = _counter()  # recipients with a bounce of any kind
    bounced_hard = _counter()
    bounced_soft = _counter()
    bounced_other = _counter()  # policy rejections and bounces of unknown kind
    # Recipients whose server put their message off for the sender's sake (rate limits,
    # reputation, a busy server): a sending problem, retried, not held against them.
    deferred = _counter()
    complaints = _counter()
    unsubscribes = _counter()
    updated_at = models.DateTimeField(default=timezone.now)

    objects = AccountScopedManager()

    class Meta:
        verbose_name_plural = "campaign stats"

    def __str__(self) -> str:
        return f"stats of campaign {self.campaign_id}"


class LinkStats(models.Model):
    link = models.OneToOneField(
        "campaigns.Link", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    clicks = _counter()
    machine_clicks = _counter()
    clicks_unique = _counter()
    clicks_unique_all = _counter()

    objects = AccountScopedManager()

    class Meta:
        verbose_name_plural = "link stats"

    def __str__(self) -> str:
        return f"stats of link {self.link_id}"


class HourlyStats(models.Model):
    """Opens and clicks of a campaign in one hour (UTC), for its chart."""

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()
    opens = _counter()
    machine_opens = _counter()
    clicks = _counter()
    machine_clicks = _counter()

    objects = AccountScopedManager()

    class Meta:
        verbose_name_plural = "hourly stats"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "hour"], name="hourly_stats_unique")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} at {self.hour:%Y-%m-%d %H:00}"


class MachineStats(models.Model):
    """A campaign's opens and clicks judged a machine's, by why (a reason of
    events/machines.py; "" for events recorded before reasons were kept), so the customer
    sees what the report leaves out and can judge it."""

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    reason = models.CharField(max_length=32, blank=True)
    opens = _counter()
    clicks = _counter()

    objects = AccountScopedManager()

    class Meta:
        verbose_name_plural = "machine stats"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "reason"], name="machine_stats_unique")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.reason or '(no reason kept)'}"


class DomainStats(models.Model):
    """What happened to a campaign's recipients at one mail domain. All counts are of
    recipients; "" gathers those erased since."""

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    domain = models.CharField(max_length=255, blank=True)
    sent = _counter()
    delivered = _counter()
    opens_unique = _counter()
    opens_unique_all = _counter()
    clicks_unique = _counter()
    clicks_unique_all = _counter()
    bounced = _counter()
    bounced_hard = _counter()
    bounced_soft = _counter()
    complaints = _counter()
    unsubscribes = _counter()

    objects = AccountScopedManager()

    class Meta:
        verbose_name_plural = "domain stats"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "domain"], name="domain_stats_unique")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} at {self.domain or '(erased)'}"
