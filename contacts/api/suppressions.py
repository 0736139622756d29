"""The suppression endpoints of the API: the account's suppression list (kept as hashes),
adding an address to it, reading and removing one entry."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.api.pagination import CursorPage
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from contacts import selectors, services
from contacts.api.serializers import (
    SuppressionCreateSerializer,
    SuppressionFilterSerializer,
    SuppressionSerializer,
)
from contacts.models import Suppression, email_sha256_forms

READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT


class SuppressionPagination(CursorPage):
    ordering = ("-created_at", "-id")


class SuppressionsView(AccountAPIMixin, generics.ListAPIView):
    """The account's suppression list: addresses that are never mailed, kept as hashes."""

    serializer_class = SuppressionSerializer
    pagination_class = SuppressionPagination
    required_perms = {"GET": READ, "POST": WRITE}

    def get_queryset(self) -> QuerySet[Suppression]:
        params = SuppressionFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        queryset = selectors.suppressed(self.account)
        if params.validated_data.get("email"):
            queryset = queryset.filter(
                email_sha256__in=email_sha256_forms(params.validated_data["email"])
            )
        return queryset

    @extend_schema(parameters=[SuppressionFilterSerializer])
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        request=SuppressionCreateSerializer,
        responses={
            200: OpenApiResponse(SuppressionSerializer, description="Already suppressed."),
            201: OpenApiResponse(SuppressionSerializer, description="Suppressed."),
        },
        description="Never mail this address again, whatever list it is on. Idempotent.",
    )
    def post(self, request: Request) -> Response:
        serializer = SuppressionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        existed = (
            selectors.suppressed(self.account)
            .filter(email_sha256__in=email_sha256_forms(data["email"]))
            .exists()
        )
        suppression = services.suppression_add(account=self.account, actor=self.actor, **data)
        return Response(
            SuppressionSerializer(suppression).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


class SuppressionView(AccountAPIMixin, APIView):
    required_perms = {"GET": READ, "DELETE": WRITE}

    def _suppression(self, suppression_id: int) -> Suppression:
        return get_for_account_or_404(Suppression, self.account, pk=suppression_id)

    @extend_schema(responses=SuppressionSerializer)
    def get(self, request: Request, suppression_id: int) -> Response:
        return Response(SuppressionSerializer(self._suppression(suppression_id)).data)

    @extend_schema(
        responses={204: None},
        description="Take the address off the account's suppression list. It is not "
        "subscribed again to anything by this.",
    )
    def delete(self, request: Request, suppression_id: int) -> Response:
        services.suppression_remove(suppression=self._suppression(suppression_id), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
