from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache

from accounts import selectors, services
from accounts.forms import ApiKeyForm, ConfirmForm
from accounts.http import AccountRequest
from accounts.models import ApiKey
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required

NEW_KEY_SESSION = "missive_new_api_key"


@account_required(Perm.MANAGE_API_KEYS)
@never_cache
def api_keys(request: AccountRequest) -> HttpResponse:
    """Create and list keys. A new key is shown once, on the page the creation redirects
    to (so reloading it creates nothing), and never cached by the browser."""
    form = ApiKeyForm(request.POST or None, granter_role=request.membership.role)
    if request.method == "POST" and form.is_valid():
        try:
            api_key, secret = services.api_key_create(
                by=request.membership,
                name=form.cleaned_data["name"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            request.session[NEW_KEY_SESSION] = secret
            messages.success(request, f"API key “{api_key.name}” created. Copy it now.")
            return redirect("api_keys")
    return render(
        request,
        "accounts/api_keys.html",
        {
            "form": form,
            "keys": selectors.api_keys(request.account),
            "new_key": request.session.pop(NEW_KEY_SESSION, None),
        },
        status=400 if form.errors else 200,
    )


@account_required(Perm.MANAGE_API_KEYS)
def api_key_revoke(request: AccountRequest, api_key_id: int) -> HttpResponse:
    api_key = get_for_account_or_404(ApiKey, request.account, pk=api_key_id)
    if request.method == "POST":
        services.api_key_revoke(by=request.membership, api_key=api_key)
        messages.success(request, f"API key “{api_key.name}” revoked.")
        return redirect("api_keys")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": ConfirmForm(),
            "title": f"Revoke the API key “{api_key.name}”?",
            "body": "Programs using it are refused from now on. This cannot be undone.",
            "confirm_label": "Revoke key",
            "cancel_url": "api_keys",
        },
    )
