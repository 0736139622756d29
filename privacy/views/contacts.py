"""A customer acting on one contact's rights: erasing them for good, or exporting all
that is held on them."""

from __future__ import annotations

import contextlib

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render

from accounts.http import AccountRequest
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from contacts.models import Contact
from privacy import data_requests, erasure
from privacy.views.data_requests import json_download


@account_required(Perm.EDIT_CONTENT)
def contact_erase(request: AccountRequest, contact_id: int) -> HttpResponse:
    """A confirmation page that says what erasure means; the POST erases."""
    contact = get_for_account_or_404(Contact, request.account, pk=contact_id)
    if request.method == "POST":
        # (already gone: erased a moment ago by someone else)
        with contextlib.suppress(Contact.DoesNotExist):
            erasure.erase_contact(
                contact=contact, actor=request.user, reason=erasure.Reason.CUSTOMER
            )
        messages.success(
            request,
            f"{contact.email} is erased. Only a hash of the address remains, on your "
            "suppression list, so it is never mailed again.",
        )
        return redirect("contacts")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Erase {contact.email}?",
            "body": "Erasure is permanent: the contact, their subscriptions and consent proof, "
            "the copies of the messages they were sent and the record of their opens and "
            "clicks are deleted for good. Campaign counts stay as they are. A hash of the "
            "address stays on your suppression list, so no import, form or API call can "
            "mail it again. Use this when the person asks to be forgotten.",
            "confirm_label": "Erase for good",
            "cancel_url": "contacts",
        },
    )


@account_required(Perm.EXPORT)
def contact_export(request: AccountRequest, contact_id: int) -> HttpResponse:
    """One contact's data as JSON: fields, subscriptions with consent proof, messages and
    events (what the person would get from an access request)."""
    contact = get_for_account_or_404(Contact, request.account, pk=contact_id)
    data = data_requests.contact_export(contact=contact, actor=request.user)
    return json_download(data, data_requests.export_filename(contact))
