"""The segments endpoints of the API, under /api/v1/: the same duties as the pages,
through the same services. A definition that cannot be read answers 400 with each
message under the path of the part at fault (``definition.conditions.1.value``)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.api.errors import ErrorSerializer, ValidationErrorSerializer
from accounts.api.fields import StrictJSONMixin
from accounts.api.pagination import CursorPage
from accounts.models import validate_single_line
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from audiences import selectors, services
from audiences.conditions import MATCHES, MAX_CONDITIONS, Invalid
from audiences.models import Segment
from contacts import tagging
from contacts.api.exports import EXPORT_RESPONSES, FMT, ExportView
from contacts.api.serializers import ContactSerializer, TaggedSerializer, TagNameField
from contacts.models import Contact
from contacts.selectors import tags_with_counts

READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT
REFUSED = OpenApiResponse(
    ValidationErrorSerializer,
    description="Refused: each message under the path of the part at fault.",
)
DEFINITION_SCHEMA = {
    "type": "object",
    "description": "A group: `match` is `all` (AND) or `any` (OR); `conditions` holds "
    "conditions and groups (two levels of groups below the top at most, "
    f"{MAX_CONDITIONS} conditions in all). A condition is "
    '`{"field": …, "op": …, "value": …}`, some with `list`, `campaign` or `link`. '
    "Fields: email, first_name, last_name, email_domain, mailbox_provider (gmail, "
    "microsoft, yahoo, apple, other), tag (an id), created_at, updated_at, last_activity, "
    "list (an id; subscribed, not_subscribed, unsubscribed, unconfirmed, member, "
    "not_member), source, legal_basis, consent_at, attributes.<name> (by its type), "
    "opened and clicked (ever, never, in_last_days, not_in_last_days; optional campaign "
    "and, for clicked, link), received (a campaign id; ever, never), unopened_streak "
    "(at_least, less_than), soft_bounced (ever, in_last_days). Text operators: is, is_not, "
    "contains, not_contains, starts_with, ends_with, is_empty, is_not_empty. Numbers: eq, "
    "ne, lt, lte, gt, gte, between ([low, high]), is_empty, is_not_empty. Dates: on, before, "
    "after, between, in_last_days, more_than_days_ago, is_empty, is_not_empty, and for "
    "date attributes in_next_days and anniversary_within_days. Booleans: is_true, "
    "is_false, is_empty. People only: machine opens and clicks never count.",
    "properties": {
        "match": {"type": "string", "enum": list(MATCHES)},
        "conditions": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["conditions"],
    "example": {
        "match": "all",
        "conditions": [
            {"field": "attributes.city", "op": "is", "value": "Lyon"},
            {"field": "opened", "op": "in_last_days", "value": 30},
        ],
    },
}


@extend_schema_field(DEFINITION_SCHEMA)
class DefinitionField(serializers.JSONField):
    """A segment's definition: JSON, documented in the schema by DEFINITION_SCHEMA and
    checked against the account by the services."""


class SegmentSerializer(StrictJSONMixin, serializers.ModelSerializer):
    name = serializers.CharField(max_length=200, validators=[validate_single_line])
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    definition = DefinitionField()

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "definition", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]


class SegmentUpdateSerializer(SegmentSerializer):
    name = serializers.CharField(max_length=200, required=False, validators=[validate_single_line])
    definition = DefinitionField(required=False)


class PreviewSerializer(StrictJSONMixin, serializers.Serializer):
    definition = DefinitionField()


class SampleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Contacts who match now.")
    sample = SampleSerializer(many=True, help_text="Up to 10 of them, the newest first.")


def _refused(invalid: Invalid) -> ValidationError:
    return ValidationError(
        {f"definition.{path}": [message] for path, message in invalid.errors.items()}
    )


def _counted(account: Any, definition: Any) -> dict[str, Any]:
    try:
        clean, ctx = selectors.checked(account, definition)
    except Invalid as invalid:
        raise _refused(invalid) from None
    sample = selectors.matching_clean(clean, ctx).order_by("-pk").values("id", "email")[:10]
    return {"count": selectors.count(account, clean, now=ctx.now), "sample": list(sample)}


class SegmentsView(AccountAPIMixin, generics.ListAPIView):
    serializer_class = SegmentSerializer
    pagination_class = None
    required_perms = {"GET": READ, "POST": WRITE}

    def get_queryset(self) -> QuerySet[Segment]:
        return selectors.segments(self.account)

    @extend_schema(operation_id="segments_list", description="The account's segments.")
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        operation_id="segments_create",
        request=SegmentSerializer,
        responses={
            201: SegmentSerializer,
            400: REFUSED,
            409: OpenApiResponse(ValidationErrorSerializer, description="The name is taken."),
        },
        description="Save a segment. Its definition is checked against the account: an "
        "unknown field or attribute, an operator its type does not have, a bad date, or the "
        "id of a list, tag, campaign or link that is not the account's is refused by path.",
    )
    def post(self, request: Request) -> Response:
        serializer = SegmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            segment = services.segment_create(
                account=self.account, actor=self.actor, **serializer.validated_data
            )
        except Invalid as invalid:
            raise _refused(invalid) from None
        return Response(SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)


class SegmentAPIView(AccountAPIMixin, APIView):
    def segment(self, segment_id: int) -> Segment:
        return get_for_account_or_404(Segment, self.account, pk=segment_id)


class SegmentView(SegmentAPIView):
    required_perms = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    @extend_schema(operation_id="segments_retrieve", responses=SegmentSerializer)
    def get(self, request: Request, segment_id: int) -> Response:
        return Response(SegmentSerializer(self.segment(segment_id)).data)

    @extend_schema(
        operation_id="segments_update",
        request=SegmentUpdateSerializer,
        responses={
            200: SegmentSerializer,
            400: REFUSED,
            409: OpenApiResponse(ValidationErrorSerializer, description="The name is taken."),
        },
        description="Rename it, or change its description or definition.",
    )
    def patch(self, request: Request, segment_id: int) -> Response:
        segment = self.segment(segment_id)
        serializer = SegmentUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            services.segment_update(segment=segment, actor=self.actor, **serializer.validated_data)
        except Invalid as invalid:
            raise _refused(invalid) from None
        return Response(SegmentSerializer(segment).data)

    @extend_schema(
        operation_id="segments_delete",
        responses={
            204: None,
            409: OpenApiResponse(
                ErrorSerializer, description="A campaign not yet sent goes to it."
            ),
        },
        description="Delete the segment (no contact is changed). Refused while a campaign "
        "not yet sent uses it.",
    )
    def delete(self, request: Request, segment_id: int) -> Response:
        try:
            services.segment_delete(segment=self.segment(segment_id), actor=self.actor)
        except services.SegmentInUse as in_use:
            return Response({"detail": " ".join(in_use.messages)}, status=status.HTTP_409_CONFLICT)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentCountView(SegmentAPIView):
    required_perms = {"GET": READ}

    @extend_schema(
        operation_id="segments_count",
        responses={200: CountSerializer, 400: REFUSED},
        description="How many contacts match now, and a sample. A segment that names "
        "something deleted since it was saved answers 400 saying what.",
    )
    def get(self, request: Request, segment_id: int) -> Response:
        segment = self.segment(segment_id)
        return Response(CountSerializer(_counted(self.account, segment.definition)).data)


class SegmentPreviewView(AccountAPIMixin, APIView):
    required_perms = {"POST": READ}

    @extend_schema(
        operation_id="segments_preview",
        request=PreviewSerializer,
        responses={200: CountSerializer, 400: REFUSED},
        description="Count a definition without saving it, as the builder page does.",
    )
    def post(self, request: Request) -> Response:
        serializer = PreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = _counted(self.account, serializer.validated_data["definition"])
        return Response(CountSerializer(data).data)


class ById(CursorPage):
    ordering = "id"


class SegmentContactsView(SegmentAPIView, generics.ListAPIView):
    serializer_class = ContactSerializer
    pagination_class = ById
    required_perms = {"GET": READ}

    def get_queryset(self) -> QuerySet[Contact]:
        segment = self.segment(self.kwargs["segment_id"])
        try:
            return selectors.matching(self.account, segment.definition)
        except Invalid as invalid:
            raise _refused(invalid) from None

    @extend_schema(
        operation_id="segments_contacts",
        responses={200: ContactSerializer(many=True), 400: REFUSED},
        description="The contacts who match now, by pages: follow `next`.",
    )
    def get(self, request: Request, segment_id: int) -> Response:
        return super().get(request)


class SegmentExportView(ExportView):
    @extend_schema(
        operation_id="segments_export",
        parameters=[FMT],
        responses={**EXPORT_RESPONSES, (400, "application/json"): REFUSED},
        description="The contacts who match now, one row per subscription with the "
        "consent proof, as lists are exported.",
    )
    def get(self, request: Request, segment_id: int, fmt: str) -> Any:
        segment = get_for_account_or_404(Segment, self.account, pk=segment_id)
        try:
            clean, ctx = selectors.checked(self.account, segment.definition)
        except Invalid as invalid:
            raise _refused(invalid) from None
        return self.export(
            None,
            fmt,
            only=selectors.matching_ids_statement(clean, ctx),
            name=f"segment {segment.name}",
        )


class SegmentTagSerializer(StrictJSONMixin, serializers.Serializer):
    tag = TagNameField(help_text="The tag's name; made when new.")
    remove = serializers.BooleanField(
        default=False, help_text="Take the tag off instead of putting it on."
    )


class SegmentTagView(SegmentAPIView):
    required_perms = {"POST": WRITE}

    @extend_schema(
        operation_id="segments_tag",
        request=SegmentTagSerializer,
        responses={200: TaggedSerializer, 400: REFUSED},
        description="Put a tag on every contact the segment matches now (or take it off), "
        "in one statement.",
    )
    def post(self, request: Request, segment_id: int) -> Response:
        segment = self.segment(segment_id)
        serializer = SegmentTagSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            contacts = selectors.matching(self.account, segment.definition)
        except Invalid as invalid:
            raise _refused(invalid) from None
        change = tagging.untag_contacts if data["remove"] else tagging.tag_contacts
        done = change(
            account=self.account,
            actor=self.actor,
            tag=data["tag"],
            contacts=contacts,
            how=f"segment {segment.name}",
        )
        return Response(
            TaggedSerializer(
                {
                    "tag": tags_with_counts(self.account).get(pk=done.tag.pk),
                    "matched": done.matched,
                    "changed": done.changed,
                }
            ).data
        )
