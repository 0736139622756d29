"""Lists: the overview with counts, one list's contacts, and list settings."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.http import HttpResponse
from django.shortcuts import redirect, render

from accounts.http import AccountRequest
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from contacts import selectors, services
from contacts.forms import ContactListForm, DeleteListForm
from contacts.models import ContactList, Subscription
from contacts.views.contacts import contacts_table


def _add_errors(form: forms.BaseForm, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


@account_required(Perm.VIEW)
def lists(request: AccountRequest) -> HttpResponse:
    return render(
        request,
        "contacts/lists.html",
        {"lists": selectors.lists_with_cached_counts(request.account)},
    )


@account_required(Perm.EDIT_CONTENT)
def list_new(request: AccountRequest) -> HttpResponse:
    form = ContactListForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            contact_list = services.list_create(
                account=request.account, actor=request.user, **form.cleaned_data
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"List “{contact_list.name}” created.")
            return redirect("list_detail", list_id=contact_list.pk)
    return render(request, "contacts/list_form.html", {"form": form, "contact_list": None})


@account_required(Perm.VIEW)
def list_detail(request: AccountRequest, list_id: int) -> HttpResponse:
    contact_list = get_for_account_or_404(ContactList, request.account, pk=list_id)
    return contacts_table(request, contact_list=contact_list, statuses=Subscription.Status.choices)


@account_required(Perm.EDIT_CONTENT)
def list_edit(request: AccountRequest, list_id: int) -> HttpResponse:
    contact_list = get_for_account_or_404(ContactList, request.account, pk=list_id)
    initial = model_to_dict(contact_list, fields=ContactListForm.Meta.fields)
    form = ContactListForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.list_update(contact_list=contact_list, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, "List saved.")
            return redirect("list_detail", list_id=contact_list.pk)
    return render(request, "contacts/list_form.html", {"form": form, "contact_list": contact_list})


@account_required(Perm.EDIT_CONTENT)
def list_delete(request: AccountRequest, list_id: int) -> HttpResponse:
    contact_list = get_for_account_or_404(ContactList, request.account, pk=list_id)
    form = DeleteListForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        deleted = services.list_delete(
            contact_list=contact_list,
            actor=request.user,
            delete_contacts=form.cleaned_data["delete_contacts"],
        )
        extra = f" and {deleted} contact{'s' if deleted != 1 else ''}" if deleted else ""
        messages.success(request, f"List “{contact_list.name}”{extra} deleted.")
        return redirect("lists")
    counts = selectors.list_with_counts(contact_list)
    return render(
        request,
        "contacts/list_delete.html",
        {"contact_list": contact_list, "form": form, "counts": counts},
    )
