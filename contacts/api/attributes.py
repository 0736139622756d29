"""The attribute endpoints of the API: declare, list, rename, retype and delete the
account's custom fields.

Every definition is fetched through ``get_for_account_or_404``, so another account's
attribute answers 404 like a missing one. The writes go through ``contacts.services``,
which move the contacts' values with the definition and write the audit row.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
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
from contacts.models import ATTRIBUTE_NAME, AttributeDefinition

READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT


# The format of a name, as a pattern the schema can show; the service checks it again, with
# the reserved names and uniqueness.
NAME_FORMAT = RegexValidator(
    ATTRIBUTE_NAME,
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


class AttributeDetailSerializer(AttributeSerializer):
    contacts = serializers.SerializerMethodField(
        help_text="How many contacts hold a value of the attribute."
    )
    campaigns = serializers.SerializerMethodField(
        help_text="The campaigns not sent yet whose subject, preheader, HTML or text use "
        "`{{ attributes.<name> }}`."
    )

    class Meta(AttributeSerializer.Meta):
        fields = [*AttributeSerializer.Meta.fields, "contacts", "campaigns"]
        read_only_fields = [*AttributeSerializer.Meta.read_only_fields, "contacts", "campaigns"]

    def get_contacts(self, definition: AttributeDefinition) -> int:
        return selectors.attribute_holders(definition)

    @extend_schema_field(AttributeUsageSerializer(many=True))
    def get_campaigns(self, definition: AttributeDefinition) -> list[dict]:
        return [
            {"id": u.id, "name": u.name, "status": u.status, "editable": u.editable}
            for u in merge_tags.uses(definition.account, definition.name)
        ]


class AttributeUpdateSerializer(StrictJSONMixin, serializers.Serializer):
    name = serializers.CharField(
        required=False,
        max_length=50,
        validators=[NAME_FORMAT],
        help_text="A new name: the contacts' values move to it.",
    )
    label = serializers.CharField(
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
        responses={200: AttributeDetailSerializer, 409: DUPLICATE},
        description="Rename, relabel or retype the attribute. A rename moves every "
        "contact's value to the new name; a change of type converts the stored values "
        "and, with `drop_invalid_values`, drops those that cannot be converted (without "
        "it, a 409 says how many there are, and nothing changes).",
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
        except services.AttributeValuesWouldDrop as error:
            # The request is valid; the stored values are what stand in its way: a 409,
            # in the shape of the other conflicts (DUPLICATE).
            message = " ".join(error.messages)
            return Response(
                {"detail": f"type: {message}", "errors": {"type": [message]}},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(AttributeDetailSerializer(definition).data)

    @extend_schema(
        responses={200: AttributeDeletedSerializer},
        description="Delete the attribute and every contact's value of it. Campaigns that "
        "use its merge tag render it empty.",
    )
    def delete(self, request: Request, attribute_id: int) -> Response:
        cleared = services.attribute_delete(
            definition=self._definition(attribute_id), actor=self.actor
        )
        return Response({"cleared": cleared})
