"""Campaigns and the templates they start from."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Account, validate_single_line
from accounts.scoping import AccountScopedManager, AccountScopedQuerySet
from campaigns.states import State
from contacts.models import ContactList


class Template(models.Model):
    """A saved starting point: the customer's own, copied into new campaigns."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="templates", db_index=False
    )
    name = models.CharField(max_length=200, validators=[validate_single_line])
    subject = models.CharField(max_length=300, blank=True, validators=[validate_single_line])
    preheader = models.CharField(max_length=300, blank=True, validators=[validate_single_line])
    html = models.TextField(blank=True)
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
    html = models.TextField("HTML body", blank=True)
    text = models.TextField("text part", blank=True)
    text_is_custom = models.BooleanField(
        default=False, help_text="Keep this text part instead of deriving it from the HTML."
    )
    status = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    track_opens = models.BooleanField(default=True)
    track_clicks = models.BooleanField(default=True)
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
