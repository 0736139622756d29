from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.forms import BaseForm
from django.http import HttpRequest
from django.urls import reverse

from accounts.models import User


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return settings.MISSIVE_SIGNUP_OPEN

    def save_user(
        self, request: HttpRequest, user: User, form: BaseForm, commit: bool = True
    ) -> User:
        """The name given at sign-up, whole, as the login's name ("Welcome, Ada")."""
        user.first_name = " ".join(str(form.cleaned_data.get("name") or "").split())[:150]
        return super().save_user(request, user, form, commit)

    def send_account_already_exists_mail(self, email: str) -> None:
        """Someone signed up with an address that has a login: its owner hears of it,
        with the way back in (the person signing up sees what a new address sees)."""
        ctx = {
            "email": email,
            "login_url": settings.MISSIVE_BASE_URL + reverse("account_login"),
            "password_reset_url": settings.MISSIVE_BASE_URL + reverse("account_reset_password"),
        }
        self.send_mail("account/email/account_already_exists", email, ctx)
