"""The images endpoints of the API, under /api/v1/: the same duties as the media library
page, through the same services. Another account's image answers 404 like a missing one."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.api.errors import ErrorSerializer, ValidationErrorSerializer
from accounts.api.pagination import CursorPage
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from media import selectors, services
from media.models import ORIGINAL, VARIANTS, WIDTHS, Image
from media.uploads import too_large

READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT


class UploadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class ImageUrlsSerializer(serializers.Serializer):
    """One absolute address per variant (the keys are not Python names, hence
    ``get_fields``)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields: dict[str, serializers.Field] = {
            ORIGINAL: serializers.URLField(help_text="The image at its full size.")
        }
        for width in WIDTHS:
            fields[str(width)] = serializers.URLField(
                allow_null=True,
                help_text=f"A copy {width} pixels wide; null when the image is not wider.",
            )
        return fields


class ImageSerializer(serializers.ModelSerializer):
    urls = serializers.SerializerMethodField(
        help_text="Where each variant is served, for `<img src>` in an email: absolute, "
        "public and never changing."
    )
    size = serializers.IntegerField(help_text="Bytes of all the image's files.")

    class Meta:
        model = Image
        fields = ["id", "name", "format", "width", "height", "size", "urls", "created_at"]
        read_only_fields = fields

    @extend_schema_field(ImageUrlsSerializer)
    def get_urls(self, image: Image) -> dict[str, str | None]:
        urls = image.urls()
        return {variant: urls[variant] for variant in VARIANTS}


@extend_schema_field(OpenApiTypes.BINARY)
class UploadedFileField(serializers.FileField):
    """A file sent in the multipart body (the schema would otherwise say a URL)."""


class ImageUploadSerializer(serializers.Serializer):
    file = UploadedFileField(
        help_text="A PNG, JPEG, GIF or WebP image. What it is is read from its content, "
        "not its name. EXIF and other metadata are removed; animations keep their frames."
    )


class ImagePagination(CursorPage):
    ordering = ("-created_at", "-id")


class ImagesView(AccountAPIMixin, generics.ListAPIView):
    serializer_class = ImageSerializer
    pagination_class = ImagePagination
    parser_classes = [MultiPartParser]
    required_perms = {"GET": READ, "POST": WRITE}

    def get_queryset(self) -> QuerySet[Image]:
        return selectors.images(self.account)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication, which may read the body (a session's CSRF check).
        if request.method == "POST":
            message = too_large(request._request)
            if message is not None:
                raise UploadTooLarge(message)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="images_list",
        description="The account's images, newest first, by cursor pages: follow `next` "
        "until it is null.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="images_upload",
        request={"multipart/form-data": ImageUploadSerializer},
        responses={
            201: ImageSerializer,
            400: OpenApiResponse(
                ValidationErrorSerializer,
                description="Not an image Missive can use (not PNG, JPEG, GIF or WebP, over "
                "the byte or pixel limit, damaged): the message on `file` says why.",
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description="The account's image library is full: the message says how "
                "much is used of how much.",
            ),
            413: OpenApiResponse(
                ErrorSerializer,
                description="The request declares more than the image limit: refused "
                "before its body is read.",
            ),
        },
        description="Upload an image. It is re-encoded without its metadata, after its "
        "orientation is applied; images wider than 600 (1200) pixels also get a copy that "
        "wide. The answer holds the addresses to use in emails.",
    )
    def post(self, request: Request) -> Response:
        serializer = ImageUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            image = services.image_upload(
                account=self.account, actor=self.actor, file=serializer.validated_data["file"]
            )
        except services.QuotaExceeded as full:
            return Response({"detail": " ".join(full.messages)}, status=status.HTTP_409_CONFLICT)
        except services.ImageRefused as refused:
            raise serializers.ValidationError({"file": refused.messages}) from None
        return Response(ImageSerializer(image).data, status=status.HTTP_201_CREATED)


class ImageView(AccountAPIMixin, APIView):
    required_perms = {"GET": READ, "DELETE": WRITE}

    def image(self, image_id: int) -> Image:
        return get_for_account_or_404(Image, self.account, pk=image_id)

    @extend_schema(operation_id="images_retrieve", responses=ImageSerializer)
    def get(self, request: Request, image_id: int) -> Response:
        return Response(ImageSerializer(self.image(image_id)).data)

    @extend_schema(
        operation_id="images_delete",
        responses={204: None},
        description="Delete the image and its files. Emails already sent with it show a "
        "broken image from then on.",
    )
    def delete(self, request: Request, image_id: int) -> Response:
        services.image_delete(image=self.image(image_id), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
