"""Friendly error pages that never fail themselves: they render without the request
context so a broken database or middleware cannot turn a 500 into a blank page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.template import loader


def _render(template: str, status: int, message: str = "") -> HttpResponse:
    try:
        body = loader.get_template(template).render({"message": message})
    except Exception:  # the error page must not raise
        body = f"<h1>Error {status}</h1>"
    return HttpResponse(body, status=status)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if exception and str(exception) else ""
    return _render("errors/403.html", 403, message)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _render("errors/404.html", 404)


def server_error(request: HttpRequest) -> HttpResponse:
    response = _render("errors/500.html", 500)
    return HttpResponseServerError(response.content)
