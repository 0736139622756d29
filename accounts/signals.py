from __future__ import annotations

from allauth.account.signals import password_reset
from axes.utils import reset
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import User


@receiver(password_reset)
def forget_failed_logins(request: HttpRequest, user: User, **kwargs: object) -> None:
    """Someone who proved they own the address by resetting the password is no longer
    locked out by the failures counted against that address."""
    reset(username=user.email)
