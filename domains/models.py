"""A sending domain and its DKIM keys.

An account adds a domain; Missive makes a DKIM key for it and shows the records to
publish. Publishing the key is the proof: the domain becomes *verified* when its DKIM
record is found with the key Missive made for this account, and from then on no other
account can verify it (a partial unique index). A domain whose records disappear is
*failing*: its messages are held until the records are back.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from accounts.scoping import AccountScopedManager, AccountScopedQuerySet


class SendingDomain(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for its DNS records"
        VERIFIED = "verified", "Verified"
        FAILING = "failing", "Records missing since verified"

    # Empty for the platform's shared domain, which operators set up (MISSIVE_SHARED_DOMAIN).
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        related_name="sending_domains",
        null=True,
        blank=True,
    )
    # IDNA A-labels, lower-cased: the form DNS knows.
    name = models.CharField(max_length=253)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    verified_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    # When the records were first found missing after verification; the owners are told.
    failing_since = models.DateTimeField(null=True, blank=True)
    # The last check, record by record (domains.checks.DomainReport.as_dict()).
    report = models.JSONField(default=dict, blank=True)
    # Warm-up: daily caps that grow from the first day of sending.
    warmup = models.BooleanField(
        "follow a warm-up schedule",
        default=False,
        help_text="Cap the messages sent each day from this domain while receivers learn it.",
    )
    warmup_started_on = models.DateField(null=True, blank=True)
    warmup_schedule = models.JSONField(
        default=list,
        blank=True,
        help_text="Daily caps, first day first; the last one holds until the warm-up ends.",
    )

    objects = AccountScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="domain_once_per_account"),
            # One owner at a time: a name is verified (or failing) in one account only.
            models.UniqueConstraint(
                fields=["name"],
                condition=~Q(status="pending"),
                name="domain_one_verified_owner",
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_verified(self) -> bool:
        return self.status != self.Status.PENDING and self.verified_at is not None


class DkimKeyQuerySet(AccountScopedQuerySet["DkimKey"]):
    account_path = "domain__account"


class DkimKey(models.Model):
    class Algorithm(models.TextChoices):
        RSA = "rsa-sha256", "RSA-2048"
        ED25519 = "ed25519-sha256", "Ed25519"

    class State(models.TextChoices):
        # Shown, not yet found in DNS: not used to sign.
        PENDING = "pending", "Waiting to be published"
        # Found in DNS, signing.
        ACTIVE = "active", "Signing"
        # Replaced by a newer key; still published for messages in flight.
        RETIRING = "retiring", "Replaced, kept for a grace period"

    domain = models.ForeignKey(SendingDomain, on_delete=models.CASCADE, related_name="keys")
    selector = models.CharField(max_length=63)
    algorithm = models.CharField(max_length=20, choices=Algorithm.choices)
    # Encrypted with the key from MISSIVE_DKIM_KEY_SECRET (domains.dkim); never shown.
    private_key = models.TextField(editable=False)
    # The p= value of the DNS record (base64).
    public_key = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retire_after = models.DateTimeField(null=True, blank=True)

    objects = DkimKeyQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["domain", "selector"], name="dkim_selector_unique")
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.name}"

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain.name}"

    @property
    def record_value(self) -> str:
        kind = "ed25519" if self.algorithm == self.Algorithm.ED25519 else "rsa"
        return f"v=DKIM1; k={kind}; p={self.public_key}"


class MailboxDomain(models.Model):
    """A domain of contacts' addresses whose name does not say who keeps its mailboxes,
    and the provider its mail exchangers say (``domains.providers``). The same for every
    account: it names a service, not a person."""

    name = models.CharField(primary_key=True, max_length=253)
    provider = models.CharField(max_length=20)
    checked_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["provider"], name="mailboxdomain_provider")]

    def __str__(self) -> str:
        return f"{self.name}: {self.provider}"
