"""Who is in a journey: its enrollments, by pages, one with its history; contacts put in
by hand (by the journey's entry rule) or taken out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.pagination import CursorPage
from accounts.scoping import get_for_account_or_404
from contacts.models import Contact, Subscription
from journeys import selectors, services
from journeys.api.journeys import (
    CONFLICT,
    READ,
    REFUSED,
    SEND,
    WRITE,
    JourneyAPIView,
    StateConflict,
    check_possible,
)
from journeys.api.serializers import (
    EnrolledSerializer,
    EnrollmentDetailSerializer,
    EnrollmentFilterSerializer,
    EnrollmentSerializer,
    EnrollSerializer,
)
from journeys.engine import list_ids
from journeys.models import Enrollment, Journey

E = Enrollment.Status
ENTRY_RULE = {
    Journey.Entry.ONCE: "They entered this journey before: it is entered once ever.",
    Journey.Entry.ONE_AT_A_TIME: "They are in this journey now: it is entered once at a time.",
    Journey.Entry.EVERY_TIME: "They were entered a moment ago.",
}


class EnrollmentPagination(CursorPage):
    ordering = ("-entered_at", "-id")


class EnrollmentsView(JourneyAPIView, generics.ListAPIView):
    serializer_class = EnrollmentSerializer
    pagination_class = EnrollmentPagination
    required_perms = {"GET": READ, "POST": SEND}

    def get_queryset(self) -> QuerySet[Enrollment]:
        journey = self.journey(self.kwargs["journey_id"])
        params = EnrollmentFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        queryset = selectors.enrollments(self.account).filter(journey=journey)
        if data.get("status"):
            queryset = queryset.filter(status=data["status"])
        if data.get("contact"):
            queryset = queryset.filter(contact_id=data["contact"])
        if data.get("email"):
            queryset = queryset.filter(contact__email=data["email"])
        return queryset

    @extend_schema(
        operation_id="journeys_enrollments_list",
        parameters=[EnrollmentFilterSerializer],
        description="Who entered the journey, the latest first, by cursor pages: where each "
        "one is and, once out, why.",
    )
    def get(self, request: Request, journey_id: int) -> Response:
        return super().get(request)

    @extend_schema(
        operation_id="journeys_enroll",
        request=EnrollSerializer,
        responses={200: EnrolledSerializer, 400: REFUSED, 409: CONFLICT},
        description="Put contacts in the live journey by hand, as its trigger would: its "
        "entry rule applies and, when it says so, only those subscribed to one of its lists "
        "enter. Answers who entered, and why each of the others did not. A journey that is "
        "not live answers 409; an id or address that is not one of your contacts, 400.",
    )
    def post(self, request: Request, journey_id: int) -> Response:
        journey = self.journey(journey_id)
        serializer = EnrollSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contacts = self._contacts(serializer.validated_data)
        check_possible(journey, "enroll")
        try:
            made = services.contacts_enroll(journey=journey, actor=self.actor, contacts=contacts)
        except DjangoValidationError as refused:
            # Only a journey no longer live is refused: it changed since it was read.
            raise StateConflict(" ".join(refused.messages)) from None
        made_now = selectors.enrollments(self.account).filter(pk__in=made)
        entered = dict(made_now.values_list("contact_id", "pk"))
        return Response(EnrolledSerializer(_answer(journey, contacts, entered)).data)

    def _contacts(self, data: dict[str, Any]) -> list[Contact]:
        """The contacts named, in the order given, each once; 400 naming the first that
        is not one of the account's."""
        ids = [("contact_id", data["contact_id"])] if "contact_id" in data else []
        ids += [(f"contact_ids.{i}", pk) for i, pk in enumerate(data.get("contact_ids", []))]
        emails = [("email", data["email"])] if "email" in data else []
        emails += [(f"emails.{i}", email) for i, email in enumerate(data.get("emails", []))]
        mine = Contact.objects.for_account(self.account)
        by_id = {c.pk: c for c in mine.filter(pk__in=[pk for _, pk in ids])}
        by_email = {c.email: c for c in mine.filter(email__in=[e for _, e in emails])}
        errors: dict[str, list[str]] = {}
        found: dict[int, Contact] = {}
        for field, pk in ids:
            if pk in by_id:
                found.setdefault(pk, by_id[pk])
            else:
                errors[field] = [f"No contact with id {pk}."]
        for field, email in emails:
            contact = by_email.get(email)
            if contact is not None:
                found.setdefault(contact.pk, contact)
            else:
                errors[field] = ["No contact with that address."]
        if errors:
            raise ValidationError(errors)
        return list(found.values())


def _answer(
    journey: Journey, contacts: Sequence[Contact], entered: dict[int, int]
) -> dict[str, list[dict[str, Any]]]:
    """Who entered, and for each of the others the reason: not subscribed to the
    journey's lists (when it takes only those), or else its entry rule."""
    left_out = [c.pk for c in contacts if c.pk not in entered]
    subscribed: set[int] = set()
    if left_out and journey.exit_on_unsubscribe:
        subscribed = set(
            Subscription.objects.filter(
                contact_id__in=left_out,
                contact_list_id__in=list_ids(journey),
                status=Subscription.Status.SUBSCRIBED,
            ).values_list("contact_id", flat=True)
        )
    enrolled, not_enrolled = [], []
    for contact in contacts:
        if contact.pk in entered:
            enrolled.append(
                {
                    "contact_id": contact.pk,
                    "email": contact.email,
                    "enrollment": entered[contact.pk],
                }
            )
        elif journey.exit_on_unsubscribe and contact.pk not in subscribed:
            not_enrolled.append(
                {
                    "contact_id": contact.pk,
                    "email": contact.email,
                    "reason": "not_subscribed",
                    "detail": "Not subscribed to any of the journey's lists.",
                }
            )
        else:
            not_enrolled.append(
                {
                    "contact_id": contact.pk,
                    "email": contact.email,
                    "reason": "entry_rule",
                    "detail": ENTRY_RULE[Journey.Entry(journey.entry)],
                }
            )
    return {"enrolled": enrolled, "not_enrolled": not_enrolled}


class EnrollmentView(JourneyAPIView):
    """One contact's way through the journey."""

    required_perms = {"GET": READ, "DELETE": WRITE}

    def enrollment(self, journey_id: int, enrollment_id: int) -> Enrollment:
        journey = self.journey(journey_id)
        return get_for_account_or_404(Enrollment, self.account, pk=enrollment_id, journey=journey)

    @extend_schema(
        operation_id="journeys_enrollment_retrieve",
        responses=EnrollmentDetailSerializer,
        description="The enrollment, with the steps reached and when.",
    )
    def get(self, request: Request, journey_id: int, enrollment_id: int) -> Response:
        return Response(EnrollmentDetailSerializer(self.enrollment(journey_id, enrollment_id)).data)

    @extend_schema(
        operation_id="journeys_enrollment_remove",
        responses={200: OpenApiResponse(EnrollmentDetailSerializer, description="Taken out.")},
        description="Take the contact out of the journey now: nothing more of it is sent "
        "to them (an email already queued still goes). An enrollment that has ended is "
        "answered as it is.",
    )
    def delete(self, request: Request, journey_id: int, enrollment_id: int) -> Response:
        enrollment = services.enrollment_remove(
            enrollment=self.enrollment(journey_id, enrollment_id), actor=self.actor
        )
        fresh = selectors.enrollments(self.account).get(pk=enrollment.pk)
        return Response(EnrollmentDetailSerializer(fresh).data, status=status.HTTP_200_OK)
