from __future__ import annotations

from allauth.account.signals import password_reset
from axes.utils import reset
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import User


@receiver(password_reset)
def forget_failed_logins(request: HttpRequest, user: User, **kwargs: object) -> None:
    """Someone who proved they own the address by resetting the password is no longer
    locked out by the failures counted against that address."""
    reset(username=user.email)


@receiver(user_logged_in)
def forget_failures_of_this_address(request: HttpRequest, user: User, **kwargs: object) -> None:
    """A successful login clears the failures counted against this address only, never
    those of the network: logging in to one's own account must not reset the count of
    guesses made at someone else's from the same place."""
    reset(username=user.email)
