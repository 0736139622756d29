"""The operators' view of the suppression lists, above all the platform-wide "do not
contact" list (account empty), which no customer can see or change; and, read-only, the
log of recipients' data requests.

Addresses are typed and searched in clear, and only ever stored or compared as their
SHA-256. Removals go through the service, so an account's activity log records them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.http import logged_in_user
from contacts import services, suppressing
from contacts.forms_suppressions import PlatformSuppressionForm
from contacts.models import DataRequest, Suppression, email_sha256_forms

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups

HEX = re.compile(r"^[0-9a-f]{6,64}$")


class ScopeFilter(admin.SimpleListFilter):
    title = "list"
    parameter_name = "scope"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("platform", "Platform-wide (do not contact)"), ("account", "An account's")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "platform":
            return queryset.filter(account__isnull=True)
        if self.value() == "account":
            return queryset.filter(account__isnull=False)
        return queryset


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["hash_prefix", "scope", "reason", "note", "created_by", "created_at"]
    list_filter = [ScopeFilter, "reason"]
    list_select_related = ["account", "created_by"]
    search_fields = ["email_sha256"]  # replaced by get_search_results; enables the box
    search_help_text = "An exact email address, or the start of a SHA-256 hash."
    ordering = ["-created_at", "-id"]
    readonly_fields = ["email_sha256", "account", "created_by", "created_at"]
    fields = ["email_sha256", "account", "reason", "note", "created_by", "created_at"]
    show_full_result_count = False

    @admin.display(description="address (SHA-256)", ordering="email_sha256")
    def hash_prefix(self, obj: Suppression) -> str:
        return f"{obj.email_sha256[:12]}…"

    @admin.display(description="list", ordering="account__name")
    def scope(self, obj: Suppression) -> str:
        return obj.account.name if obj.account is not None else "Platform-wide"

    def get_form(
        self,
        request: HttpRequest,
        obj: Suppression | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[forms.ModelForm[Suppression]]:
        if obj is None:
            kwargs["form"] = PlatformSuppressionForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Suppression | None = None) -> _FieldGroups:
        if obj is None:
            return ["email", "reason", "note"]
        return super().get_fields(request, obj)

    def get_readonly_fields(
        self, request: HttpRequest, obj: Suppression | None = None
    ) -> list[str] | tuple[str, ...]:
        return self.readonly_fields if obj is not None else []

    def save_model(
        self,
        request: HttpRequest,
        obj: Suppression,
        form: forms.ModelForm[Suppression],
        change: bool,
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created = suppressing.platform_suppression_add(
            email=form.cleaned_data["email"],
            actor=logged_in_user(request),
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data["note"],
        )
        # The admin goes on with ``obj`` (its log entry, its message): make it the row.
        obj.__dict__.update(created.__dict__)

    def delete_model(self, request: HttpRequest, obj: Suppression) -> None:
        services.suppression_remove(suppression=obj, actor=logged_in_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for suppression in queryset.select_related("account"):
            services.suppression_remove(suppression=suppression, actor=logged_in_user(request))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip().lower()
        if not term:
            return queryset, False
        if "@" in term:
            try:
                hashes = email_sha256_forms(term)
            except ValidationError:
                return queryset.none(), False
            return queryset.filter(email_sha256__in=hashes), False
        if HEX.match(term):
            return queryset.filter(email_sha256__startswith=term), False
        return queryset.none(), False


@admin.register(DataRequest)
class DataRequestAdmin(admin.ModelAdmin):
    """Read-only: the record of what people asked and what Missive did, for operators
    answering a customer's or a regulator's question."""

    list_display = ["created_at", "account", "kind", "hash_prefix", "outcome"]
    list_filter = ["kind"]
    list_select_related = ["account"]
    search_fields = ["email_sha256"]  # replaced by get_search_results
    search_help_text = "An exact email address, or the start of a SHA-256 hash."
    ordering = ["-created_at", "-id"]
    show_full_result_count = False

    @admin.display(description="address (SHA-256)", ordering="email_sha256")
    def hash_prefix(self, obj: DataRequest) -> str:
        return f"{obj.email_sha256[:12]}…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: DataRequest | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: DataRequest | None = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip().lower()
        if not term:
            return queryset, False
        if "@" in term:
            try:
                hashes = email_sha256_forms(term)
            except ValidationError:
                return queryset.none(), False
            return queryset.filter(email_sha256__in=hashes), False
        if HEX.match(term):
            return queryset.filter(email_sha256__startswith=term), False
        return queryset.none(), False
