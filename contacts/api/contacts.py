"""The contact endpoints of the API: keyset pages of contacts (or the one with an
address), create, create-or-update by address (upsert), read, change and delete one."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.api.errors import ErrorSerializer
from accounts.api.schema import DUPLICATE
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from contacts import selectors, services, tagging
from contacts.api.serializers import (
    ContactDetailSerializer,
    ContactFilterSerializer,
    ContactPageSerializer,
    ContactSerializer,
    ContactWriteSerializer,
)
from contacts.api.subscriptions import subscribe_from_api
from contacts.models import Contact, ContactList, Subscription, Tag

API = Subscription.Source.API
READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT


def _tag(view: AccountAPIMixin, contact: Contact, names: list[str]) -> None:
    """Put the named tags on the contact, made when missing (through contacts.tagging)."""
    one = Contact.objects.filter(pk=contact.pk)
    for name in names:
        tagging.tag_contacts(
            account=view.account, actor=view.actor, tag=name, contacts=one, how="api"
        )


class ContactsView(AccountAPIMixin, APIView):
    required_perms = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="contacts_list",
        parameters=[ContactFilterSerializer],
        responses={
            200: ContactPageSerializer,
            404: OpenApiResponse(
                ErrorSerializer, description="No such list (`list`) or tag (`tag`)."
            ),
        },
        description="Contacts by keyset pages: follow `next` until it is null. "
        "A page costs the same at the millionth contact as at the first.",
    )
    def get(self, request: Request) -> Response:
        params = ContactFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        contact_list = (
            get_for_account_or_404(ContactList, self.account, pk=data["list"])
            if data.get("list")
            else None
        )
        tag = get_for_account_or_404(Tag, self.account, pk=data["tag"]) if data.get("tag") else None
        if data.get("email"):
            return Response(self._exact(data["email"], contact_list, data.get("status", "")))
        try:
            page = selectors.contacts_page(
                self.account,
                contact_list=contact_list,
                tag=tag,
                status=data.get("status", ""),
                search=data.get("q", ""),
                sort=data["sort"],
                cursor=data.get("after", ""),
                page_size=data["page_size"],
            )
        except DjangoValidationError:
            # a cursor made for another sort order, or forged
            raise DjangoValidationError({"after": "This cursor is not valid here."}) from None
        next_url = (
            replace_query_param(request.build_absolute_uri(), "after", page.next_cursor)
            if page.next_cursor
            else None
        )
        return Response(
            {
                "results": ContactSerializer(page.contacts, many=True).data,
                "next": next_url,
                "count": page.total,
                "count_is_capped": page.total_is_capped,
            }
        )

    def _exact(self, email: str, contact_list: ContactList | None, status: str) -> dict:
        contact = selectors.find_contact(self.account, email)
        if contact and contact_list:
            on_list = selectors.subscriptions_of(contact).filter(contact_list=contact_list)
            if status:
                on_list = on_list.filter(status=status)
            contact = contact if on_list.exists() else None
        results = [contact] if contact else []
        return {
            "results": ContactSerializer(results, many=True).data,
            "next": None,
            "count": len(results),
            "count_is_capped": False,
        }

    @extend_schema(
        request=ContactWriteSerializer,
        responses={201: ContactDetailSerializer, 409: DUPLICATE},
        description="Create a contact, subscribed (source `api`) to the given lists.",
    )
    def post(self, request: Request) -> Response:
        serializer = ContactWriteSerializer(data=request.data, context={"account": self.account})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        tags = data.pop("tags", [])
        with transaction.atomic():
            contact = services.contact_create(
                account=self.account, actor=self.actor, source=API, **data
            )
            _tag(self, contact, tags)
        return Response(ContactDetailSerializer(contact).data, status=status.HTTP_201_CREATED)


class ContactUpsertView(AccountAPIMixin, APIView):
    required_perms = {"POST": WRITE}

    @extend_schema(
        request=ContactWriteSerializer,
        responses={
            200: OpenApiResponse(ContactDetailSerializer, description="Updated."),
            201: OpenApiResponse(ContactDetailSerializer, description="Created."),
        },
        description="Create the contact, or update the one with this address: the fields "
        "given overwrite the stored ones, the others are kept. The contact is subscribed "
        "to the given lists; an address that is suppressed, or that unsubscribed from one "
        "of them, is refused.",
    )
    def post(self, request: Request) -> Response:
        serializer = ContactWriteSerializer(data=request.data, context={"account": self.account})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        tags = data.pop("tags", [])
        with transaction.atomic():
            contact = selectors.find_contact(self.account, data["email"])
            if contact is None:
                contact = services.contact_create(
                    account=self.account, actor=self.actor, source=API, **data
                )
                _tag(self, contact, tags)
                return Response(
                    ContactDetailSerializer(contact).data, status=status.HTTP_201_CREATED
                )
            given = {k: data[k] for k in ("first_name", "last_name", "attributes") if k in data}
            if given:
                contact = services.contact_update(contact=contact, actor=self.actor, **given)
            for contact_list in data.get("lists", []):
                subscribe_from_api(
                    contact=contact,
                    contact_list=contact_list,
                    legal_basis=data["legal_basis"],
                    consent_text=data["consent_text"],
                )
            _tag(self, contact, tags)
        return Response(ContactDetailSerializer(contact).data)


class ContactView(AccountAPIMixin, APIView):
    """One contact, with their subscriptions and the consent proof of each."""

    required_perms = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    def _contact(self, contact_id: int) -> Contact:
        return get_for_account_or_404(Contact, self.account, pk=contact_id)

    @extend_schema(responses=ContactDetailSerializer)
    def get(self, request: Request, contact_id: int) -> Response:
        return Response(ContactDetailSerializer(self._contact(contact_id)).data)

    @extend_schema(request=ContactSerializer, responses=ContactDetailSerializer)
    def patch(self, request: Request, contact_id: int) -> Response:
        contact = self._contact(contact_id)
        serializer = ContactSerializer(contact, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        contact = services.contact_update(
            contact=contact, actor=self.actor, **serializer.validated_data
        )
        return Response(ContactDetailSerializer(contact).data)

    @extend_schema(
        responses={204: None},
        description="Delete the contact, their subscriptions and their consent proof. "
        "To make sure they are never mailed again, add a suppression instead.",
    )
    def delete(self, request: Request, contact_id: int) -> Response:
        contact = self._contact(contact_id)
        services.contacts_delete(account=self.account, actor=self.actor, contact_ids=[contact.pk])
        return Response(status=status.HTTP_204_NO_CONTENT)
