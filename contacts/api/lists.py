"""The list endpoints of the API: the account's lists with their counts, one list, its
deletion (with, if asked, the contacts on no other list)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from accounts.api.auth import AccountAPIMixin
from accounts.api.pagination import CursorPage
from accounts.api.schema import DUPLICATE
from accounts.roles import Perm
from contacts import selectors, services
from contacts.api.serializers import (
    ContactListSerializer,
    ListDeletedSerializer,
    ListDeleteParamsSerializer,
)
from contacts.models import ContactList

READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT


class ListPagination(CursorPage):
    ordering = ("name", "id")


@extend_schema_view(post=extend_schema(responses={201: ContactListSerializer, 409: DUPLICATE}))
class ContactListsView(AccountAPIMixin, generics.ListCreateAPIView):
    """The account's lists, with how many contacts are subscribed, unconfirmed and
    unsubscribed on each."""

    serializer_class = ContactListSerializer
    pagination_class = ListPagination
    required_perms = {"GET": READ, "POST": WRITE}

    def get_queryset(self) -> QuerySet[ContactList]:
        return selectors.lists_with_counts(self.account)

    def perform_create(self, serializer: BaseSerializer[ContactList]) -> None:
        contact_list = services.list_create(
            account=self.account, actor=self.actor, **serializer.validated_data
        )
        serializer.instance = self.get_queryset().get(pk=contact_list.pk)


@extend_schema_view(patch=extend_schema(responses={200: ContactListSerializer, 409: DUPLICATE}))
class ContactListView(AccountAPIMixin, generics.RetrieveUpdateDestroyAPIView):
    """One list, with its counts."""

    serializer_class = ContactListSerializer
    lookup_url_kwarg = "list_id"
    http_method_names = ["get", "patch", "delete", "head", "options"]
    required_perms = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    def get_queryset(self) -> QuerySet[ContactList]:
        return selectors.lists_with_counts(self.account)

    def perform_update(self, serializer: BaseSerializer[ContactList]) -> None:
        contact_list = serializer.instance
        assert contact_list is not None, "an update's serializer holds the list it changes"
        serializer.instance = services.list_update(
            contact_list=contact_list, actor=self.actor, **serializer.validated_data
        )

    @extend_schema(
        parameters=[ListDeleteParamsSerializer],
        responses={200: ListDeletedSerializer},
        description="Delete the list and its subscriptions; with `delete_contacts=true`, "
        "also the contacts that were on this list and on no other.",
    )
    def delete(self, request: Request, list_id: int) -> Response:
        contact_list = self.get_object()
        params = ListDeleteParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        deleted = services.list_delete(
            contact_list=contact_list,
            actor=self.actor,
            delete_contacts=params.validated_data["delete_contacts"],
        )
        return Response(ListDeletedSerializer({"contacts_deleted": deleted}).data)
