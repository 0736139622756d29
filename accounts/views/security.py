from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render

from accounts import selectors, services
from accounts.forms import SecuritySettingsForm
from accounts.http import AccountRequest
from accounts.roles import Perm, role_can
from accounts.views.decorators import account_required


@account_required(Perm.VIEW_SECURITY)
def security(request: AccountRequest) -> HttpResponse:
    account = request.account
    is_owner = role_can(request.membership.role, Perm.CLOSE_ACCOUNT)
    form = SecuritySettingsForm(request.POST or None, initial={"require_mfa": account.require_mfa})
    if request.method == "POST":
        if not is_owner:
            messages.error(request, "Only an owner can change the account's security rules.")
            return redirect("security")
        if form.is_valid():
            services.account_update(
                account=account, actor=request.user, require_mfa=form.cleaned_data["require_mfa"]
            )
            messages.success(request, "Security rules saved.")
            return redirect("security")
    return render(
        request,
        "accounts/security.html",
        {
            "form": form,
            "is_owner": is_owner,
            "failed_logins": selectors.recent_failed_logins(account)[:50],
            "without_mfa": selectors.members_without_mfa(account),
            "audit_entries": selectors.audit_entries(account)[:50],
        },
    )
