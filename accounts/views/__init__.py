from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.forms.models import model_to_dict
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.closing import closed_memberships
from accounts.forms import AccountSettingsForm
from accounts.http import AccountRequest, UserRequest, WebRequest
from accounts.roles import Perm, role_can
from accounts.views.decorators import account_required


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def dashboard(request: WebRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("account_login")
    if not request.membership:
        return redirect("account_closed" if closed_memberships(request.user) else "account_new")
    account = request.membership.account
    checklist: list[dict[str, Any]] = [
        {
            "done": bool(account.postal_address),
            "label": "Add your postal address",
            "why": "It goes in the footer of every campaign, as anti-spam laws require.",
            "url": "account_settings",
            "perm": Perm.MANAGE_ACCOUNT,
        },
        {
            "done": bool(account.default_from_email),
            "label": "Set your default sender",
            "why": "The name and address your campaigns come from.",
            "url": "account_settings",
            "perm": Perm.MANAGE_ACCOUNT,
        },
        {
            "done": selectors.members(account).count() > 1
            or selectors.pending_invitations(account).exists(),
            "label": "Invite your team",
            "why": "Editors write and send; viewers follow the results.",
            "url": "members",
            "perm": Perm.VIEW,
        },
        {
            "done": selectors.has_authenticator_app(request.user),
            "label": "Turn on two-factor authentication",
            "why": "Protects your contacts if your password leaks.",
            "url": "mfa_index",
            "perm": Perm.VIEW,
        },
    ]
    role = request.membership.role
    checklist = [item for item in checklist if role_can(role, item["perm"])]
    return render(
        request,
        "accounts/dashboard.html",
        {
            "checklist": checklist,
            "members_count": selectors.members(account).count(),
            "recent_activity": selectors.audit_entries(account)[:8],
        },
    )


@login_required
def account_new(request: UserRequest) -> HttpResponse:
    """Create an account: for a person who belongs to none (left, or was removed), or who
    runs several companies."""
    form = AccountSettingsForm(
        request.POST or None, initial={"default_from_email": request.user.email}
    )
    if request.method == "POST" and form.is_valid():
        account = services.account_create(owner=request.user, **form.cleaned_data)
        request.session[selectors.SESSION_ACCOUNT_KEY] = account.pk
        messages.success(request, f"{account.name} is ready.")
        return redirect("dashboard")
    return render(
        request,
        "accounts/account_new.html",
        {"form": form, "memberships": selectors.memberships_of(request.user)},
    )


@login_required
@require_POST
def account_switch(request: UserRequest, account_id: int) -> HttpResponse:
    membership = selectors.memberships_of(request.user).filter(account_id=account_id).first()
    if membership is None:
        raise Http404("No such account.")
    request.session[selectors.SESSION_ACCOUNT_KEY] = membership.account_id
    messages.success(request, f"You are now working in {membership.account.name}.")
    return redirect("dashboard")


@account_required(Perm.MANAGE_ACCOUNT)
def account_settings(request: AccountRequest) -> HttpResponse:
    # The form gets a copy of the values, not the instance: the service compares old and
    # new values to record what changed.
    initial = model_to_dict(request.account, fields=AccountSettingsForm.Meta.fields)
    form = AccountSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.account_update(account=request.account, actor=request.user, **form.cleaned_data)
        messages.success(request, "Settings saved.")
        return redirect("account_settings")
    return render(request, "accounts/settings.html", {"form": form})
