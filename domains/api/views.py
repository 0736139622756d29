"""The sending domains endpoints of the API, under /api/v1/: the same duties as the pages,
through the same services. Another account's domain answers 404 like a missing one."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.api.errors import ValidationErrorSerializer
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from domains import selectors, services
from domains.api.serializers import (
    DomainAddSerializer,
    DomainDetailSerializer,
    DomainSerializer,
    DomainUpdateSerializer,
)
from domains.models import SendingDomain

READ = Perm.VIEW
MANAGE = Perm.MANAGE_ACCOUNT
REFUSED = OpenApiResponse(ValidationErrorSerializer, description="Refused, with the reason.")


class DomainsView(AccountAPIMixin, generics.ListAPIView):
    serializer_class = DomainSerializer
    pagination_class = None
    required_perms = {"GET": READ, "POST": MANAGE}

    def get_queryset(self) -> QuerySet[SendingDomain]:
        return selectors.domains(self.account)

    @extend_schema(operation_id="domains_list", description="The account's sending domains.")
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        operation_id="domains_add",
        request=DomainAddSerializer,
        responses={
            201: DomainDetailSerializer,
            400: REFUSED,
            409: OpenApiResponse(
                ValidationErrorSerializer,
                description="The domain is already yours, or verified by another account.",
            ),
        },
        description="Add a domain: Missive makes its DKIM key (RSA-2048, and Ed25519 when "
        "asked) and answers the records to publish. A domain verified by another account "
        "is refused (409).",
    )
    def post(self, request: Request) -> Response:
        serializer = DomainAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            domain = services.domain_add(
                account=self.account, actor=self.actor, **serializer.validated_data
            )
        except services.DomainTaken as taken:
            return Response(
                {"detail": f"name: {' '.join(taken.messages)}", "errors": {"name": taken.messages}},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(DomainDetailSerializer(domain).data, status=status.HTTP_201_CREATED)


class DomainAPIView(AccountAPIMixin, APIView):
    def domain(self, domain_id: int) -> SendingDomain:
        return get_for_account_or_404(SendingDomain, self.account, pk=domain_id)


class DomainView(DomainAPIView):
    required_perms = {"GET": READ, "PATCH": MANAGE, "DELETE": MANAGE}

    @extend_schema(operation_id="domains_retrieve", responses=DomainDetailSerializer)
    def get(self, request: Request, domain_id: int) -> Response:
        return Response(DomainDetailSerializer(self.domain(domain_id)).data)

    @extend_schema(
        operation_id="domains_update",
        request=DomainUpdateSerializer,
        responses={200: DomainDetailSerializer, 400: REFUSED},
        description="Turn the warm-up on or off, or change its daily caps.",
    )
    def patch(self, request: Request, domain_id: int) -> Response:
        domain = self.domain(domain_id)
        serializer = DomainUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        domain = services.domain_update(
            domain=domain, actor=self.actor, **serializer.validated_data
        )
        return Response(DomainDetailSerializer(domain).data)

    @extend_schema(
        operation_id="domains_delete",
        responses={204: None},
        description="Remove the domain and its keys; campaigns from it cannot be sent until "
        "it is added and verified again.",
    )
    def delete(self, request: Request, domain_id: int) -> Response:
        services.domain_delete(domain=self.domain(domain_id), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DomainCheckView(DomainAPIView):
    required_perms = {"POST": MANAGE}

    @extend_schema(
        operation_id="domains_check",
        request=None,
        responses=DomainDetailSerializer,
        description="Look the domain's records up in DNS now. The domain is verified once "
        "its DKIM record is found; each record says found, missing, wrong or unavailable.",
    )
    def post(self, request: Request, domain_id: int) -> Response:
        domain = self.domain(domain_id)
        services.domain_check(domain=domain, actor=self.actor)
        return Response(DomainDetailSerializer(domain).data)


class DomainRotateView(DomainAPIView):
    required_perms = {"POST": MANAGE}

    @extend_schema(
        operation_id="domains_rotate_keys",
        request=None,
        responses={200: DomainDetailSerializer, 400: REFUSED},
        description="Make new DKIM keys under new selectors. They sign once a check finds "
        "them published; the old keys stay valid for a grace period.",
    )
    def post(self, request: Request, domain_id: int) -> Response:
        domain = self.domain(domain_id)
        services.domain_rotate_keys(domain=domain, actor=self.actor)
        return Response(DomainDetailSerializer(domain).data)
