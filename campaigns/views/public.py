"""The links inside campaign messages. Public: the signed token is the only credential,
and a bad or altered one gets the friendly 404 page, never an error."""

from __future__ import annotations

import base64

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accounts.query import parse_id
from accounts.throttling import client_ip
from campaigns import public, tokens
from campaigns.views.framed import framed

# The smallest transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = "no-store, no-cache, must-revalidate, max-age=0, private"


def _user_agent(request: HttpRequest) -> str:
    return request.headers.get("user-agent", "")[:500]


def _recipient(token: str) -> public.Recipient:
    delivery_id = tokens.read_recipient_token(token)
    who = public.recipient(delivery_id) if delivery_id is not None else None
    if who is None:
        raise Http404("This link is not valid.")
    return who


def _pixel(recorded: bool) -> HttpResponse:
    if not recorded:
        raise Http404("This link is not valid.")
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = NO_STORE
    response["Expires"] = "0"
    return response


def _redirect(target: str | None) -> HttpResponse:
    if target is None:
        raise Http404("This link is not valid.")
    # The target is one of the campaign's own links (http, https or mailto), never a
    # value from the request.
    response = HttpResponseRedirect(target)
    response["Cache-Control"] = NO_STORE
    return response


@require_GET
def track_open(request: HttpRequest, token: str) -> HttpResponse:
    delivery_id = tokens.read_recipient_token(token)
    return _pixel(
        delivery_id is not None
        and public.record_open(delivery_id, user_agent=_user_agent(request), ip=client_ip(request))
    )


@require_GET
def track_click(request: HttpRequest, token: str) -> HttpResponse:
    ids = tokens.read_click_token(token)
    return _redirect(
        public.resolve_click(*ids, user_agent=_user_agent(request), ip=client_ip(request))
        if ids
        else None
    )


@require_GET
def track_open_anonymous(request: HttpRequest, token: str) -> HttpResponse:
    campaign_id = tokens.read_campaign_open_token(token)
    return _pixel(
        campaign_id is not None
        and public.record_anonymous_open(
            campaign_id, user_agent=_user_agent(request), ip=client_ip(request)
        )
    )


@require_GET
def track_click_anonymous(request: HttpRequest, token: str) -> HttpResponse:
    ids = tokens.read_campaign_click_token(token)
    return _redirect(
        public.resolve_anonymous_click(*ids, user_agent=_user_agent(request), ip=client_ip(request))
        if ids
        else None
    )


# Exempt from CSRF, and only this view: RFC 8058 one-click unsubscribe is a POST from the
# recipient's mail provider, with no cookie and no token but the signed one in the URL,
# which is what authenticates it. The POST only ever unsubscribes, which nobody can use
# against the recipient. GET changes nothing (scanners fetch links).
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    who = _recipient(token)
    context = {
        "who": who,
        "token": token,
        "lists": public.campaign_lists(who),
        "email": who.contact.email if who.contact else "",
    }
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        public.unsubscribe(who, how="one-click" if one_click else "page")
        response = render(request, "campaigns/public/unsubscribed.html", context)
    else:
        context["already"] = public.is_unsubscribed(who)
        response = render(request, "campaigns/public/unsubscribe.html", context)
    response["Cache-Control"] = NO_STORE
    return response


@require_http_methods(["GET", "POST"])
def stop_tracking(request: HttpRequest, token: str) -> HttpResponse:
    """GET explains and shows a button (scanners fetch links); POST records the
    objection."""
    who = _recipient(token)
    done = request.method == "POST"
    if done:
        public.stop_tracking(who)
    response = render(
        request,
        "campaigns/public/stop_tracking.html",
        {"who": who, "token": token, "done": done},
    )
    response["Cache-Control"] = NO_STORE
    return response


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    who = _recipient(token)
    saved = False
    if request.method == "POST":
        keep = {pk for v in request.POST.getlist("lists") if (pk := parse_id(v)) is not None}
        public.update_preferences(
            who,
            keep=keep,
            stop_everything=request.POST.get("everything") == "on",
            ip=client_ip(request),
            user_agent=_user_agent(request),
        )
        saved = True
    response = render(
        request,
        "campaigns/public/preferences.html",
        {
            "who": who,
            "token": token,
            "subscriptions": public.preferences(who),
            "saved": saved,
        },
    )
    response["Cache-Control"] = NO_STORE
    return response


@require_GET
def view_in_browser(request: HttpRequest, token: str) -> HttpResponse:
    who = _recipient(token)
    body = public.stored_body(who.delivery.pk)
    if body is None:
        return render(
            request,
            "campaigns/public/gone.html",
            {"who": who, "token": token},
            status=410,
        )
    response = framed(body.html, links_open=True)
    response["Cache-Control"] = NO_STORE
    response["X-Robots-Tag"] = "noindex"
    return response
