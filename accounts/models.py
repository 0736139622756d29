from __future__ import annotations

import hashlib
import zoneinfo
from typing import Any, ClassVar

import idna
from django.conf import settings
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.roles import Role
from accounts.scoping import AccountScopedManager, AccountScopedQuerySet

TIME_ZONE_CHOICES = [(tz, tz.replace("_", " ")) for tz in sorted(zoneinfo.available_timezones())]


def validate_single_line(value: str) -> None:
    """Names travel in mail headers: a line break or control character would end a
    header and start another."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationError("Line breaks and control characters are not allowed here.")


def normalize_email(email: str) -> str:
    """The one form in which Missive stores, hashes and compares an address: trimmed,
    lower-cased, and its domain in IDNA A-labels, so ``ANA@BÜCHER.DE``, ``ana@bücher.de``
    and ``ana@xn--bcher-kva.de`` are one person and one suppression hash.

    IDNA 2008 with the UTS 46 mapping, which is what browsers and mail servers resolve.
    The local part is lower-cased, as Missive always did (one person, one row), and
    otherwise kept as given: what it means is up to the receiving server.
    Whether the result is a valid address is for the caller to check (``validate_email``);
    a domain that has no A-label form raises ValidationError here, since nothing can be
    stored or hashed for it.
    """
    email = (email or "").strip().lower()
    local, at, domain = email.rpartition("@")
    # An ASCII domain without A-labels is already in its one form; leaving it to the
    # callers' validation keeps the message they give for it (IDNA 2008 would refuse
    # e.g. underscores that Django's validator refuses anyway).
    if not at or (domain.isascii() and "xn--" not in domain):
        return email
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except UnicodeError:
        raise ValidationError(
            f"{email!r} has a domain that is not a valid internet domain name."
        ) from None
    return f"{local}@{ascii_domain}"


def same_address(a: str, b: str) -> bool:
    """Whether two addresses, in whatever form they were written, are one mailbox for
    Missive. An address that cannot be normalized matches nothing."""
    try:
        return bool(a) and normalize_email(a) == normalize_email(b)
    except ValidationError:
        return False


def email_unicode_form(email: str) -> str:
    """A normalized address with its domain in U-labels: the form older versions of
    Missive stored and hashed for addresses typed with a Unicode domain."""
    local, _, domain = email.rpartition("@")
    if "xn--" not in domain:
        return email
    try:
        return f"{local}@{idna.decode(domain)}"
    except UnicodeError:
        return email


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        typed = (username or "").strip().lower()
        try:
            email = normalize_email(typed)
        except ValidationError:
            raise self.model.DoesNotExist from None
        try:
            return self.get(email__iexact=email)
        except self.model.DoesNotExist:
            if typed == email:
                raise
            # allauth keeps the address of a sign-up as typed, Unicode domain included.
            return self.get(email__iexact=typed)


class User(AbstractUser):
    """A person who logs in with an email address. Accounts are reached via Membership."""

    username = None  # type: ignore[assignment]  # no user name: people log in with their email
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]  # keyed by email

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = normalize_email(self.email)

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email


class Account(models.Model):
    """A customer: the company that is the controller of its contacts and campaigns."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=200, validators=[validate_single_line])
    postal_address = models.TextField(
        blank=True, help_text="Shown in the footer of every campaign; required before sending."
    )
    default_from_name = models.CharField(
        "default sender name", max_length=200, blank=True, validators=[validate_single_line]
    )
    default_from_email = models.EmailField("default sender address", blank=True)
    time_zone = models.CharField(max_length=64, default="UTC", choices=TIME_ZONE_CHOICES)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    closed_at = models.DateTimeField(null=True, blank=True)
    # When a closed account's data were deleted (only an anonymized stub stays).
    purged_at = models.DateTimeField(null=True, blank=True)
    require_mfa = models.BooleanField(
        "require two-factor authentication",
        default=False,
        help_text="Members must turn on an authenticator app before they can use the account.",
    )
    # Set by Missive's operators (admin), not by the customer.
    send_rate = models.PositiveIntegerField(
        "sending rate",
        null=True,
        blank=True,
        help_text="Messages per second across all workers; empty: the platform's default.",
    )
    sending_backend = models.CharField(
        max_length=50,
        blank=True,
        help_text="Name of one of the operator's configured sending backends "
        "(MISSIVE_BACKEND_<NAME>); empty: the platform's default.",
    )

    shared_domain_allowed = models.BooleanField(
        "may send from the shared domain",
        default=False,
        help_text="Until it verifies a domain of its own, the account sends from "
        "<its name>@MISSIVE_SHARED_DOMAIN, with its name as sender and its address to "
        "reply to.",
    )

    class Tracking(models.TextChoices):
        PER_RECIPIENT = "per_recipient", "Per recipient (who opened, who clicked)"
        ANONYMOUS = "anonymous", "Anonymous counts only (how many opened and clicked)"
        OFF = "off", "Off (no open pixel, links go straight to their target)"

    tracking = models.CharField(
        "open and click tracking",
        max_length=15,
        choices=Tracking.choices,
        default=Tracking.PER_RECIPIENT,
        help_text="Where recipients' consent to tracking is required (CNIL's "
        "recommendation), choose anonymous counts or off.",
    )
    inactivity_horizon_days = models.PositiveIntegerField(
        "remove inactive contacts after (days)",
        null=True,
        blank=True,
        default=3 * 365,
        help_text="Contacts with no click, confirmation or form submission for this long are "
        "removed, after you are told how many 30 days before. Empty: never.",
    )
    inactivity_notified_at = models.DateTimeField(null=True, blank=True)
    # Set when sending is stopped for the account's own good (a complaint rate over the
    # limit); only an operator lifts it, in the admin.
    sending_suspended_at = models.DateTimeField(null=True, blank=True)
    sending_suspended_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class MembershipQuerySet(AccountScopedQuerySet):
    def active(self) -> MembershipQuerySet:
        return self.filter(account__status=Account.Status.ACTIVE)


class Membership(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="membership_unique")
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.role})"


def hash_token(token: str) -> str:
    """Secrets (API keys, invitation tokens) are stored as SHA-256: high-entropy input
    needs no slow hash, and a database leak reveals nothing usable."""
    return hashlib.sha256(token.encode()).hexdigest()


class Invitation(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    # Why the mail of the current link could not be sent, after its last attempt (set by
    # the worker, cleared when the invitation is sent again); empty: sent or on its way.
    email_error = models.CharField(max_length=500, blank=True)

    objects = AccountScopedManager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                "account",
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True),
                name="invitation_pending_unique",
            )
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.account}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class ApiKey(models.Model):
    """A bearer key for the API, acting for one account with one role.

    Only a hash is stored: the key is shown once, when created.
    """

    PREFIX = "msv_"
    # A key never acts as an owner: closing the account and its security rules need a person.
    ROLE_CHOICES = [c for c in Role.choices if c[0] != Role.OWNER]

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    role = models.CharField(
        max_length=10,
        choices=ROLE_CHOICES,
        default=Role.EDITOR,
    )
    key_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=16, help_text="The key's first characters, to tell it.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = AccountScopedManager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


AUDIT_LABELS = {
    "account.created": "created the account",
    "domain.added": "added a sending domain",
    "domain.verified": "verified a sending domain",
    "domain.failing": "lost the DNS records of a sending domain",
    "domain.restored": "found the DNS records of a sending domain again",
    "domain.key_rotation_started": "made new DKIM keys for a sending domain",
    "domain.key_switched": "switched a sending domain to its new DKIM key",
    "domain.key_removed": "removed a replaced DKIM key",
    "domain.updated": "changed a sending domain's warm-up",
    "domain.deleted": "removed a sending domain",
    "account.updated": "changed the account settings",
    "member.invited": "invited a teammate",
    "member.joined": "joined the account",
    "member.invitation_revoked": "cancelled an invitation",
    "member.invitation_resent": "sent an invitation again",
    "member.role_changed": "changed a member's role",
    "member.removed": "removed a member",
    "member.left": "left the account",
    "api_key.created": "created an API key",
    "api_key.revoked": "revoked an API key",
    "list.created": "created a list",
    "list.filled": "subscribed contacts to a list from a segment",
    "list.deleted": "deleted a list",
    "contacts.deleted": "deleted contacts",
    "contacts.unsubscribed": "unsubscribed contacts",
    "contacts.exported": "exported contacts",
    "contact.exported": "exported one contact's data",
    "contact.erased": "erased a contact",
    "data_request.handled": "used their data rights",
    "suppression.added": "suppressed an address",
    "suppression.removed": "lifted a suppression",
    "contacts.imported": "imported contacts",
    "campaign.created": "created a campaign",
    "campaign.follow_up": "started a follow-up of a campaign",
    "campaign.published": "put a campaign in the public archive",
    "campaign.ab_test_set": "set up an A/B test",
    "campaign.ab_variant_changed": "changed an A/B variant's blocks",
    "campaign.ab_test_removed": "removed an A/B test",
    "campaign.ab_winner": "chose the winner of an A/B test",
    "campaign.unpublished": "took a campaign out of the public archive",
    "campaign.duplicated": "duplicated a campaign",
    "campaign.deleted": "deleted a campaign",
    "campaign.test_sent": "sent a test of a campaign",
    "campaign.updated": "edited a campaign",
    "campaign.started": "started sending a campaign",
    "campaign.scheduled": "scheduled a campaign",
    "campaign.paused": "paused a campaign",
    "campaign.resumed": "resumed a campaign",
    "campaign.cancelled": "cancelled a campaign",
    "campaign.unscheduled": "took a campaign back to draft",
    "campaign.finished": "finished sending a campaign",
    "campaign.failed": "could not send a campaign",
    "account.closed": "closed the account",
    "account.reopened": "reopened the account",
    "account.exported": "downloaded all the account's data",
    "account.sending_suspended": "had sending suspended (complaint rate over the limit)",
    "account.sending_resumed": "lifted the account's sending suspension",
    "retention.inactive_contacts_notice": "was told inactive contacts will be removed",
    "retention.inactive_contacts_removed": "removed inactive contacts (retention)",
    "attribute.created": "created a contact attribute",
    "attribute.renamed": "renamed a contact attribute",
    "attribute.relabelled": "relabelled a contact attribute",
    "attribute.retyped": "changed the type of a contact attribute",
    "attribute.deleted": "deleted a contact attribute",
    "suppressions.added": "suppressed addresses",
    "suppressions.exported": "exported the suppression list",
    "segment.created": "created a segment",
    "segment.updated": "changed a segment",
    "segment.deleted": "deleted a segment",
    "tag.created": "created a tag",
    "tag.renamed": "renamed a tag",
    "tag.deleted": "deleted a tag",
    "contacts.tagged": "tagged contacts",
    "contacts.untagged": "took a tag off contacts",
    "image.uploaded": "uploaded an image",
    "image.deleted": "deleted an image",
    "contacts.attribute_set": "set an attribute of contacts",
    "journey.created": "created a journey",
    "journey.updated": "changed a journey",
    "journey.published": "published a journey's new version",
    "journey.started": "started a journey",
    "journey.paused": "paused a journey",
    "journey.resumed": "resumed a journey",
    "journey.ended": "ended a journey",
    "journey.deleted": "deleted a journey",
    "journey.enrolled": "put contacts in a journey",
    "journey.removed": "took contacts out of a journey",
}


class AuditEntry(models.Model):
    """What was done to an account's data, by whom: imports, exports, erasures, members,
    keys, closure. Written by the service that did it, inside the same transaction."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AccountScopedManager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def label(self) -> str:
        return AUDIT_LABELS.get(self.action, self.action)

    @property
    def detail_items(self) -> list[tuple[str, str]]:
        """The detail as people read it: lists as comma-separated text, not Python's
        ``['from_email', 'subject']``."""
        return [
            (
                key,
                ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value),
            )
            for key, value in (self.detail or {}).items()
        ]


class RetentionRun(models.Model):
    """One run of one retention policy: what it removed and how long it took, for
    Missive's operators (the admin) and the accounts' audit."""

    policy = models.CharField(max_length=50)
    dry_run = models.BooleanField(default=False)
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    removed = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["policy", "-started_at"], name="retention_run_policy")]

    def __str__(self) -> str:
        return f"{self.policy} at {self.started_at:%Y-%m-%d %H:%M}: {self.removed}"


class MailFailure(models.Model):
    """A notice of Missive's own (an invitation, a confirmation link, a customer's notice)
    that its last attempt could not send (accounts/mail.py): the operator's record, in the
    admin. It holds addresses, so it goes after a while (accounts/retention.py)."""

    kind = models.CharField(max_length=100)
    recipients = models.TextField()
    subject = models.CharField(max_length=300)
    error = models.TextField()
    attempts = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} not sent at {self.created_at:%Y-%m-%d %H:%M}"
