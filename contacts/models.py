"""The customer's people: contacts, lists, subscriptions with their consent proof, and
the suppression lists that say who must never be mailed."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Account, email_unicode_form, normalize_email, validate_single_line
from accounts.scoping import AccountScopedManager, AccountScopedQuerySet

# Foreign keys whose column already leads a composite index or unique constraint are
# declared with db_index=False: every index is written again for each of the million
# rows an import adds.


def email_sha256(email: str) -> str:
    """How an address is kept on a suppression list: hashed, so the list survives the
    erasure of the person without keeping their address. Always the hash of the
    normalized form (domain in A-labels), which is also the form contacts are stored in,
    so SQL that hashes ``contacts_contact.email`` finds the same entries.

    An address whose domain has no A-label form (``ana@i❤.ws``, which older versions
    accepted and migration 0005 left as it was) is hashed as those versions hashed it,
    trimmed and lower-cased: it must still be possible to erase or suppress it."""
    return hashlib.sha256(_hashed_form(email).encode()).hexdigest()


def _hashed_form(email: str) -> str:
    try:
        return normalize_email(email)
    except ValidationError:
        return (email or "").strip().lower()


def email_sha256_forms(email: str) -> list[str]:
    """The hashes a suppression of ``email`` may be stored under: the normalized form's,
    and for a Unicode domain also the hash of its U-label form, which older versions of
    Missive stored. Entries known only by such a hash cannot be rewritten (the address is
    gone), so lookups by address check both, in one ``email_sha256__in`` query."""
    normalized = _hashed_form(email)
    forms = [normalized, email_unicode_form(normalized)]
    return list(dict.fromkeys(hashlib.sha256(form.encode()).hexdigest() for form in forms))


def email_unicode_sha256(normalized: str) -> str | None:
    """For an address already normalized, the other hash of ``email_sha256_forms``: that
    of its U-label form, or None when it has none (no ``xn--`` label in its domain). For
    the SQL that hashes stored addresses, which can compute only the first."""
    unicode_form = email_unicode_form(normalized)
    if unicode_form == normalized:
        return None
    return hashlib.sha256(unicode_form.encode()).hexdigest()


class ContactList(models.Model):
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="contact_lists", db_index=False
    )
    name = models.CharField(max_length=200, validators=[validate_single_line])
    description = models.TextField(blank=True)
    double_opt_in = models.BooleanField(
        default=True,
        help_text="People who subscribe through a form confirm their address by email first.",
    )
    form_consent_text = models.TextField(
        "consent wording",
        blank=True,
        default="I agree to receive this newsletter by email. I can unsubscribe at any time.",
        help_text="Shown beside the subscribe form's checkbox and kept as consent proof.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = AccountScopedManager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("account", Lower("name"), name="contactlist_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
# Names every contact already has, or that merge tags already use ({{ full_name }}).
RESERVED_ATTRIBUTE_NAMES = {
    "email",
    "first_name",
    "last_name",
    "full_name",
    "attributes",
    "unsubscribe_url",
}


def validate_attribute_name(value: str) -> None:
    if not ATTRIBUTE_NAME.match(value):
        raise ValidationError(
            "Use lower-case letters, digits and underscores, starting with a letter "
            "(for example city or loyalty_points)."
        )
    if value in RESERVED_ATTRIBUTE_NAMES:
        raise ValidationError(f"{value!r} is a built-in field; choose another name.")


class AttributeDefinition(models.Model):
    """A custom field the account declares, so imports validate it and merge tags know
    it: ``{{ attributes.city }}``."""

    class Type(models.TextChoices):
        TEXT = "text", "Text"
        NUMBER = "number", "Number"
        DATE = "date", "Date (YYYY-MM-DD)"
        BOOLEAN = "boolean", "Yes/no"

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="attributes", db_index=False
    )
    name = models.CharField(max_length=50, validators=[validate_attribute_name])
    label = models.CharField(max_length=100, blank=True, validators=[validate_single_line])
    type = models.CharField(max_length=10, choices=Type.choices, default=Type.TEXT)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AccountScopedManager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="attribute_name_unique")
        ]

    def __str__(self) -> str:
        return self.label or self.name


class Contact(models.Model):
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="contacts", db_index=False
    )
    # Stored normalized (trimmed, lower-case, domain in A-labels: ``normalize_email``):
    # one person, one row per account.
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Moves on human activity only (clicks, confirmations, form submissions).
    last_activity_at = models.DateTimeField(null=True, blank=True)
    # A person's (not a machine's) newest open and click of a tracked message, stamped by
    # the one door that records engagement (campaigns.engagement), so that segments find
    # "opened in the last 90 days" in this row instead of in the event store.
    last_opened_at = models.DateTimeField(null=True, blank=True)
    last_clicked_at = models.DateTimeField(null=True, blank=True)
    # The person objected to open and click tracking (GDPR Art. 21), from their data
    # request page; the pixel and click endpoints read it when they are fetched.
    tracking_objected_at = models.DateTimeField(null=True, blank=True)
    tags: models.ManyToManyField[Tag, ContactTag] = models.ManyToManyField(
        "Tag", through="ContactTag", related_name="contacts", blank=True
    )

    objects = AccountScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint("account", Lower("email"), name="contact_email_unique")
        ]
        indexes = [
            # keyset paging by creation, per account (paging by email uses the unique index)
            models.Index(fields=["account", "created_at", "id"], name="contact_account_created"),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = normalize_email(self.email)
        super().save(*args, **kwargs)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


TAG_NAME_MAX = 100


class Tag(models.Model):
    """A label the account puts on contacts (``vip``, ``webinar-2026``), to find them
    again and to target them. Names are unique per account, whatever their case."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="tags", db_index=False
    )
    name = models.CharField(max_length=TAG_NAME_MAX, validators=[validate_single_line])
    created_at = models.DateTimeField(default=timezone.now)

    objects = AccountScopedManager()

    class Meta:
        ordering = [Lower("name")]
        constraints = [models.UniqueConstraint("account", Lower("name"), name="tag_name_unique")]

    def __str__(self) -> str:
        return self.name


class ContactTagQuerySet(AccountScopedQuerySet):
    account_path = "tag__account"


class ContactTag(models.Model):
    """A tag on a contact. The unique (tag, contact) index is what "has the tag" reads;
    the contact's own index, what "the tags of a contact" reads."""

    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = ContactTagQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tag", "contact"], name="contacttag_unique")]

    def __str__(self) -> str:
        return f"{self.tag_id} on {self.contact_id}"


class SubscriptionQuerySet(AccountScopedQuerySet):
    account_path = "contact_list__account"


class Subscription(models.Model):
    """A contact on a list, with the proof of consent a controller must be able to show
    (GDPR Art. 7; French CPCE L.34-5)."""

    class Status(models.TextChoices):
        UNCONFIRMED = "unconfirmed", "Unconfirmed"
        SUBSCRIBED = "subscribed", "Subscribed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"

    class Source(models.TextChoices):
        IMPORT = "import", "Import"
        FORM = "form", "Subscribe form"
        API = "api", "API"
        MANUAL = "manual", "Added by hand"

    class LegalBasis(models.TextChoices):
        CONSENT = "consent", "Consent"
        EXISTING_CUSTOMER = "existing_customer", "Existing customer (similar products)"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="subscriptions")
    contact_list = models.ForeignKey(
        ContactList, on_delete=models.CASCADE, related_name="subscriptions", db_index=False
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SUBSCRIBED)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    legal_basis = models.CharField(
        max_length=20, choices=LegalBasis.choices, default=LegalBasis.CONSENT
    )
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_user_agent = models.CharField(max_length=500, blank=True)
    consent_text = models.TextField(blank=True, help_text="The wording the person agreed to.")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        constraints = [
            # Carries the status too, so counts per status and the status filter of a
            # list read this index alone; one index fewer to maintain on every import.
            models.UniqueConstraint(
                fields=["contact_list", "contact"], name="subscription_unique", include=["status"]
            )
        ]
        # (the contact's own foreign-key index serves "the subscriptions of a contact")

    def __str__(self) -> str:
        return f"{self.contact_id} on {self.contact_list_id}: {self.status}"


class SuppressionQuerySet(AccountScopedQuerySet):
    def platform(self) -> SuppressionQuerySet:
        """The platform-wide "do not contact" list, kept by Missive's operators."""
        return self.filter(account__isnull=True)

    def applying_to(self, account: Account) -> SuppressionQuerySet:
        """Every entry that stops mail from ``account``: its own and the platform's."""
        return self.filter(models.Q(account=account) | models.Q(account__isnull=True))


class Suppression(models.Model):
    class Reason(models.TextChoices):
        UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint", "Spam complaint"
        ERASURE = "erasure", "Erased at the person's request"
        DO_NOT_CONTACT = "do_not_contact", "Asked never to be contacted"
        MANUAL = "manual", "Added by hand"

    # Null: the platform-wide "do not contact" list.
    account = models.ForeignKey(
        Account,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="suppressions",
        db_index=False,
    )
    email_sha256 = models.CharField(max_length=64)
    reason = models.CharField(max_length=20, choices=Reason.choices, default=Reason.MANUAL)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "email_sha256"],
                name="suppression_unique",
                nulls_distinct=False,
            )
        ]
        indexes = [models.Index(fields=["email_sha256"], name="suppression_hash")]

    def __str__(self) -> str:
        scope = "platform" if self.account_id is None else f"account {self.account_id}"
        return f"{self.email_sha256[:12]}… ({scope}, {self.reason})"


class ImportJob(models.Model):
    """One CSV file brought into a list: its settings, its progress and its outcome."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Waiting for column mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED)

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="imports")
    contact_list = models.ForeignKey(ContactList, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UPLOADED)
    file_path = models.CharField(max_length=500, blank=True)
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)
    encoding = models.CharField(max_length=20, default="utf-8")
    delimiter = models.CharField(max_length=1, default=",")
    columns = models.JSONField(default=list, help_text="The file's header row.")
    mapping = models.JSONField(
        default=dict, help_text="Column index → email, first_name, last_name, attribute:NAME."
    )
    legal_basis = models.CharField(
        max_length=20,
        choices=Subscription.LegalBasis.choices,
        default=Subscription.LegalBasis.CONSENT,
    )
    consent_text = models.TextField(blank=True, help_text="How the consent was obtained.")
    update_existing = models.BooleanField(
        default=False, help_text="Overwrite names and attributes of contacts already stored."
    )
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    created_count = models.BigIntegerField(default=0)
    updated_count = models.BigIntegerField(default=0)
    subscribed_count = models.BigIntegerField(default=0)
    already_subscribed_count = models.BigIntegerField(default=0)
    suppressed_count = models.BigIntegerField(default=0)
    unsubscribed_count = models.BigIntegerField(default=0)
    duplicate_count = models.BigIntegerField(default=0)
    invalid_count = models.BigIntegerField(default=0)
    warning_count = models.BigIntegerField(
        default=0, help_text="Values left out of rows that were imported (see the rejects)."
    )
    # Attributes this import declared for its mapping: removed again if it saves nothing.
    declared_attributes = models.JSONField(default=list, blank=True)
    # When every row was rejected, the same file waiting for a better mapping.
    retry_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = AccountScopedManager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import of {self.original_name} into {self.contact_list_id}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration(self) -> str:
        if not (self.started_at and self.finished_at):
            return ""
        seconds = (self.finished_at - self.started_at).total_seconds()
        if seconds < 60:
            return f"{seconds:.1f} s"
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"


class ImportRejectQuerySet(AccountScopedQuerySet):
    account_path = "job__account"


class ImportReject(models.Model):
    """A row the import refused, with where and why, for the customer to fix."""

    job = models.ForeignKey(
        ImportJob, on_delete=models.CASCADE, related_name="rejects", db_index=False
    )
    row_number = models.BigIntegerField(help_text="Line in the file, the header being line 1.")
    column = models.CharField(max_length=255, blank=True)
    value = models.TextField(blank=True)
    reason = models.CharField(max_length=255)
    # The row was imported without this value (a bad optional field), not refused.
    warning = models.BooleanField(default=False)

    objects = ImportRejectQuerySet.as_manager()

    class Meta:
        ordering = ["row_number"]
        indexes = [models.Index(fields=["job", "row_number"], name="importreject_job_row")]

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.reason}"


class DataRequest(models.Model):
    """A person used their data rights on this account's data, through the verified link
    of the public "your data" page: the customer's record of what was asked, what was
    done and when. It keeps the address's SHA-256 only, so it outlives an erasure
    without keeping the address."""

    class Kind(models.TextChoices):
        ACCESS = "access", "Access"
        EXPORT = "export", "Export"
        CORRECTION = "correction", "Correction"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe from everything"
        OBJECTION = "objection", "Objection to tracking"
        ERASURE = "erasure", "Erasure"

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="data_requests", db_index=False
    )
    # While the contact exists, the log links to it; an erasure leaves the hash alone.
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    email_sha256 = models.CharField(max_length=64)
    outcome = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AccountScopedManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="datarequest_account"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.email_sha256[:12]}… ({self.outcome})"


class PublicLink(models.Model):
    """A link Missive mailed to a person who has no login: "your data", the confirmation
    of an erasure, "do not contact". The URL carries only a random token; this row keeps
    its SHA-256 and what it stands for (the address it was mailed to), so the link itself
    reveals nothing when forwarded, logged or scanned, and a link can be used once. Rows
    go soon after they expire (contacts/retention.py)."""

    class Purpose(models.TextChoices):
        YOUR_DATA = "your_data", "Your data"
        ERASE = "erase", "Confirm an erasure"
        DO_NOT_CONTACT = "do_not_contact", "Do not contact"

    purpose = models.CharField(max_length=20, choices=Purpose.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    email = models.EmailField(max_length=254)
    # An erasure's confirmation erases at one account only.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    # Set when a single-use link is used; it opens nothing after.
    used_at = models.DateTimeField(null=True, blank=True)

    objects = AccountScopedManager()

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="publiclink_expires")]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} link, until {self.expires_at:%Y-%m-%d %H:%M}"
