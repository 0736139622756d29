"""Login throttling with django-axes: the identifier it counts, and what a locked-out
person sees."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import normalize_email


def login_identifier(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The address being tried, lower-cased, whichever login form sent it.

    allauth authenticates with ``email=…``, the admin with ``username=…``; the form
    field itself is ``login`` or ``username``.
    """
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    if not value and request is not None and request.method == "POST":
        value = request.POST.get("login") or request.POST.get("username")
    if not value:
        return None
    try:
        return normalize_email(value)
    except ValidationError:
        # Not an address anyone has: still counted, under what was typed.
        return value.strip().lower()


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the
    hop the outermost trusted proxy saw. Hops a client wrote itself are never believed."""
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if len(hops) < count:
        return remote
    return hops[-count]


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    # Rendered at once: django-axes returns it from a middleware, after the view.
    return render(
        request,
        "accounts/locked_out.html",
        {"cooloff_minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
