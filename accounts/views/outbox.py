"""Staff-only Outbox: what Missive sent while running with the local mail catcher."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.clickjacking import xframe_options_sameorigin

from accounts import outbox
from accounts.forms import ConfirmForm
from accounts.http import UserRequest
from accounts.query import QueryParams
from accounts.views.decorators import staff_required

PAGE_SIZE = 50


@staff_required
def outbox_list(request: UserRequest) -> HttpResponse:
    page_number = QueryParams(request.GET).id("page") or 1
    items, total = outbox.newest(limit=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE)
    page = Paginator(range(total), PAGE_SIZE).get_page(page_number) if total else None
    return render(
        request,
        "accounts/outbox/list.html",
        {
            "items": items,
            "total": total,
            "page": page,
            "enabled": outbox.outbox_dir() is not None,
        },
    )


def _message_or_404(message_id: str) -> outbox.CaughtMessage:
    message = outbox.get(message_id)
    if message is None:
        raise Http404("No such message in the Outbox.")
    return message


@staff_required
def outbox_detail(request: UserRequest, message_id: str) -> HttpResponse:
    message = _message_or_404(message_id)
    return render(
        request,
        "accounts/outbox/detail.html",
        {
            "message": message,
            "text": message.part("text/plain"),
            "has_html": message.part("text/html") is not None,
            "raw": message.raw.decode("utf-8", errors="replace"),
        },
    )


@staff_required
@xframe_options_sameorigin
def outbox_html(request: UserRequest, message_id: str) -> HttpResponse:
    """The HTML part alone, for the detail page's sandboxed iframe. Its own CSP forbids
    scripts, so a message cannot run code even if opened directly; its tracking URLs are
    made inert, so neither its pixel nor a click on its links counts for the recipient."""
    html = _message_or_404(message_id).part("text/html")
    if html is None:
        raise Http404("This message has no HTML part.")
    response = HttpResponse(outbox.without_tracking(html), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; sandbox"
    )
    return response


@staff_required
def outbox_clear(request: UserRequest) -> HttpResponse:
    if request.method == "POST":
        removed = outbox.clear()
        messages.success(request, f"Outbox emptied ({removed} messages).")
        return redirect("outbox")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": ConfirmForm(),
            "title": "Empty the Outbox?",
            "body": "Every caught message is deleted from disk. Nothing is sent.",
            "confirm_label": "Empty the Outbox",
            "cancel_url": "outbox",
        },
    )
