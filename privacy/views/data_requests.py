"""Public: a person's requests about their own data, across every customer that holds
it. No login; the emailed link proves the person reads that mailbox (contacts/
data_requests.py says what is guaranteed). And the customer's log of those requests."""

from __future__ import annotations

import json

from django import forms
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.http import AccountRequest
from accounts.roles import Perm
from accounts.throttling import client_ip
from accounts.views.decorators import account_required
from contacts.forms_suppressions import DoNotContactForm
from contacts.models import Contact
from privacy import data_requests


class YourDataForm(DoNotContactForm):
    """An address and the honeypot, as on the "do not contact" page."""


class NameForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)


def _lifetime() -> dict[str, int]:
    return {"lifetime_hours": int(data_requests.LINK_LIFETIME.total_seconds() // 3600)}


def _invalid(request: HttpRequest) -> HttpResponse:
    return render(request, "privacy/your_data_invalid.html", _lifetime(), status=404)


def _gone(request: HttpRequest, token: str) -> HttpResponse:
    return render(request, "privacy/your_data_gone.html", {"token": token}, status=404)


def json_download(data: dict[str, object], filename: str) -> HttpResponse:
    """A person's data as a JSON file, never cached on the way."""
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def your_data(request: HttpRequest) -> HttpResponse:
    form = YourDataForm(request.POST or None)
    if request.method == "POST":
        if not data_requests.request_allowed(client_ip(request)):
            return render(
                request,
                "privacy/your_data.html",
                {"form": YourDataForm(), "limited": True},
                status=429,
            )
        if form.is_valid():
            # The same page for a robot, a known and an unknown address.
            if not form.is_robot:
                data_requests.your_data_request(email=form.cleaned_data["email"])
            return render(request, "privacy/your_data_sent.html", _lifetime())
    return render(request, "privacy/your_data.html", {"form": form})


def your_data_overview(request: HttpRequest, token: str) -> HttpResponse:
    """Which customers hold data on the address, and what the person may do. Reads only:
    mail scanners open this link."""
    email = data_requests.address_for_token(token)
    if email is None:
        return _invalid(request)
    holdings = [
        (
            holding,
            NameForm(
                initial={
                    "first_name": holding.contact.first_name,
                    "last_name": holding.contact.last_name,
                },
                auto_id=f"id_{holding.account.pk}_%s",
            ),
        )
        for holding in data_requests.holdings(email)
    ]
    return render(
        request,
        "privacy/your_data_overview.html",
        {"email": email, "token": token, "holdings": holdings, **_lifetime()},
    )


def _contact(request: HttpRequest, token: str, account_id: int) -> Contact | HttpResponse:
    """The person's contact in the account, or the page to answer instead."""
    email = data_requests.address_for_token(token)
    if email is None:
        return _invalid(request)
    contact = data_requests.holding(email, account_id)
    if contact is None:
        return _gone(request, token)
    return contact


def _action(request: HttpRequest, token: str, account_id: int) -> Contact | HttpResponse:
    """As ``_contact``, for the acts: only a POST acts; a GET goes back to the overview."""
    found = _contact(request, token, account_id)
    if isinstance(found, HttpResponse):
        return found
    if request.method != "POST":
        return redirect("your_data_overview", token=token)
    return found


def _done(request: HttpRequest, token: str, contact: Contact, message: str) -> HttpResponse:
    return render(
        request,
        "privacy/your_data_done.html",
        {"token": token, "account": contact.account, "message": message},
    )


def your_data_show(request: HttpRequest, token: str, account_id: int) -> HttpResponse:
    contact = _action(request, token, account_id)
    if isinstance(contact, HttpResponse):
        return contact
    data = data_requests.data_request_access(contact=contact)
    return render(
        request,
        "privacy/your_data_show.html",
        {
            "token": token,
            "account": contact.account,
            "data": data,
            "pretty": json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2),
        },
    )


def your_data_download(request: HttpRequest, token: str, account_id: int) -> HttpResponse:
    contact = _action(request, token, account_id)
    if isinstance(contact, HttpResponse):
        return contact
    data = data_requests.data_request_export(contact=contact)
    return json_download(data, data_requests.export_filename(contact))


def your_data_correct(request: HttpRequest, token: str, account_id: int) -> HttpResponse:
    contact = _action(request, token, account_id)
    if isinstance(contact, HttpResponse):
        return contact
    form = NameForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "privacy/your_data_correct.html",
            {"token": token, "account": contact.account, "form": form},
            status=400,
        )
    data_requests.data_request_correct(
        contact=contact,
        first_name=form.cleaned_data["first_name"],
        last_name=form.cleaned_data["last_name"],
    )
    return _done(request, token, contact, "Your name is corrected.")


def your_data_unsubscribe(request: HttpRequest, token: str, account_id: int) -> HttpResponse:
    contact = _action(request, token, account_id)
    if isinstance(contact, HttpResponse):
        return contact
    data_requests.data_request_unsubscribe(contact=contact)
    return _done(
        request,
        token,
        contact,
        "You are unsubscribed from all of its lists, and none of its lists may mail you again.",
    )


def your_data_object(request: HttpRequest, token: str, account_id: int) -> HttpResponse:
    contact = _action(request, token, account_id)
    if isinstance(contact, HttpResponse):
        return contact
    data_requests.data_request_object(contact=contact)
    return _done(
        request,
        token,
        contact,
        "Your objection is recorded: whether you open its messages or click their links "
        "is no longer recorded.",
    )


def your_data_erase(request: HttpRequest, token: str, account_id: int) -> HttpResponse:
    """GET explains and changes nothing; POST mails the one-time link that erases
    (contacts/data_requests.py says why the "your data" link cannot erase by itself)."""
    contact = _contact(request, token, account_id)
    if isinstance(contact, HttpResponse):
        return contact
    context = {
        "token": token,
        "account": contact.account,
        "email": contact.email,
        "lifetime_minutes": int(data_requests.ERASE_LINK_LIFETIME.total_seconds() // 60),
    }
    if request.method != "POST":
        return render(request, "privacy/your_data_erase.html", context)
    data_requests.erase_confirmation_send(contact=contact)
    return render(request, "privacy/your_data_erase_sent.html", context)


def your_data_erase_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link of the erasure mail. GET asks for confirmation and changes nothing; POST
    erases, before answering, and uses the link up."""
    target = data_requests.erase_target(token)
    if target is None:
        return _invalid(request)
    if target.contact is None:
        return _gone(request, "")
    if request.method != "POST":
        return render(
            request,
            "privacy/your_data_erase_confirm.html",
            {"account": target.account, "email": target.contact.email},
        )
    if data_requests.data_request_erase(token=token) is None:
        # used a moment ago, by another press of the button
        return _invalid(request)
    return render(request, "privacy/your_data_erased.html", {"account": target.account})


@account_required(Perm.VIEW_SECURITY)
def data_requests_log(request: AccountRequest) -> HttpResponse:
    """The customer's log of the requests people made about their data."""
    page = data_requests.data_requests_page(request.account, before=request.GET.get("before", ""))
    return render(request, "privacy/data_requests.html", {"page": page})
