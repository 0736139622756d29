"""API-key authentication and the account an API request acts for.

Kept apart from the API views: DRF imports these classes while loading its own views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts import selectors, services
from accounts.models import Account, ApiKey, User
from accounts.roles import Perm, role_can

if TYPE_CHECKING:
    from rest_framework.views import APIView

    # The mixin's methods run inside an APIView; it cannot subclass one at run time,
    # since rest_framework.views imports this module while it loads.
    _APIViewBase = APIView
else:
    _APIViewBase = object


@dataclass(frozen=True)
class ApiClient:
    """``request.user`` for a request authenticated by an API key."""

    api_key: ApiKey
    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_active = True
    pk = None

    def __str__(self) -> str:
        return f"API key {self.api_key.name} ({self.api_key.hint}…)"


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiClient, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <api key>'."
            )
        api_key = services.api_key_authenticate(header[1].decode(errors="replace"))
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        client = ApiClient(api_key)
        services.acting_label.set(str(client))
        return client, api_key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


def acting_for(request: Request) -> tuple[Account | None, str | None, User | None]:
    """(account, role, human user or None) of an API request."""
    if isinstance(request.auth, ApiKey):
        return request.auth.account, request.auth.role, None
    membership = getattr(request._request, "membership", None)
    if membership and request.user.is_authenticated:
        return membership.account, membership.role, request.user
    return None, None, None


class HasAccount(BasePermission):
    """The request acts for an account and its role has the view's permission for the
    method (``required_perms = {"GET": Perm.VIEW, …}``; reads need VIEW by default)."""

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        account, role, _user = acting_for(request)
        if account is None or role is None:
            if request.user and request.user.is_authenticated:
                self.message = "You are not a member of any account."
            else:
                raise exceptions.NotAuthenticated(
                    "Authenticate with 'Authorization: Bearer <api key>'."
                )
            return False
        if (
            request.user.is_authenticated
            and not isinstance(request.auth, ApiKey)
            and selectors.mfa_missing(request.user, account)
        ):
            self.message = (
                f"{account.name} requires two-factor authentication: set it up in the app "
                "before using the API with your login."
            )
            return False
        perms = getattr(view, "required_perms", {})
        needed = perms.get(
            request.method, Perm.VIEW if request.method in ("GET", "HEAD", "OPTIONS") else None
        )
        if needed is None:
            return False
        return role_can(role, needed)


class AccountAPIMixin(_APIViewBase):
    """Gives an API view ``self.account``, ``self.role`` and ``self.actor``, and refuses
    a query parameter given twice: every parameter of the API takes one value, and
    Django would silently keep the last.

    ``account`` and ``role`` are there once ``HasAccount`` (the default permission of
    every endpoint) has let the request in."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        repeated = [name for name, values in request.query_params.lists() if len(values) > 1]
        if repeated:
            raise exceptions.ValidationError(
                {name: ["Give this parameter once."] for name in repeated}
            )

    @property
    def account(self) -> Account:
        account = acting_for(self.request)[0]
        assert account is not None, "HasAccount lets no request without an account in"
        return account

    @property
    def role(self) -> str:
        role = acting_for(self.request)[1]
        assert role is not None, "HasAccount lets no request without a role in"
        return role

    @property
    def actor(self) -> User | None:
        return acting_for(self.request)[2]
