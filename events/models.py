"""What happened to the messages: one row per event, in a table range-partitioned by month.

The table is created by this app's migrations (Django does not declare partitioned
tables), so the model is unmanaged. Its primary key in PostgreSQL is (id, occurred_at),
as partitioning requires; ``id`` alone is unique in practice (one identity sequence) and
is what Django uses. Events carry ids, not foreign keys: inserts stay one cheap write,
and a month leaves by dropping its partition, whatever it holds.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Account
from accounts.scoping import AccountScopedManager


class Event(models.Model):
    class Type(models.TextChoices):
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        DEFERRED = "deferred", "Deferred"
        BOUNCE = "bounce", "Bounce"
        COMPLAINT = "complaint", "Complaint"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
        OPEN = "open", "Open"
        CLICK = "click", "Click"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(
        Account, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    campaign_id = models.BigIntegerField(null=True, blank=True)
    delivery_id = models.BigIntegerField(null=True, blank=True)
    link_id = models.BigIntegerField(null=True, blank=True)
    type = models.CharField(max_length=12, choices=Type.choices)
    occurred_at = models.DateTimeField(default=timezone.now)
    machine = models.BooleanField(default=False)
    detail = models.JSONField(default=dict, blank=True)
    # A provider's own id of the event, so the same webhook delivered twice counts once.
    # Null, not "", for events without one: the index covers only those that have one.
    dedup_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    objects = AccountScopedManager()

    class Meta:
        managed = False
        db_table = "stats_event"
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"
