"""Public: anyone may ask that their own address never receive mail sent through
Missive. No login; the emailed link proves the person reads that mailbox."""

from __future__ import annotations

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.throttling import client_ip
from contacts import suppressing
from contacts.forms_suppressions import DoNotContactForm

# Requests per client address and window: enough for a person and their typos, too few
# to turn the page into a way of mailing strangers.
RATE_LIMIT = 5
RATE_WINDOW_SECONDS = 60 * 60


def _over_limit(request: HttpRequest) -> bool:
    """Counts this request; True past RATE_LIMIT in the window (fixed, from the first)."""
    key = f"do-not-contact:ip:{client_ip(request)}"
    cache.add(key, 0, timeout=RATE_WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this request opens a new window
        cache.set(key, 1, timeout=RATE_WINDOW_SECONDS)
        count = 1
    return count > RATE_LIMIT


def _lifetime() -> dict[str, int]:
    return {"lifetime_days": suppressing.DO_NOT_CONTACT_LINK_AGE.days}


def do_not_contact(request: HttpRequest) -> HttpResponse:
    form = DoNotContactForm(request.POST or None)
    if request.method == "POST":
        if _over_limit(request):
            return render(
                request,
                "contacts/do_not_contact.html",
                {"form": DoNotContactForm(), "limited": True},
                status=429,
            )
        if form.is_valid():
            # The same page for a robot, a known and an unknown address.
            if not form.is_robot:
                suppressing.do_not_contact_request(email=form.cleaned_data["email"])
            return render(request, "contacts/do_not_contact_sent.html", _lifetime())
    return render(request, "contacts/do_not_contact.html", {"form": form})


def do_not_contact_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows what the button will do and changes nothing (mail scanners open links);
    POST puts the address on the platform-wide list."""
    email = suppressing.do_not_contact_address(token)
    if email is None:
        return render(request, "contacts/do_not_contact_invalid.html", _lifetime(), status=404)
    if request.method == "POST":
        suppressing.do_not_contact_confirm(email=email)
        return render(request, "contacts/do_not_contact_done.html", {"email": email})
    return render(request, "contacts/do_not_contact_confirm.html", {"email": email})
