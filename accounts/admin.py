from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.http import logged_in_user
from accounts.models import (
    Account,
    ApiKey,
    AuditEntry,
    Invitation,
    MailFailure,
    Membership,
    RetentionRun,
    User,
)
from accounts.services import sending_suspension_lift


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeFormEmail(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    # The admin's own password forms run settings.AUTH_PASSWORD_VALIDATORS, so the
    # product's password rule holds here too.
    add_form = UserCreationForm
    form = UserChangeFormEmail
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "status",
        "created_at",
        "require_mfa",
        "send_rate",
        "sending_backend",
        "sending_suspended_at",
    ]
    list_filter = ["status", ("sending_suspended_at", admin.EmptyFieldListFilter)]
    search_fields = ["name"]
    inlines = [MembershipInline]
    actions = ["lift_sending_suspension"]

    @admin.action(description="Lift the sending suspension of the selected accounts")
    def lift_sending_suspension(self, request: HttpRequest, queryset: QuerySet[Account]) -> None:
        actor = logged_in_user(request)
        lifted = sum(
            sending_suspension_lift(account=account, actor=actor)
            for account in queryset.exclude(sending_suspended_at=None)
        )
        self.message_user(request, f"Sending suspension lifted for {lifted} account(s).")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "hint", "role", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["key_hash", "hint"]
    search_fields = ["name", "account__name"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "account", "role", "created_at", "expires_at", "accepted_at"]
    readonly_fields = ["token_hash", "email_error"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "account", "actor_label", "action"]
    list_filter = ["action"]
    search_fields = ["account__name", "actor_label"]

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False


@admin.register(RetentionRun)
class RetentionRunAdmin(admin.ModelAdmin):
    """What each retention policy removed, and when (read-only)."""

    list_display = ["started_at", "policy", "dry_run", "removed", "duration_ms", "error"]
    list_filter = ["policy", "dry_run"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RetentionRun | None = None) -> bool:
        return False


@admin.register(MailFailure)
class MailFailureAdmin(admin.ModelAdmin):
    """Missive's own mail that could not be sent after its last attempt (read-only): what
    the operator checks when someone says a notice never came."""

    list_display = ["created_at", "kind", "recipients", "subject", "attempts", "error"]
    list_filter = ["kind"]
    search_fields = ["recipients", "subject"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: MailFailure | None = None) -> bool:
        return False
