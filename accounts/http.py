"""What Missive's middleware and view decorators add to Django's request, as types.

A view says which request it receives, so the checker knows what it may rely on:

- ``WebRequest``: any request of the site. ``accounts.middleware`` resolves whom a
  logged-in person acts for (nobody for a visitor), django-htmx says whether htmx sent it.
- ``UserRequest``: ``login_required`` let it through, so ``user`` is a real person.
- ``AccountRequest``: ``account_required`` let it through, so the person acts in an
  account, with a membership there.

Only annotations: at run time every one of them is the ``HttpRequest`` Django built.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails

from accounts.models import Account, Membership, User


class WebRequest(HttpRequest):
    membership: Membership | None
    account: Account | None
    htmx: HtmxDetails


class UserRequest(WebRequest):
    user: User


class AccountRequest(UserRequest):
    membership: Membership
    account: Account


def logged_in_user(request: HttpRequest) -> User:
    """Who is logged in, on a page only logged-in people reach (the admin's, say) whose
    signature Django fixes as a plain request."""
    if not request.user.is_authenticated:
        raise PermissionDenied("Log in first.")
    return request.user
