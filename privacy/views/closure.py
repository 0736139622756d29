"""Closing an account: the full export first, then the owner's confirmation; the page a
member of a closed account meets; reopening before the data are deleted."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import closing
from accounts.http import AccountRequest, UserRequest
from accounts.models import Account
from accounts.roles import Perm, Role
from accounts.services import audit_log
from accounts.views.decorators import account_required
from privacy import closure


class CloseForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    confirm_name = forms.CharField(label="Type the account name to confirm")


def _export_response(account: Account, request: UserRequest) -> FileResponse:
    archive = closure.full_export(account)
    audit_log(account=account, actor=request.user, action="account.exported")
    name = f"missive-{account.pk}-{timezone.now():%Y%m%d}.zip"
    return FileResponse(archive, as_attachment=True, filename=name, content_type="application/zip")


@account_required(Perm.EXPORT)
def account_export(request: AccountRequest) -> FileResponse:
    """Everything the account holds, as one ZIP of CSV and JSON files."""
    return _export_response(request.account, request)


@account_required(Perm.CLOSE_ACCOUNT)
def account_close(request: AccountRequest) -> HttpResponse:
    account = request.account
    form = CloseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            closure.account_close(
                account=account,
                actor=request.user,
                password=form.cleaned_data["password"],
                typed_name=form.cleaned_data["confirm_name"],
            )
        except ValidationError as refused:
            if hasattr(refused, "error_dict"):
                for field, errors in refused.error_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                form.add_error(None, refused)
        else:
            return redirect("account_closed")
    return render(
        request,
        "privacy/account_close.html",
        {
            "form": form,
            "account": account,
            "days": settings.MISSIVE_RETENTION["closed_accounts_days"],
        },
    )


@login_required
def account_closed(request: UserRequest) -> HttpResponse:
    """What a member of a closed account sees instead of the app."""
    closed = closing.closed_memberships(request.user)
    if not closed:
        return redirect("dashboard")
    return render(
        request,
        "privacy/account_closed.html",
        {
            "closed": [
                {
                    "membership": m,
                    "account": m.account,
                    "deleted_on": closing.purge_date(m.account),
                    "is_owner": m.role == Role.OWNER,
                }
                for m in closed
            ]
        },
    )


def _closed_account_of_owner(request: UserRequest, account_id: int) -> Account:
    for membership in closing.closed_memberships(request.user):
        if membership.account_id == account_id and membership.role == Role.OWNER:
            return membership.account
    raise Http404("No such closed account.")


@login_required
@require_POST
def account_reopen(request: UserRequest, account_id: int) -> HttpResponse:
    account = _closed_account_of_owner(request, account_id)
    try:
        closing.account_reopen(account=account, actor=request.user)
    except ValidationError as refused:
        messages.error(request, " ".join(refused.messages))
        return redirect("account_closed")
    messages.success(request, f"{account.name} is open again.")
    return redirect("dashboard")


@login_required
def account_closed_export(request: UserRequest, account_id: int) -> FileResponse:
    return _export_response(_closed_account_of_owner(request, account_id), request)
