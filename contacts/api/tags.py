"""The tags endpoints of the API, under /api/v1/: the account's tags, and one tag put on
or taken off many contacts at once, through the same services as the pages."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.api.errors import ValidationErrorSerializer
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from contacts import selectors, tagging
from contacts.api.serializers import TagContactsSerializer, TaggedSerializer, TagSerializer
from contacts.models import Contact, Tag

READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT
TAKEN = OpenApiResponse(ValidationErrorSerializer, description="The name is taken.")
REFUSED = OpenApiResponse(ValidationErrorSerializer, description="Refused, with the reason.")


def _counted(tag: Tag) -> Tag:
    """The tag with ``contact_count``, as every answer shows it."""
    return selectors.tags_with_counts(tag.account).get(pk=tag.pk)


class TagsView(AccountAPIMixin, generics.ListAPIView):
    serializer_class = TagSerializer
    pagination_class = None
    required_perms = {"GET": READ, "POST": WRITE}

    def get_queryset(self) -> QuerySet[Tag]:
        return selectors.tags_with_counts(self.account)

    @extend_schema(operation_id="tags_list", description="The account's tags, with counts.")
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        operation_id="tags_create",
        request=TagSerializer,
        responses={201: TagSerializer, 400: REFUSED, 409: TAKEN},
        description="Make a tag. Names are unique in the account whatever their case.",
    )
    def post(self, request: Request) -> Response:
        serializer = TagSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tag = tagging.tag_create(
            account=self.account, actor=self.actor, name=serializer.validated_data["name"]
        )
        return Response(TagSerializer(_counted(tag)).data, status=status.HTTP_201_CREATED)


class TagAPIView(AccountAPIMixin, APIView):
    def tag(self, tag_id: int) -> Tag:
        return get_for_account_or_404(Tag, self.account, pk=tag_id)


class TagView(TagAPIView):
    required_perms = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    @extend_schema(operation_id="tags_retrieve", responses=TagSerializer)
    def get(self, request: Request, tag_id: int) -> Response:
        return Response(TagSerializer(_counted(self.tag(tag_id))).data)

    @extend_schema(
        operation_id="tags_rename",
        request=TagSerializer,
        responses={200: TagSerializer, 400: REFUSED, 409: TAKEN},
        description="Rename the tag; its contacts keep it, and segments refer to it by id.",
    )
    def patch(self, request: Request, tag_id: int) -> Response:
        tag = self.tag(tag_id)
        serializer = TagSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tagging.tag_rename(tag=tag, actor=self.actor, name=serializer.validated_data["name"])
        return Response(TagSerializer(_counted(tag)).data)

    @extend_schema(
        operation_id="tags_delete",
        responses={204: None},
        description="Delete the tag, taking it off every contact (the contacts stay).",
    )
    def delete(self, request: Request, tag_id: int) -> Response:
        tagging.tag_delete(tag=self.tag(tag_id), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TagContactsView(TagAPIView):
    """One tag on (``add``) or off (``remove``) many contacts, in one statement."""

    required_perms = {"POST": WRITE}
    remove = False

    def post(self, request: Request, tag_id: int) -> Response:
        tag = self.tag(tag_id)
        serializer = TagContactsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        chosen = Q(pk__in=data.get("contact_ids") or []) | Q(email__in=data.get("emails") or [])
        contacts = Contact.objects.for_account(self.account).filter(chosen)
        change = tagging.untag_contacts if self.remove else tagging.tag_contacts
        done = change(account=self.account, actor=self.actor, tag=tag, contacts=contacts, how="api")
        return Response(
            TaggedSerializer(
                {"tag": _counted(tag), "matched": done.matched, "changed": done.changed}
            ).data
        )


class TagAddView(TagContactsView):
    @extend_schema(
        operation_id="tags_add_contacts",
        request=TagContactsSerializer,
        responses={200: TaggedSerializer, 400: REFUSED},
        description="Put the tag on the contacts given by address or id (up to 10,000 a "
        "request; unknown ones are left out of `matched`). Idempotent.",
    )
    def post(self, request: Request, tag_id: int) -> Response:
        return super().post(request, tag_id)


class TagRemoveView(TagContactsView):
    remove = True

    @extend_schema(
        operation_id="tags_remove_contacts",
        request=TagContactsSerializer,
        responses={200: TaggedSerializer, 400: REFUSED},
        description="Take the tag off the contacts given by address or id. Idempotent.",
    )
    def post(self, request: Request, tag_id: int) -> Response:
        return super().post(request, tag_id)
