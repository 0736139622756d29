"""The account endpoints of the API."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import generics, serializers

from accounts import selectors, services
from accounts.api.auth import AccountAPIMixin
from accounts.api.fields import StrictJSONMixin
from accounts.models import Account, Membership
from accounts.roles import Perm


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "A Missive API key."}


class AccountSerializer(StrictJSONMixin, serializers.ModelSerializer):
    class Meta:
        model = Account
        fields = [
            "id",
            "name",
            "postal_address",
            "default_from_name",
            "default_from_email",
            "time_zone",
            "status",
            "require_mfa",
            "created_at",
        ]
        read_only_fields = ["id", "status", "require_mfa", "created_at"]


class AccountView(AccountAPIMixin, generics.RetrieveUpdateAPIView):
    """The account this key or session acts for."""

    serializer_class = AccountSerializer
    required_perms = {"GET": Perm.VIEW, "PUT": Perm.MANAGE_ACCOUNT, "PATCH": Perm.MANAGE_ACCOUNT}

    def get_object(self) -> Account:
        return self.account

    def perform_update(self, serializer: serializers.BaseSerializer[Account]) -> None:
        serializer.instance = services.account_update(
            account=Account.objects.get(pk=self.account.pk),
            actor=self.actor,
            **serializer.validated_data,
        )


class MemberSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.get_full_name", read_only=True)
    role = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class MemberListView(AccountAPIMixin, generics.ListAPIView):
    """Members of the account and their roles."""

    serializer_class = MemberSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[Membership]:
        return selectors.members(self.account)
