"""The one form of a sending domain's name: IDNA A-labels, lower-cased, no trailing dot."""

from __future__ import annotations

import re

import idna
from django.core.exceptions import ValidationError

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def clean_domain_name(value: str) -> str:
    """``value`` as DNS knows it, or ValidationError saying what is wrong with it."""
    text = (value or "").strip().lower().rstrip(".")
    if "@" in text:
        text = text.rpartition("@")[2]
    if not text:
        raise ValidationError("Enter a domain name, such as news.example.com.")
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii") if not text.isascii() else text
    except UnicodeError:
        raise ValidationError(f"“{value}” is not a valid internet domain name.") from None
    labels = ascii_name.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValidationError(
            f"“{value}” is not a domain name Missive can send from: give a full name such "
            "as news.example.com (letters, digits and hyphens, at least one dot)."
        )
    if labels[-1].isdigit():
        raise ValidationError(f"“{value}” is an address, not a domain name.")
    if len(ascii_name) > 253:
        raise ValidationError("A domain name has at most 253 characters.")
    return ascii_name


def domain_of(email: str) -> str:
    """The domain of an address, in its one form ('' when there is none)."""
    domain = (email or "").rpartition("@")[2]
    try:
        return clean_domain_name(domain) if domain else ""
    except ValidationError:
        return ""
