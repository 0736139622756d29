"""Rates as people read them: 23.4%, 0.12% for the small ones (complaints), — for none."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    if value is None:
        return "—"
    share = value * 100
    if share == 0:
        return "0%"
    if share < 1:
        return f"{share:.2f}%"
    return f"{share:.1f}%"
