from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from allauth.mfa.base.forms import AuthenticateForm, ReauthenticateForm
from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.core.cache import cache
from django.http import HttpRequest

from accounts.models import Account, ApiKey, User, validate_single_line
from accounts.roles import DESCRIPTIONS, RANK, Role, can_grant
from accounts.services import account_create


class SignupForm(forms.Form):
    """Extra fields of allauth's sign-up form: the person's name (kept on the login by
    accounts.adapters) and the company the new account is for."""

    name = forms.CharField(
        label="Your name",
        max_length=150,
        required=False,
        validators=[validate_single_line],
        widget=forms.TextInput(attrs={"placeholder": "Ada Lovelace", "autocomplete": "name"}),
    )
    company = forms.CharField(
        label="Company name",
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "Acme Inc.", "autocomplete": "organization"}),
    )

    field_order = ["name", "company", "email", "password1"]

    def signup(self, request: HttpRequest, user: User) -> None:
        account_create(owner=user, name=self.cleaned_data["company"])


class AccountSettingsForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = [
            "name",
            "postal_address",
            "default_from_name",
            "default_from_email",
            "time_zone",
            "tracking",
            "inactivity_horizon_days",
        ]
        widgets = {
            "postal_address": forms.Textarea(attrs={"rows": 3}),
            "tracking": forms.RadioSelect,
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tracking"].required = False  # a new account starts per recipient

    def clean_tracking(self) -> str:
        return self.cleaned_data.get("tracking") or Account.Tracking.PER_RECIPIENT


class SecuritySettingsForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = ["require_mfa"]


def role_choices(up_to: str, exclude_owner: bool = False) -> list[tuple[str, str]]:
    return [
        (value, f"{label} — {DESCRIPTIONS[value]}")
        for value, label in Role.choices
        if RANK[value] <= RANK[up_to] and not (exclude_owner and value == Role.OWNER)
    ]


class InvitationForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"placeholder": "teammate@company.com"}))
    role = forms.ChoiceField(initial=Role.EDITOR)

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, granter_role: str, **kwargs: Any
    ) -> None:
        super().__init__(data, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = [
            c for c in role_choices(granter_role) if can_grant(granter_role, c[0])
        ]


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        validators=[validate_single_line],
        widget=forms.TextInput(attrs={"placeholder": "e.g. CRM sync"}),
    )
    role = forms.ChoiceField(initial=Role.EDITOR)

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, granter_role: str, **kwargs: Any
    ) -> None:
        super().__init__(data, **kwargs)
        cast(forms.ChoiceField, self.fields["role"]).choices = [
            (value, label) for value, label in ApiKey.ROLE_CHOICES if can_grant(granter_role, value)
        ]


class AcceptInvitationForm(forms.Form):
    """For someone invited who has no Missive login yet."""

    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )

    def __init__(self, data: Mapping[str, Any] | None = None, *, email: str, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.email = email

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        user = User(
            email=self.email,
            first_name=self.data.get("first_name", ""),
            last_name=self.data.get("last_name", ""),
        )
        password_validation.validate_password(password, user)
        return password


class ConfirmForm(forms.Form):
    """An empty form: the POST that confirms a destructive action."""


class _ThrottledCodeMixin:
    """At most MFA_FAILURE_LIMIT wrong two-factor codes (authenticator or recovery) per
    person, then a pause of MFA_LOCKOUT, whatever the code: a stolen password must not
    buy unlimited guesses at six digits."""

    user: User

    def clean_code(self) -> str:
        key = f"mfa-failures:{self.user.pk}"
        minutes = int(settings.MFA_LOCKOUT.total_seconds() // 60)
        if cache.get(key, 0) >= settings.MFA_FAILURE_LIMIT:
            raise forms.ValidationError(
                f"Too many wrong codes. Wait {minutes} minutes before trying again."
            )
        try:
            code = super().clean_code()  # type: ignore[misc]  # allauth's form below
        except forms.ValidationError:
            if cache.add(key, 1, timeout=int(settings.MFA_LOCKOUT.total_seconds())) is False:
                cache.incr(key)
            raise
        cache.delete(key)
        return code


class MFAAuthenticateForm(_ThrottledCodeMixin, AuthenticateForm):
    """The code asked after the password at login."""


class MFAReauthenticateForm(_ThrottledCodeMixin, ReauthenticateForm):
    """The code asked again before a sensitive change (new authenticator, new codes)."""
