"""Signed tokens for the links Missive mails to the public: confirm a subscription,
confirm a "do not contact" request. They carry ids, or for a "do not contact" request
the address the link is mailed to (nothing is stored before the person confirms); they
are bound to a purpose (a token made for one link opens no other) and expire; a bad,
altered or expired token reads as None, never as an error."""

from __future__ import annotations

from datetime import timedelta

from django.core import signing

DEFAULT_MAX_AGE = timedelta(days=7)


def make_token(purpose: str, payload: dict[str, object]) -> str:
    return signing.dumps(payload, salt=f"missive.contacts.{purpose}", compress=True)


def read_token(
    purpose: str, token: str, max_age: timedelta = DEFAULT_MAX_AGE
) -> dict[str, object] | None:
    if not token or len(token) > 1000:
        return None
    try:
        payload = signing.loads(token, salt=f"missive.contacts.{purpose}", max_age=max_age)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    return payload if isinstance(payload, dict) else None
