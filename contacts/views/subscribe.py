"""Subscribe forms: the public hosted page and its confirmation link, and the page that
gives a list's owner the form's address and an HTML snippet to paste into their site."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from accounts.http import AccountRequest
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.throttling import client_ip
from accounts.views.decorators import account_required
from contacts import subscribing
from contacts.forms_subscribe import SubscribeForm
from contacts.models import ContactList


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "contacts/subscribe_invalid.html", status=404)


# Exempt from CSRF, and only this endpoint: the snippet a customer pastes into their own
# site posts here from another origin, which can carry no CSRF token. What protects it
# instead: the honeypot and the per-IP limit keep bots out, the answer is the same for
# every address (a forged post learns nothing), and with double opt-in a forged post
# can only mail a confirmation link to the inbox it names; the confirmation itself stays
# CSRF-protected, so no cross-site post can subscribe anybody who has not pressed it.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest, form_key: str) -> HttpResponse:
    contact_list = subscribing.list_for_form_key(form_key)
    if contact_list is None:
        return _not_found(request)
    context = {"contact_list": contact_list, "account": contact_list.account}
    if request.method == "POST":
        ip = client_ip(request)
        if not subscribing.submission_allowed(ip):
            return render(request, "contacts/subscribe_limited.html", context, status=429)
        form = SubscribeForm(request.POST, contact_list=contact_list)
        if form.is_bot:
            return render(request, "contacts/subscribe_done.html", context)
        if form.is_valid():
            subscribing.subscription_request(
                contact_list=contact_list,
                email=form.cleaned_data["email"],
                first_name=form.cleaned_data["first_name"],
                consent_ip=ip,
                consent_user_agent=request.headers.get("user-agent", ""),
            )
            return render(request, "contacts/subscribe_done.html", context)
    else:
        form = SubscribeForm(contact_list=contact_list)
    return render(request, "contacts/subscribe.html", {**context, "form": form})


@require_http_methods(["GET", "POST"])
def subscribe_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the button and changes nothing (mail scanners follow links); POST
    confirms."""
    subscription = subscribing.subscription_for_confirm_token(token)
    if subscription is None:
        return _not_found(request)
    contact_list = subscription.contact_list
    context = {"contact_list": contact_list, "account": contact_list.account}
    if request.method == "POST":
        if subscribing.subscription_confirm(subscription=subscription) is None:
            return _not_found(request)
        return render(request, "contacts/subscribe_confirmed.html", context)
    return render(request, "contacts/subscribe_confirm.html", context)


@require_GET
@account_required(Perm.VIEW)
def list_form(request: AccountRequest, list_id: int) -> HttpResponse:
    contact_list = get_for_account_or_404(ContactList, request.account, pk=list_id)
    url = subscribing.subscribe_url(contact_list)
    consent_text = subscribing.consent_wording(contact_list)
    snippet = render_to_string(
        "contacts/subscribe_embed.html",
        {"contact_list": contact_list, "url": url, "consent_text": consent_text},
    ).strip()
    return render(
        request,
        "contacts/list_form_snippet.html",
        {
            "contact_list": contact_list,
            "url": url,
            "snippet": snippet,
            "consent_text": consent_text,
            "can_edit": role_can(request.membership.role, Perm.EDIT_CONTENT),
        },
    )
