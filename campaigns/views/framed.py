"""A message as a document of its own, for a frame or a tab: the customer's (sanitized)
HTML with no script at all and images from anywhere, as a mail app shows it."""

from __future__ import annotations

from django.http import HttpResponse

_POLICY = "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; sandbox"
# A reader's copy (view in browser, the archive): links open outside the sandbox.
_LINKS_OPEN = " allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"


def framed(html: str, *, links_open: bool = False) -> HttpResponse:
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = _POLICY + (_LINKS_OPEN if links_open else "")
    return response
