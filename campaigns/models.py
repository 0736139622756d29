"""Campaigns and the templates they start from."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Account, validate_single_line
from accounts.scoping import AccountScopedManager, AccountScopedQuerySet
from audiences.models import Segment
from campaigns.states import State
from contacts.models import ContactList


class Editor(models.TextChoices):
    """How a body is written: as HTML, or as blocks (``campaigns.blocks``) that make the
    HTML each time they are saved."""

    HTML = "html", "HTML code"
    BLOCKS = "blocks", "Blocks"


class Template(models.Model):
    """A saved starting point: the customer's own, copied into new campaigns."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="templates", db_index=False
    )
    name = models.CharField(max_length=200, validators=[validate_single_line])
    subject = models.CharField(max_length=300, blank=True, validators=[validate_single_line])
    preheader = models.CharField(max_length=300, blank=True, validators=[validate_single_line])
    html = models.TextField(blank=True)
    editor = models.CharField(max_length=10, choices=Editor.choices, default=Editor.HTML)
    blocks = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = AccountScopedManager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="template_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    class Kind(models.TextChoices):
        CAMPAIGN = "campaign", "Campaign"
        # The message of a journey's email step: sending while its journey is live, to
        # each contact who reaches the step (journeys), never finished by the sender.
        JOURNEY = "journey", "Journey email"

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="campaigns", db_index=False
    )
    name = models.CharField(max_length=200, validators=[validate_single_line])
    subject = models.CharField(max_length=300, blank=True, validators=[validate_single_line])
    preheader = models.CharField(
        max_length=300,
        blank=True,
        validators=[validate_single_line],
        help_text="The line mail apps show after the subject.",
    )
    from_name = models.CharField(
        "sender name", max_length=200, blank=True, validators=[validate_single_line]
    )
    from_email = models.EmailField("sender address", blank=True)
    reply_to = models.EmailField("reply-to address", blank=True)
    lists = models.ManyToManyField(ContactList, related_name="campaigns", blank=True)
    # Narrows the audience to the contacts of the lists who match it (every list of the
    # account when no list is chosen). A segment that an unsent campaign uses cannot be
    # deleted (audiences.services.segment_delete); a sent one keeps its ledger.
    segment = models.ForeignKey(
        Segment, on_delete=models.SET_NULL, null=True, blank=True, related_name="campaigns"
    )
    html = models.TextField("HTML body", blank=True)
    editor = models.CharField(max_length=10, choices=Editor.choices, default=Editor.HTML)
    # The blocks the HTML is made from, when the editor is blocks (campaigns.blocks).
    blocks = models.JSONField(null=True, blank=True)
    text = models.TextField("text part", blank=True)
    text_is_custom = models.BooleanField(
        default=False, help_text="Keep this text part instead of deriving it from the HTML."
    )
    status = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    kind = models.CharField(
        max_length=10, choices=Kind.choices, default=Kind.CAMPAIGN, db_default=Kind.CAMPAIGN
    )
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Shown, once sent, in the account's public archive (campaigns.archive): without any
    # recipient's data and without tracking.
    public_archive = models.BooleanField(default=False)
    track_opens = models.BooleanField(default=True)
    track_clicks = models.BooleanField(default=True)
    # Filled by the send: the audience snapshot, then one update per batch.
    snapshot_at = models.DateTimeField(null=True, blank=True)
    recipients_count = models.PositiveIntegerField(default=0)
    excluded_count = models.PositiveIntegerField(
        default=0, help_text="Subscribed but suppressed when the audience was taken."
    )
    sent_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(
        default=0, help_text="Unsubscribed or suppressed after the audience was taken."
    )
    failure_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = AccountScopedManager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="campaign_account_created"),
            models.Index(fields=["status", "scheduled_at"], name="campaign_due"),
        ]

    def __str__(self) -> str:
        return self.name


class LinkQuerySet(AccountScopedQuerySet):
    account_path = "campaign__account"


class Link(models.Model):
    """A link of a campaign's body. Click redirects find their target here, by position,
    never in the URL they were given (no open redirect)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="links")
    position = models.PositiveIntegerField()
    url = models.URLField(max_length=2000)

    objects = LinkQuerySet.as_manager()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "position"], name="link_position_unique")
        ]

    def __str__(self) -> str:
        return self.url


class DeliveryQuerySet(AccountScopedQuerySet):
    account_path = "campaign__account"


class Delivery(models.Model):
    """One recipient of one campaign: the ledger that makes sending idempotent. A row is
    created by the audience snapshot, claimed by one worker at a time and moved to a final
    state once; a claim that outlives its lease goes back to the queue."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"  # unsubscribed, suppressed or erased before its turn
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    # Null once the person is erased: the delivery still counts, it no longer says whom.
    contact = models.ForeignKey(
        "contacts.Contact",
        on_delete=models.SET_NULL,
        null=True,
        related_name="deliveries",
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_default=Status.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    esp_message_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    error = models.TextField(blank=True, default="", db_default="")
    first_opened_at = models.DateTimeField(null=True, blank=True)
    first_clicked_at = models.DateTimeField(null=True, blank=True)
    # Of an A/B test (campaigns.ab): the variant (0 for A…) a recipient of the test
    # group gets; HELD for the rest, who get the winner once it is chosen. Null without
    # a test.
    variant = models.SmallIntegerField(null=True, blank=True)
    # Of a journey's email step: the enrollment it was written for (an id, not a key:
    # journeys sit above campaigns), and the properties of the event that started it,
    # which its merge tags read as {{ event.NAME }}.
    enrollment_id = models.BigIntegerField(null=True, blank=True)
    context = models.JSONField(null=True, blank=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        constraints = [
            # A campaign reaches a person once; a journey's email once per enrollment.
            models.UniqueConstraint(
                fields=["campaign", "contact"],
                name="delivery_unique",
                condition=models.Q(enrollment_id__isnull=True),
            ),
            models.UniqueConstraint(
                fields=["campaign", "enrollment_id"],
                name="delivery_enrollment_unique",
                condition=models.Q(enrollment_id__isnull=False),
            ),
        ]
        indexes = [
            # What workers claim, in order, and nothing else.
            models.Index(
                fields=["campaign", "id"],
                name="delivery_queued",
                condition=models.Q(status="queued"),
            ),
            # Provider feedback (webhooks, bounce reports) finds its delivery by this id.
            models.Index(
                fields=["esp_message_id"],
                name="delivery_esp_message_id",
                condition=~models.Q(esp_message_id=""),
            ),
            # The campaign page's newest failures.
            models.Index(
                fields=["campaign", "-id"],
                name="delivery_failed",
                condition=models.Q(status="failed"),
            ),
            # What the sweeper looks at: claims in flight.
            models.Index(
                fields=["claimed_at"],
                name="delivery_in_flight",
                condition=models.Q(status="sending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.contact_id}: {self.status}"


class DeliveryBodyQuerySet(AccountScopedQuerySet):
    account_path = "delivery__campaign__account"


class DeliveryBody(models.Model):
    """The message as this recipient received it, for "view in browser"; kept 6 days."""

    delivery = models.OneToOneField(
        Delivery, on_delete=models.CASCADE, primary_key=True, related_name="body"
    )
    subject = models.TextField()
    html = models.TextField()
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    objects = DeliveryBodyQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="delivery_body_created")]

    def __str__(self) -> str:
        return self.subject


class ABTestQuerySet(AccountScopedQuerySet):
    account_path = "campaign__account"


class ABTest(models.Model):
    """A campaign's A/B test: two to four variants of its subject, sender name, preheader
    or content, tried on a random share of the audience; the rest gets the winner."""

    class Metric(models.TextChoices):
        OPENS = "opens", "Opens (people only)"
        CLICKS = "clicks", "Clicks (people only)"
        HAND = "hand", "By hand"

    campaign = models.OneToOneField(
        Campaign, on_delete=models.CASCADE, primary_key=True, related_name="ab_test"
    )
    # B, C, D as {"subject", "from_name", "preheader", "html"}: blank is A's (the
    # campaign's own).
    variants = models.JSONField(default=list)
    share = models.PositiveSmallIntegerField(
        default=20, help_text="Percent of the audience the variants are tried on."
    )
    metric = models.CharField(max_length=6, choices=Metric.choices, default=Metric.OPENS)
    wait_hours = models.PositiveSmallIntegerField(default=4)
    # Set when the audience is taken: when the winner is chosen by the metric.
    decide_at = models.DateTimeField(null=True, blank=True)
    winner = models.SmallIntegerField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=10, blank=True)

    objects = ABTestQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["decide_at"], name="abtest_due")]

    def __str__(self) -> str:
        return f"A/B test of {self.campaign_id}"

    @property
    def count(self) -> int:
        return 1 + len(self.variants)
