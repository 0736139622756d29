"""An image an account uploaded for its emails, and the files kept for it.

Each image is stored as re-encoded files, one per variant: ``original`` (the full size)
and ``600`` and ``1200`` (those widths) when the image is wider. Their public address is
``/i/<key>/<variant>.<ext>``: the key is random and says nothing of the account, and it
never changes, so an email already sent keeps showing its images.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, validate_single_line
from accounts.scoping import AccountScopedManager

ORIGINAL = "original"
# The widths made besides the original, when the image is wider: a single column of an
# email, and the same for screens that draw two pixels per point.
WIDTHS = (600, 1200)
VARIANTS = (ORIGINAL, *(str(width) for width in WIDTHS))


def new_key() -> str:
    return secrets.token_urlsafe(18)


class Image(models.Model):
    class Format(models.TextChoices):
        PNG = "png", "PNG"
        JPEG = "jpeg", "JPEG"
        GIF = "gif", "GIF"
        WEBP = "webp", "WebP"

    # The file name extension and the content type each format is served with.
    EXTENSIONS = {"png": "png", "jpeg": "jpg", "gif": "gif", "webp": "webp"}
    CONTENT_TYPES = {
        "png": "image/png",
        "jpeg": "image/jpeg",
        "gif": "image/gif",
        "webp": "image/webp",
    }

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="images")
    # The uploaded file's name, cleaned to one line: what the library shows.
    name = models.CharField(max_length=200, validators=[validate_single_line])
    format = models.CharField(max_length=4, choices=Format.choices)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # Bytes of every file kept for the image (all its variants): what the quota counts.
    size = models.BigIntegerField()
    # Variant name → {"width", "height", "size"}, for the variants stored.
    variants = models.JSONField(default=dict)
    key = models.CharField(max_length=32, unique=True, default=new_key)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = AccountScopedManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"], name="image_account_newest")]

    def __str__(self) -> str:
        return self.name

    @property
    def extension(self) -> str:
        return self.EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return self.CONTENT_TYPES[self.format]

    def storage_name(self, variant: str) -> str:
        """Where the variant's file lives in the images storage. Sharded by the key's
        first two characters, so no directory holds every file."""
        return f"{self.key[:2]}/{self.key}-{variant}.{self.extension}"

    def storage_names(self) -> list[str]:
        return [self.storage_name(variant) for variant in self.variants]

    def path(self, variant: str = ORIGINAL) -> str:
        return reverse(
            "image_public", kwargs={"key": self.key, "variant": variant, "ext": self.extension}
        )

    def url(self, variant: str = ORIGINAL) -> str:
        """The absolute address to put in an email."""
        return settings.MISSIVE_BASE_URL + self.path(variant)

    def urls(self) -> dict[str, str | None]:
        """Every variant's absolute address; None for a width not made (the image is
        not wider)."""
        return {v: (self.url(v) if v in self.variants else None) for v in VARIANTS}

    @property
    def width_urls(self) -> list[tuple[int, str]]:
        """(width, absolute address) of the narrower copies made."""
        return [(width, self.url(str(width))) for width in WIDTHS if str(width) in self.variants]

    @property
    def thumbnail_path(self) -> str:
        return self.path(str(WIDTHS[0]) if str(WIDTHS[0]) in self.variants else ORIGINAL)
