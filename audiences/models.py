"""Saved segments: named conditions over an account's contacts, evaluated when used."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import Account, validate_single_line
from accounts.scoping import AccountScopedManager


def empty_definition() -> dict[str, object]:
    return {"match": "all", "conditions": []}


class Segment(models.Model):
    """Who matches is never stored: ``definition`` (audiences/conditions.py says its
    form) is compiled to SQL each time the segment is counted, listed or sent to."""

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="segments", db_index=False
    )
    name = models.CharField(max_length=200, validators=[validate_single_line])
    description = models.TextField(blank=True)
    definition = models.JSONField(default=empty_definition)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = AccountScopedManager()

    class Meta:
        ordering = [Lower("name")]
        constraints = [
            models.UniqueConstraint("account", Lower("name"), name="segment_name_unique")
        ]

    def __str__(self) -> str:
        return self.name
