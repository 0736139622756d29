from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.roles import PERMISSIONS
from accounts.selectors import memberships_of


def current_account(request: HttpRequest) -> dict[str, object]:
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    context: dict[str, object] = {
        "current_account": None,
        "current_membership": None,
        "perms_in_account": set(),
        # Lazy: only pages that show the account switcher query it.
        "user_memberships": SimpleLazyObject(
            lambda: list(memberships_of(user)) if user and user.is_authenticated else []
        ),
    }
    if membership:
        context.update(
            current_account=membership.account,
            current_membership=membership,
            perms_in_account={str(p) for p in PERMISSIONS[membership.role]},
        )
    return context
