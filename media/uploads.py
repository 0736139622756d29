"""Image uploads refused by the size they declare, before their body is read.

Django stores an upload as it parses the request (in memory, then in a temporary file),
and the CSRF check parses it before any view runs: a 2 GB file sent where 5 MB is the
limit would be received and written to disk in full before it is refused. The views
that take an image look at the declared length first and answer at once when it passes
MISSIVE_IMAGE_MAX_BYTES and the room the form's other fields need, the body unread. A
WSGI request never carries more body than it declares (Django reads no further), so
what passes this check is at most that much.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from media.services import size_refusal

# The form's other fields and the multipart boundaries around the file.
FORM_ROOM = 64 * 1024

View = Callable[..., HttpResponse]
Refusal = Callable[..., HttpResponse]


def declared_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def too_large(request: HttpRequest) -> str | None:
    """Why the request is refused unread, when it declares more than an image upload
    may be; None otherwise (the image's own checks then read it)."""
    declared = declared_length(request)
    if declared <= settings.MISSIVE_IMAGE_MAX_BYTES + FORM_ROOM:
        return None
    return size_refusal("The upload", declared)


def refuse_oversized(on_refusal: Refusal) -> Callable[[View], View]:
    """For a view that takes an uploaded image by POST: a request declaring too much is
    answered by ``on_refusal(request, message, *args, **kwargs)`` before anything reads
    its body. The CSRF check, which would read it, runs after this one (and still runs on
    every other request); the refusal changes nothing, so it needs none."""

    def decorator(view: View) -> View:
        protected = csrf_protect(view)

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                message = too_large(request)
                if message is not None:
                    return on_refusal(request, message, *args, **kwargs)
            return protected(request, *args, **kwargs)

        return csrf_exempt(wrapper)

    return decorator
