"""Addresses as people read them: the domain in Unicode (bücher.de), never the punycode
(xn--bcher-kva.de) Missive stores and sends to."""

from __future__ import annotations

from django import template

from accounts.models import email_unicode_form

register = template.Library()


@register.filter
def unicode_email(value: str | None) -> str:
    if not value:
        return ""
    return email_unicode_form(str(value))
