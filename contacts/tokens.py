"""Tokens for the links Missive mails to the public.

Two kinds:

- signed tokens (``make_token`` / ``read_token``) that carry ids, for links whose
  payload is no secret (confirming a subscription);
- opaque links (``link_issue`` / ``link_open`` / ``link_use``) for links that stand
  for an address ("your data", the confirmation of an erasure, "do not contact"): the
  URL holds a random token, the address stays in a ``PublicLink`` row found by the
  token's hash, so a link forwarded, logged or scanned tells nobody whose it is, and a
  link can be made single-use.

Both are bound to a purpose (a token made for one link opens no other) and expire; a
bad, altered, old-format, used or expired token reads as None, never as an error.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.core import signing
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, hash_token
from contacts.models import PublicLink

DEFAULT_MAX_AGE = timedelta(days=7)
MAX_TOKEN_LENGTH = 1000


def make_token(purpose: str, payload: dict[str, object]) -> str:
    return signing.dumps(payload, salt=f"missive.contacts.{purpose}", compress=True)


def read_token(
    purpose: str, token: str, max_age: timedelta = DEFAULT_MAX_AGE
) -> dict[str, object] | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        payload = signing.loads(token, salt=f"missive.contacts.{purpose}", max_age=max_age)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    return payload if isinstance(payload, dict) else None


def link_issue(
    *, purpose: str, email: str, lifetime: timedelta, account: Account | None = None
) -> str:
    """A new link for ``email``: the token to put in the URL (only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    PublicLink.objects.create(
        purpose=purpose,
        token_hash=hash_token(token),
        email=email,
        account=account,
        created_at=now,
        expires_at=now + lifetime,
    )
    return token


def _live(purpose: str, token: str) -> PublicLink | None:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return (
        PublicLink.objects.select_related("account")
        .filter(
            token_hash=hash_token(token),
            purpose=purpose,
            used_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )


def link_open(purpose: str, token: str) -> PublicLink | None:
    """The link ``token`` stands for, if made for ``purpose``, unexpired and unused.
    Changes nothing: mail scanners open links."""
    return _live(purpose, token)


@transaction.atomic
def link_use(purpose: str, token: str) -> PublicLink | None:
    """As ``link_open``, and marks a single-use link used, in the caller's transaction:
    of two presses at once, one gets the link and the other None."""
    link = _live(purpose, token)
    if link is None:
        return None
    used = PublicLink.objects.filter(pk=link.pk, used_at__isnull=True).update(
        used_at=timezone.now()
    )
    return link if used else None
