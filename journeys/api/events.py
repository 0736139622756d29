"""Events of contacts, told by the account's own systems: recorded once per
Idempotency-Key (a retried POST answers the first event and enrolls no one again), they
start the journeys they trigger and end those whose goal they are."""

from __future__ import annotations

import re

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.auth import AccountAPIMixin
from accounts.api.pagination import CursorPage
from contacts import selectors as contact_selectors
from contacts.models import Contact
from journeys import selectors, services
from journeys.api.journeys import READ, REFUSED, WRITE
from journeys.api.serializers import (
    IDEMPOTENCY_KEY,
    EventCreateSerializer,
    EventFilterSerializer,
    EventRecordedSerializer,
    EventSerializer,
)
from journeys.models import ContactEvent

KEY_HEADER = "Idempotency-Key"
_KEY = re.compile(IDEMPOTENCY_KEY)


class EventPagination(CursorPage):
    ordering = ("-occurred_at", "-id")


class EventsView(AccountAPIMixin, generics.ListAPIView):
    serializer_class = EventSerializer
    pagination_class = EventPagination
    required_perms = {"GET": READ, "POST": WRITE}

    def get_queryset(self) -> QuerySet[ContactEvent]:
        params = EventFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        queryset = selectors.contact_events(self.account).select_related("contact")
        if data.get("contact"):
            queryset = queryset.filter(contact_id=data["contact"])
        if data.get("email"):
            queryset = queryset.filter(contact__email=data["email"])
        if data.get("name"):
            queryset = queryset.filter(name=data["name"])
        return queryset

    @extend_schema(
        operation_id="events_list",
        parameters=[EventFilterSerializer],
        description="The events recorded, the latest to occur first, by cursor pages. "
        "Kept 13 months.",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        operation_id="events_record",
        request=EventCreateSerializer,
        parameters=[
            OpenApiParameter(
                KEY_HEADER,
                str,
                OpenApiParameter.HEADER,
                required=False,
                pattern=IDEMPOTENCY_KEY,
                description="Up to 200 visible ASCII characters of your choosing (a UUID): "
                "the same key again, whatever the body, answers the event first recorded "
                "with it, with 200, and does nothing else. Or `idempotency_key` in the "
                "body; both given, they must match.",
            )
        ],
        responses={
            201: OpenApiResponse(EventRecordedSerializer, description="Recorded."),
            200: OpenApiResponse(
                EventRecordedSerializer,
                description="The key was seen: the event first recorded with it.",
            ),
            400: REFUSED,
        },
        examples=[
            OpenApiExample(
                "An order",
                value={
                    "email": "ana@example.com",
                    "name": "order_placed",
                    "properties": {"order_id": "A-1042", "total": 59.9},
                    "occurred_at": "2030-06-01T09:00:00+02:00",
                },
                request_only=True,
            )
        ],
        description="Record something a contact did, named by their address or id (a "
        "contact is never made here: an unknown one is a 400). The live journeys it "
        "triggers enroll them at once; the journeys whose goal it is end for them at their "
        "next step.",
    )
    def post(self, request: Request) -> Response:
        serializer = EventCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = self._key(request, data.get("idempotency_key"))
        recorded = services.event_record(
            account=self.account,
            contact=self._contact(data),
            name=data["name"],
            properties=data["properties"],
            occurred_at=data.get("occurred_at"),
            idempotency_key=key,
        )
        answer = EventRecordedSerializer(recorded.event, context={"enrolled": recorded.enrolled})
        return Response(
            answer.data, status=status.HTTP_201_CREATED if recorded.created else status.HTTP_200_OK
        )

    def _key(self, request: Request, in_body: str | None) -> str | None:
        header = request.headers.get(KEY_HEADER)
        if header is not None and not _KEY.match(header):
            raise ValidationError(
                {KEY_HEADER: ["Give 1 to 200 visible ASCII characters (a UUID, say)."]}
            )
        if header is not None and in_body is not None and header != in_body:
            raise ValidationError(
                {"idempotency_key": [f"It differs from the {KEY_HEADER} header: give one."]}
            )
        return header if header is not None else in_body

    def _contact(self, data: dict) -> Contact:
        if "contact_id" in data:
            pk = data["contact_id"]
            contact = Contact.objects.for_account(self.account).filter(pk=pk).first()
            if contact is None:
                raise ValidationError({"contact_id": [f"No contact with id {pk}."]})
            return contact
        found = contact_selectors.find_contact(self.account, data["email"])
        if found is None:
            raise ValidationError({"email": ["No contact with that address."]})
        return found
