from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.functional import SimpleLazyObject

from accounts.http import WebRequest
from accounts.models import Account, Membership
from accounts.selectors import SESSION_ACCOUNT_KEY, current_membership, mfa_missing
from accounts.services import acting_label

Handler = Callable[[HttpRequest], HttpResponse]


class CurrentAccountMiddleware:
    """Sets ``request.membership`` and ``request.account``: whom a logged-in person acts
    for. Resolved lazily, so public endpoints never pay for it."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: WebRequest) -> HttpResponse:
        def membership() -> Membership | None:
            return current_membership(request.user, request.session.get(SESSION_ACCOUNT_KEY))

        # The lazy objects stand in for what they resolve to (a falsy one for nobody).
        request.membership = cast("Membership | None", SimpleLazyObject(membership))
        request.account = cast(
            "Account | None",
            SimpleLazyObject(lambda: request.membership.account if request.membership else None),
        )
        # An API key's label (accounts.services.acting_label) lasts one request.
        token = acting_label.set(None)
        try:
            return self.get_response(request)
        finally:
            acting_label.reset(token)


class RequireMFAMiddleware:
    """When an owner requires two-factor authentication for the account, a member
    without an authenticator app is sent to set one up before anything else."""

    # Login and two-factor pages, the way out to another account, public pages. The API
    # checks the same rule itself (accounts.api.auth.HasAccount).
    EXEMPT_PREFIXES = (
        "/accounts/",
        "/account/",
        "/static/",
        "/healthz",
        "/api/",
        "/invitations/",
        "/do-not-contact/",
        "/subscribe/",
        # The links inside campaign messages, which any member may also receive.
        "/t/",
        "/u/",
        "/v/",
    )

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: WebRequest) -> HttpResponse:
        if (
            request.user.is_authenticated
            and not request.path.startswith(self.EXEMPT_PREFIXES)
            and request.membership
            and mfa_missing(request.user, request.membership.account)
        ):
            messages.warning(
                request,
                f"{request.membership.account.name} requires two-factor authentication: "
                "set up an authenticator app to continue.",
            )
            return redirect("mfa_activate_totp")
        return self.get_response(request)


class ContentSecurityPolicyMiddleware:
    """A strict Content-Security-Policy on every page (settings.CONTENT_SECURITY_POLICY)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.policy = settings.CONTENT_SECURITY_POLICY

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response
