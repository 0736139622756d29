"""The attribute endpoints of the API: declare, list, rename, retype and delete the
account's custom fields.

Every definition is fetched through ``get_for_account_or_404``, so another account's
attribute answers 404 like a missing one. The writes go through ``contacts.services``,
which move the contacts' values with the definition and write the audit row.

A change the stored data stands in the way of is answered 409, with nothing changed: a
name another attribute has, values a change of type would drop without
``drop_invalid_values``, or a campaign using the merge tag that is being sent.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.api.fields import StrictJSONMixin
from accounts.api.pagination import CursorPage
from accounts.api.schema import DUPLICATE
from accounts.models import validate_single_line
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from contacts import merge_tags, selectors, services
from contacts.models import ATTRIBUTE_NAME, RESERVED_ATTRIBUTE_NAMES, AttributeDefinition

READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT

# The refusals of a change, in the shape of the other conflicts (DUPLICATE).
CHANGE_REFUSED = OpenApiResponse(
    DUPLICATE.response,
    description="Refused, and nothing changed: the new name is another attribute's "
    "(`errors.name`); a change of type would drop values and `drop_invalid_values` is "
    "not set (`errors.type` says how many); or a campaign using the merge tag is being "
    "sent or is paused mid-send (`errors.non_field_errors` names it: try again once it "
    "is sent or cancelled).",
)
DELETE_REFUSED = OpenApiResponse(
    DUPLICATE.response,
    description="Refused, and nothing changed: a campaign using the merge tag is being "
    "sent or is paused mid-send (`errors.non_field_errors` names it: try again once it "
    "is sent or cancelled).",
)


def _refused(error: ValidationError) -> Response:
    """A 409 in the shape accounts/api/errors.py gives a validation error."""
    errors = (
        error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
    )
    field, messages = next(iter(errors.items()))
    prefix = "" if field == "non_field_errors" else f"{field}: "
    return Response(
        {"detail": f"{prefix}{messages[0]}", "errors": errors}, status=status.HTTP_409_CONFLICT
    )


# The format of a name, as a pattern the schema can show; the service checks it again, with
# the reserved names and uniqueness.
NAME_FORMAT = RegexValidator(
    # The reserved names are left out of the pattern too, so the schema does not offer them.
    r"^(?!(?:" + "|".join(sorted(RESERVED_ATTRIBUTE_NAMES)) + r")$)" + ATTRIBUTE_NAME.pattern[1:],
    "Use lower-case letters, digits and underscores, starting with a letter "
    "(for example city or loyalty_points).",
)


class AttributeSerializer(StrictJSONMixin, serializers.ModelSerializer):
    type = serializers.ChoiceField(
        choices=AttributeDefinition.Type.choices,
        help_text="How values are checked and stored: text, number, date (YYYY-MM-DD) or boolean.",
    )

    class Meta:
        model = AttributeDefinition
        fields = ["id", "name", "label", "type", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {
            "name": {
                "help_text": "Lower-case letters, digits and underscores, starting with a "
                "letter; used in campaigns as `{{ attributes.<name> }}`.",
                # (uniqueness is the service's to check, per account)
                "validators": [NAME_FORMAT],
            },
            "label": {"help_text": "A name for people, shown in the app."},
        }


class AttributeUsageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    editable = serializers.BooleanField(
        help_text="A draft: a rename with `update_campaigns` changes its merge tag."
    )
    sending = serializers.BooleanField(
        help_text="Being sent, or paused mid-send: until it is sent or cancelled, the "
        "attribute cannot be renamed, retyped or deleted."
    )


class AttributeDetailSerializer(AttributeSerializer):
    contacts = serializers.SerializerMethodField(
        help_text="How many contacts hold a value of the attribute."
    )
    campaigns = serializers.SerializerMethodField(
        help_text="The campaigns not sent yet, or still being sent, whose subject, "
        "preheader, HTML or text use `{{ attributes.<name> }}`."
    )

    class Meta(AttributeSerializer.Meta):
        fields = [*AttributeSerializer.Meta.fields, "contacts", "campaigns"]
        read_only_fields = [*AttributeSerializer.Meta.read_only_fields, "contacts", "campaigns"]

    def get_contacts(self, definition: AttributeDefinition) -> int:
        return selectors.attribute_holders(definition)

    @extend_schema_field(AttributeUsageSerializer(many=True))
    def get_campaigns(self, definition: AttributeDefinition) -> list[dict]:
        return [
            {
                "id": u.id,
                "name": u.name,
                "status": u.status,
                "editable": u.editable,
                "sending": u.sending,
            }
            for u in merge_tags.uses(definition.account, definition.name)
        ]


class AttributeUpdateSerializer(StrictJSONMixin, serializers.Serializer):
    name = serializers.CharField(
        required=False,
        max_length=50,
        validators=[NAME_FORMAT],
        help_text="A new name: the contacts' values move to it.",
    )
    label = serializers.CharField(  # type: ignore[assignment]  # a declared field: DRF takes it off the class
        required=False, allow_blank=True, max_length=100, validators=[validate_single_line]
    )
    type = serializers.ChoiceField(
        choices=AttributeDefinition.Type.choices,
        required=False,
        help_text="A new type: the stored values are converted. Values that cannot be are "
        "dropped, only with `drop_invalid_values`; without it the change is refused with "
        "how many would be.",
    )
    update_campaigns = serializers.BooleanField(
        default=False,
        help_text="On a rename, change `{{ attributes.<old> }}` to the new name in the "
        "draft campaigns that use it (otherwise it renders empty there).",
    )
    drop_invalid_values = serializers.BooleanField(
        default=False,
        help_text="On a change of type, drop the values that cannot be converted.",
    )


class AttributeDeletedSerializer(serializers.Serializer):
    cleared = serializers.IntegerField(help_text="Contacts whose value was deleted.")


class AttributePagination(CursorPage):
    ordering = ("name", "id")


class AttributesView(AccountAPIMixin, generics.ListAPIView):
    """The account's attributes, by name."""

    serializer_class = AttributeSerializer
    pagination_class = AttributePagination
    required_perms = {"GET": READ, "POST": WRITE}

    def get_queryset(self) -> QuerySet[AttributeDefinition]:
        return selectors.attributes(self.account)

    @extend_schema(
        operation_id="attributes_list",
        description="The account's attributes, by name, by cursor pages: follow `next` "
        "until it is null.",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        request=AttributeSerializer,
        responses={201: AttributeDetailSerializer, 409: DUPLICATE},
        description="Declare an attribute, so imports and the API check its values and "
        "campaigns may use it as `{{ attributes.<name> }}`.",
    )
    def post(self, request: Request) -> Response:
        serializer = AttributeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        definition = services.attribute_define(
            account=self.account, actor=self.actor, **serializer.validated_data
        )
        return Response(AttributeDetailSerializer(definition).data, status=status.HTTP_201_CREATED)


class AttributeView(AccountAPIMixin, APIView):
    required_perms = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    def _definition(self, attribute_id: int) -> AttributeDefinition:
        return get_for_account_or_404(AttributeDefinition, self.account, pk=attribute_id)

    @extend_schema(responses=AttributeDetailSerializer)
    def get(self, request: Request, attribute_id: int) -> Response:
        return Response(AttributeDetailSerializer(self._definition(attribute_id)).data)

    @extend_schema(
        request=AttributeUpdateSerializer,
        responses={200: AttributeDetailSerializer, 409: CHANGE_REFUSED},
        description="Rename, relabel or retype the attribute. A rename moves every "
        "contact's value to the new name; a change of type converts the stored values "
        "and, with `drop_invalid_values`, drops those that cannot be converted (without "
        "it, a 409 says how many there are, and nothing changes). Neither is possible "
        "while a campaign using the merge tag is being sent (409).",
    )
    def patch(self, request: Request, attribute_id: int) -> Response:
        definition = self._definition(attribute_id)
        serializer = AttributeUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            definition = services.attribute_update(
                definition=definition,
                actor=self.actor,
                name=data.get("name"),
                label=data.get("label"),
                type=data.get("type"),
                update_campaigns=data["update_campaigns"],
                drop_invalid=data["drop_invalid_values"],
            )
        except AttributeDefinition.DoesNotExist:
            raise Http404 from None  # deleted meanwhile
        except (services.AttributeValuesWouldDrop, services.AttributeInUse) as error:
            # The request is valid; the stored data is what stands in its way.
            return _refused(error)
        return Response(AttributeDetailSerializer(definition).data)

    @extend_schema(
        responses={200: AttributeDeletedSerializer, 409: DELETE_REFUSED},
        description="Delete the attribute and every contact's value of it. Campaigns not "
        "sent yet that use its merge tag render it empty; while one that uses it is being "
        "sent, the attribute cannot be deleted (409).",
    )
    def delete(self, request: Request, attribute_id: int) -> Response:
        try:
            cleared = services.attribute_delete(
                definition=self._definition(attribute_id), actor=self.actor
            )
        except AttributeDefinition.DoesNotExist:
            raise Http404 from None  # deleted meanwhile
        except services.AttributeInUse as error:
            return _refused(error)
        return Response({"cleared": cleared})
