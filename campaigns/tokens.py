"""Compact signed tokens for the links inside campaign messages.

A token carries ids only (a delivery, and for a click the link's position) and a
120-bit HMAC-SHA256 of them, bound to a purpose so a token made for one kind of link
opens no other. Tokens do not expire: an unsubscribe link must work as long as the
message exists, long after its stored body is purged. They are short (about 30
characters) because every message carries a dozen of them, and cheap to make (one HMAC
with a key derived once per process).

``read`` returns None for anything that is not a token we made, never an exception, so
a public endpoint answers a friendly 404 to a bad or altered link. Keys rotated out
through ``SECRET_KEY_FALLBACKS`` still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from django.conf import settings

MAX_LENGTH = 120
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(number: int) -> str:
    if number < 0:
        raise ValueError("ids are not negative")
    digits = []
    while True:
        number, rest = divmod(number, 36)
        digits.append(_ALPHABET[rest])
        if not number:
            return "".join(reversed(digits))


@lru_cache(maxsize=32)
def _key(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(f"missive.campaigns.tokens.{purpose}:{secret}".encode()).digest()


def _mac(secret: str, purpose: str, payload: str) -> str:
    digest = hmac.digest(_key(secret, purpose), payload.encode(), "sha256")[:15]
    return base64.urlsafe_b64encode(digest).decode()  # 15 bytes: 20 characters, no padding


def make(purpose: str, *ids: int) -> str:
    payload = "-".join(_b36(i) for i in ids)
    return f"{payload}.{_mac(settings.SECRET_KEY, purpose, payload)}"


def read(purpose: str, token: str, count: int) -> tuple[int, ...] | None:
    """The ``count`` ids of a token made by ``make(purpose, …)``, or None."""
    if not isinstance(token, str) or not token or len(token) > MAX_LENGTH:
        return None
    payload, _, mac = token.rpartition(".")
    parts = payload.split("-")
    if len(parts) != count or len(mac) != 20:
        return None
    try:
        ids = tuple(int(part, 36) for part in parts)
    except ValueError:
        return None
    # Only the canonical spelling verifies ("00a" and "a" are the same id, one token).
    if "-".join(_b36(i) for i in ids) != payload:
        return None
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    for secret in secrets:
        if hmac.compare_digest(_mac(secret, purpose, payload), mac):
            return ids
    return None


# The purposes, one per kind of link.
RECIPIENT = "recipient"  # unsubscribe, preferences, view in browser, the open pixel
CLICK = "click"  # a tracked link: (delivery, position)


def recipient_token(delivery_id: int) -> str:
    return make(RECIPIENT, delivery_id)


def read_recipient_token(token: str) -> int | None:
    ids = read(RECIPIENT, token, 1)
    return ids[0] if ids else None


def click_token(delivery_id: int, position: int) -> str:
    return make(CLICK, delivery_id, position)


def read_click_token(token: str) -> tuple[int, int] | None:
    ids = read(CLICK, token, 2)
    return (ids[0], ids[1]) if ids else None


BOUNCE = "bounce"  # the envelope sender of a message: bounces+<token>@domain


def bounce_token(delivery_id: int) -> str:
    return make(BOUNCE, delivery_id)


def read_bounce_token(token: str) -> int | None:
    ids = read(BOUNCE, token, 1)
    return ids[0] if ids else None


# Anonymous tracking: the links name the campaign, never the recipient.
CAMPAIGN_OPEN = "campaign-open"
CAMPAIGN_CLICK = "campaign-click"


def campaign_open_token(campaign_id: int) -> str:
    return make(CAMPAIGN_OPEN, campaign_id)


def read_campaign_open_token(token: str) -> int | None:
    ids = read(CAMPAIGN_OPEN, token, 1)
    return ids[0] if ids else None


def campaign_click_token(campaign_id: int, position: int) -> str:
    return make(CAMPAIGN_CLICK, campaign_id, position)


def read_campaign_click_token(token: str) -> tuple[int, int] | None:
    ids = read(CAMPAIGN_CLICK, token, 2)
    return (ids[0], ids[1]) if ids else None
