"""The subscription endpoints of the API: subscribe an address to a list (creating the
contact if needed), unsubscribe one."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.models import normalize_email
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from contacts import selectors, services
from contacts.api.serializers import (
    ListSubscriptionSerializer,
    SubscribeSerializer,
    UnsubscribedSerializer,
    UnsubscribeSerializer,
)
from contacts.models import Contact, ContactList, Subscription

API = Subscription.Source.API
WRITE = Perm.EDIT_CONTENT


def subscribe_from_api(
    *, contact: Contact, contact_list: ContactList, legal_basis: str, consent_text: str
) -> Subscription:
    """``subscription_subscribe`` from the API, its refusals (suppressed, unsubscribed
    earlier) naming the ``email`` field the caller sent."""
    try:
        return services.subscription_subscribe(
            contact=contact,
            contact_list=contact_list,
            source=API,
            legal_basis=legal_basis,
            consent_text=consent_text,
        )
    except DjangoValidationError as error:
        if hasattr(error, "error_dict"):
            raise
        raise DjangoValidationError({"email": error.messages}) from None


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
                subscribe_from_api(contact=contact, contact_list=contact_list, **consent)
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
