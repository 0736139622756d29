"""The contacts endpoints of the API.

Every object is fetched through ``get_for_account_or_404`` or a selector that starts from
``for_account``, so another account's list, contact or suppression answers 404 like a
missing one. Writes go through ``contacts.services``; a ValidationError they raise is
answered as a 400 naming the field (accounts/api/errors.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.api.errors import ErrorSerializer
from accounts.api.pagination import CursorPage
from accounts.api.schema import DUPLICATE
from accounts.models import Account, normalize_email
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from accounts.services import audit_log
from contacts import exporting, selectors, services
from contacts.api.serializers import (
    ContactDetailSerializer,
    ContactFilterSerializer,
    ContactListSerializer,
    ContactPageSerializer,
    ContactSerializer,
    ContactWriteSerializer,
    ListDeletedSerializer,
    ListDeleteParamsSerializer,
    ListSubscriptionSerializer,
    SubscribeSerializer,
    SuppressionCreateSerializer,
    SuppressionFilterSerializer,
    SuppressionSerializer,
    UnsubscribedSerializer,
    UnsubscribeSerializer,
)
from contacts.models import Contact, ContactList, Subscription, Suppression, email_sha256_forms

API = Subscription.Source.API
READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT


def _subscribe(*, contact: Contact, contact_list: ContactList, **consent: str) -> Subscription:
    """``subscription_subscribe`` from the API, its refusals (suppressed, unsubscribed
    earlier) naming the ``email`` field the caller sent."""
    try:
        return services.subscription_subscribe(
            contact=contact, contact_list=contact_list, source=API, **consent
        )
    except DjangoValidationError as error:
        if hasattr(error, "error_dict"):
            raise
        raise DjangoValidationError({"email": error.messages}) from None


# Lists


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

    def perform_create(self, serializer: ContactListSerializer) -> None:
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

    def perform_update(self, serializer: ContactListSerializer) -> None:
        serializer.instance = services.list_update(
            contact_list=serializer.instance, actor=self.actor, **serializer.validated_data
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


# Contacts


class ContactsView(AccountAPIMixin, APIView):
    required_perms = {"GET": READ, "POST": WRITE}

    @extend_schema(
        operation_id="contacts_list",
        parameters=[ContactFilterSerializer],
        responses={
            200: ContactPageSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such list (`list`)."),
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
        if data.get("email"):
            return Response(self._exact(data["email"], contact_list, data.get("status", "")))
        try:
            page = selectors.contacts_page(
                self.account,
                contact_list=contact_list,
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
        contact = services.contact_create(
            account=self.account, actor=self.actor, source=API, **serializer.validated_data
        )
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
        with transaction.atomic():
            contact = selectors.find_contact(self.account, data["email"])
            if contact is None:
                contact = services.contact_create(
                    account=self.account, actor=self.actor, source=API, **data
                )
                return Response(
                    ContactDetailSerializer(contact).data, status=status.HTTP_201_CREATED
                )
            given = {k: data[k] for k in ("first_name", "last_name", "attributes") if k in data}
            if given:
                contact = services.contact_update(contact=contact, actor=self.actor, **given)
            for contact_list in data.get("lists", []):
                _subscribe(
                    contact=contact,
                    contact_list=contact_list,
                    legal_basis=data["legal_basis"],
                    consent_text=data["consent_text"],
                )
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


# Subscriptions


class ListSubscribeView(AccountAPIMixin, APIView):
    required_perms = {"POST": WRITE}

    @extend_schema(
        request=SubscribeSerializer,
        responses={
            200: OpenApiResponse(ListSubscriptionSerializer, description="Already subscribed."),
            201: OpenApiResponse(ListSubscriptionSerializer, description="Subscribed."),
        },
        description="Subscribe an address to the list (source `api`), creating the contact "
        "if needed. A suppressed address, or one that unsubscribed from this list, is "
        "refused: only the person can subscribe again.",
    )
    def post(self, request: Request, list_id: int) -> Response:
        contact_list = get_for_account_or_404(ContactList, self.account, pk=list_id)
        serializer = SubscribeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        consent = {"legal_basis": data["legal_basis"], "consent_text": data["consent_text"]}
        with transaction.atomic():
            contact = selectors.find_contact(self.account, data["email"])
            if contact is None:
                contact = services.contact_create(
                    account=self.account,
                    actor=self.actor,
                    email=data["email"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    lists=[contact_list],
                    source=API,
                    **consent,
                )
                already = False
            else:
                already = (
                    selectors.subscriptions_of(contact)
                    .filter(contact_list=contact_list, status=Subscription.Status.SUBSCRIBED)
                    .exists()
                )
                _subscribe(contact=contact, contact_list=contact_list, **consent)
        subscription = selectors.subscriptions_of(contact).get(contact_list=contact_list)
        return Response(
            ListSubscriptionSerializer(subscription).data,
            status=status.HTTP_200_OK if already else status.HTTP_201_CREATED,
        )


class ListUnsubscribeView(AccountAPIMixin, APIView):
    required_perms = {"POST": WRITE}

    @extend_schema(
        request=UnsubscribeSerializer,
        responses=UnsubscribedSerializer,
        description="Unsubscribe an address from the list, at once. Idempotent: an address "
        "already unsubscribed, or not on the list, is answered 200 too.",
    )
    def post(self, request: Request, list_id: int) -> Response:
        contact_list = get_for_account_or_404(ContactList, self.account, pk=list_id)
        serializer = UnsubscribeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        email = normalize_email(serializer.validated_data["email"])
        contact = selectors.find_contact(self.account, email)
        subscription = (
            selectors.subscriptions_of(contact).filter(contact_list=contact_list).first()
            if contact
            else None
        )
        if subscription is not None:
            subscription = services.subscription_unsubscribe(
                subscription=subscription, actor=self.actor
            )
        result = {"email": email, "status": subscription.status if subscription else None}
        return Response(UnsubscribedSerializer(result).data)


# Suppressions


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


# Exports

Chunks = Callable[[Account, ContactList | None], Iterator[bytes]]
FORMATS: dict[str, tuple[Chunks, str]] = {
    "csv": (exporting.csv_chunks, "text/csv"),
    "ndjson": (exporting.ndjson_chunks, "application/x-ndjson"),
}


class JSONErrorsOnly(BaseContentNegotiation):
    """An export answers its file whatever the Accept header says, and its refusals in
    JSON: DRF must not turn ``Accept: text/csv`` into a 406."""

    def select_parser(self, request: Request, parsers: list) -> object:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


FMT = OpenApiParameter(
    "fmt", str, OpenApiParameter.PATH, enum=list(FORMATS), description="csv or ndjson"
)
EXPORT_RESPONSES = {
    (200, media_type): OpenApiResponse(
        OpenApiTypes.BINARY,
        description="Streamed: UTF-8 CSV with a header row, or one JSON object per line.",
    )
    for media_type in ("text/csv", "application/x-ndjson")
}


class ExportView(AccountAPIMixin, APIView):
    """Base of the exports: a streamed download, recorded in the account's activity log
    under the key (or member) that asked for it."""

    required_perms = {"GET": Perm.EXPORT}
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONErrorsOnly

    def export(self, contact_list: ContactList | None, fmt: str) -> StreamingHttpResponse:
        if fmt not in FORMATS:
            raise Http404("Exports come as .csv or .ndjson.")
        chunks, content_type = FORMATS[fmt]
        audit_log(
            account=self.account,
            actor=self.actor,
            action="contacts.exported",
            list=contact_list.name if contact_list else "all contacts",
            format=fmt,
        )
        stem = slugify(contact_list.name) if contact_list else "contacts"
        filename = f"{stem}-{timezone.now():%Y%m%d-%H%M}.{fmt}"
        response = StreamingHttpResponse(
            chunks(self.account, contact_list), content_type=f"{content_type}; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response


class ContactsExportView(ExportView):
    @extend_schema(
        operation_id="contacts_export",
        parameters=[FMT],
        responses=EXPORT_RESPONSES,
        description="Every contact, one row per subscription, with the consent proof.",
    )
    def get(self, request: Request, fmt: str) -> StreamingHttpResponse:
        return self.export(None, fmt)


class ListExportView(ExportView):
    @extend_schema(
        operation_id="lists_export",
        parameters=[FMT],
        responses=EXPORT_RESPONSES,
        description="The contacts of one list, with their subscription and consent proof.",
    )
    def get(self, request: Request, list_id: int, fmt: str) -> StreamingHttpResponse:
        contact_list = get_for_account_or_404(ContactList, self.account, pk=list_id)
        return self.export(contact_list, fmt)
