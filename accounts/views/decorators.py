from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBase
from django.shortcuts import redirect

from accounts.closing import closed_memberships
from accounts.http import UserRequest, WebRequest
from accounts.roles import Perm, role_can

View = Callable[..., HttpResponseBase]


def account_required(perm: Perm = Perm.VIEW) -> Callable[[View], View]:
    """The view acts inside the current account and needs ``perm`` there.

    No login: to the login page. No account: to the page that creates one. A role
    without the permission: 403 with the reason.
    """

    def decorator(view: View) -> View:
        @wraps(view)
        @login_required
        def wrapper(request: UserRequest, *args: object, **kwargs: object) -> HttpResponseBase:
            if not request.membership:
                if closed_memberships(request.user):
                    return redirect("account_closed")
                return redirect("account_new")
            if not role_can(request.membership.role, perm):
                raise PermissionDenied(
                    f"Your role ({request.membership.get_role_display()}) cannot do this."
                )
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def staff_required(view: View) -> View:
    @wraps(view)
    @login_required
    def wrapper(request: WebRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if not request.user.is_staff:
            raise PermissionDenied("This page is for Missive operators.")
        return view(request, *args, **kwargs)

    return wrapper
