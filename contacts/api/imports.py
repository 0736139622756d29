"""The CSV-import endpoints of the API: the same four steps as the import screens.

1. ``POST lists/{list_id}/imports/`` uploads a file; nothing is imported yet, the answer
   shows its columns, a suggested mapping and its first rows.
2. ``POST imports/{import_id}/start/`` sends the column mapping and the consent the
   customer declares; the import is queued for a worker.
3. ``GET imports/{import_id}/`` shows its progress, then its outcome.
4. ``GET imports/{import_id}/rejects/`` (or ``rejects.csv``) lists the rows it refused.

Every job is fetched through ``get_for_account_or_404``, so another account's import
answers 404 like a missing one. The work is done by ``contacts.importing``; a
ValidationError it raises is answered as a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.api.errors import ErrorSerializer
from accounts.api.fields import StrictJSONMixin
from accounts.api.pagination import CursorPage
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from contacts import importing, selectors
from contacts.api.exports import JSONErrorsOnly
from contacts.models import ContactList, ImportJob, ImportReject, Subscription

READ = Perm.VIEW
WRITE = Perm.EDIT_CONTENT

# The fields a ValidationError of ``import_configure`` may name; any other (the name of a
# ``new:`` attribute, say) comes from the mapping the caller sent.
START_FIELDS = {"mapping", "legal_basis", "consent_text", "update_existing"}


class ImportNotStartable(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This import has already started; upload the file again to redo it."
    default_code = "conflict"


# Serializers


class ImportStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=ImportJob.Status.choices, **kwargs)


class ImportStatusSchema(OpenApiSerializerFieldExtension):
    """Names the import states ``ImportStatusEnum``: left to drf-spectacular, they would
    clash with the other ``status`` enums of the schema."""

    target_class = ImportStatusField

    def get_name(self) -> str:
        return "ImportStatusEnum"

    def map_serializer_field(self, auto_schema: object, direction: str) -> dict:
        return {"type": "string", "enum": ImportJob.Status.values}


class ImportProgressSerializer(serializers.Serializer):
    rows = serializers.IntegerField(help_text="Rows read so far.")
    percent = serializers.IntegerField(help_text="Share of the file read, 0 to 100.")
    rate = serializers.FloatField(help_text="Rows read per second.")
    seconds_left = serializers.IntegerField(
        allow_null=True, help_text="Estimate; null until the first rows are read."
    )


class ImportCountsSerializer(serializers.Serializer):
    created = serializers.IntegerField(source="created_count", help_text="New contacts.")
    updated = serializers.IntegerField(
        source="updated_count", help_text="Contacts already stored whose fields changed."
    )
    subscribed = serializers.IntegerField(
        source="subscribed_count", help_text="Subscriptions added to the list."
    )
    already_subscribed = serializers.IntegerField(
        source="already_subscribed_count", help_text="Already on the list: left as they were."
    )
    suppressed = serializers.IntegerField(
        source="suppressed_count", help_text="On a suppression list: not added."
    )
    unsubscribed = serializers.IntegerField(
        source="unsubscribed_count",
        help_text="Unsubscribed from this list earlier: not subscribed again.",
    )
    duplicates = serializers.IntegerField(
        source="duplicate_count", help_text="Repeated addresses in the file, kept once."
    )
    invalid = serializers.IntegerField(
        source="invalid_count", help_text="Rows refused: see the rejects."
    )


class ImportJobSerializer(serializers.ModelSerializer):
    status = ImportStatusField(read_only=True)
    list = serializers.IntegerField(source="contact_list_id", read_only=True)
    list_name = serializers.CharField(source="contact_list.name", read_only=True)
    columns = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The file's header row."
    )
    mapping = serializers.DictField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Column index → `email`, `first_name`, `last_name`, `attribute:<name>` or "
        "`ignore`. Until the import starts, the mapping Missive suggests; then, the one it "
        "runs with.",
    )
    counts = ImportCountsSerializer(source="*", read_only=True)
    warnings = serializers.IntegerField(
        source="warning_count",
        read_only=True,
        help_text="Values left out of rows that were imported (a bad date, number, consent "
        "time…): see `imports/{import_id}/warnings/`.",
    )
    retry_import = serializers.SerializerMethodField(
        help_text="When every row was rejected: the id of a new upload of the same file, "
        "waiting for a better mapping (for a day); null otherwise."
    )
    progress = serializers.SerializerMethodField(
        help_text="While the import is queued or running; null otherwise."
    )

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "status",
            "list",
            "list_name",
            "original_name",
            "size_bytes",
            "encoding",
            "delimiter",
            "columns",
            "mapping",
            "legal_basis",
            "consent_text",
            "update_existing",
            "rows_done",
            "counts",
            "warnings",
            "retry_import",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "progress",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_retry_import(self, job: ImportJob) -> int | None:
        if job.status != ImportJob.Status.FAILED:
            return None
        retry = job.retries.filter(status=ImportJob.Status.UPLOADED).first()
        return retry.pk if retry else None

    @extend_schema_field(ImportProgressSerializer(allow_null=True))
    def get_progress(self, job: ImportJob) -> dict | None:
        if job.status not in ImportJob.ACTIVE:
            return None
        progress = importing.progress_of(job)
        return ImportProgressSerializer(
            {
                "rows": progress.rows,
                "percent": progress.percent,
                "rate": round(progress.rate, 1),
                "seconds_left": progress.seconds_left,
            }
        ).data


class ImportJobDetailSerializer(ImportJobSerializer):
    preview = serializers.SerializerMethodField(
        help_text="The first rows under the header, while the import waits for its mapping; "
        "empty afterwards (the file is deleted when the import ends)."
    )
    mapping_problems = serializers.SerializerMethodField(
        help_text="While the import waits for its mapping: what the suggested mapping does "
        "to the first rows of the file, one sentence per column where some fail (rows "
        "rejected for their address, values left out); empty afterwards."
    )

    class Meta(ImportJobSerializer.Meta):
        fields = [*ImportJobSerializer.Meta.fields, "preview", "mapping_problems"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_mapping_problems(self, job: ImportJob) -> list[str]:
        if job.status != ImportJob.Status.UPLOADED:
            return []
        return importing.mapping_problems(job, job.mapping)

    @extend_schema_field(
        serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    )
    def get_preview(self, job: ImportJob) -> list[list[str]]:
        if job.status != ImportJob.Status.UPLOADED:
            return []
        return importing.preview_rows(job)


@extend_schema_field(OpenApiTypes.BINARY)
class UploadedFileField(serializers.FileField):
    """A file sent in the multipart body (the schema would otherwise say a URL)."""


class ImportUploadSerializer(serializers.Serializer):
    file = UploadedFileField(
        help_text="A CSV file with a header row and a column of email addresses: UTF-8 or "
        "Windows/Latin-1, separated by commas, semicolons, tabs or pipes."
    )


class ImportStartSerializer(StrictJSONMixin, serializers.Serializer):
    mapping = serializers.DictField(
        child=serializers.CharField(max_length=200),
        allow_empty=False,
        help_text="Column index (as text, from 0) → `email`, `first_name`, `last_name`, "
        "`full_name` (split at the first space), `consent_at` and `consent_ip` (each "
        "person's opt-in time and IP, kept as their consent proof), `confirmed_at` (when "
        "they confirmed a double opt-in, kept with it), `tags` (tag names separated by "
        "commas or semicolons, created as needed; several columns may be tags), "
        "`attribute:<name>` (a declared attribute), `new:<type>:<name>` (declare an "
        "attribute of type text, number, date or boolean; `new:<name>` means text) or "
        "`ignore`. Exactly one column is the email; columns left out are ignored.",
    )
    legal_basis = serializers.ChoiceField(
        choices=Subscription.LegalBasis.choices,
        help_text="Why you may mail these people, kept with each subscription.",
    )
    consent_text = serializers.CharField(
        max_length=2000,
        help_text="How these people agreed to hear from you, kept with each subscription as proof.",
    )
    update_existing = serializers.BooleanField(
        default=False,
        help_text="Overwrite the names and attributes of contacts already stored; otherwise "
        "only their subscription is added.",
    )

    def validate_mapping(self, mapping: dict[str, str]) -> dict[str, str]:
        try:
            importing.check_mapping(self.context["job"], mapping)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict["mapping"]) from None
        return mapping


class ImportRejectSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportReject
        fields = ["row_number", "column", "value", "reason"]
        read_only_fields = fields


# Views


class ImportPagination(CursorPage):
    ordering = ("-created_at", "-id")


class RejectPagination(CursorPage):
    ordering = ("row_number", "id")


class ListImportsView(AccountAPIMixin, APIView):
    required_perms = {"POST": WRITE}
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="lists_imports_create",
        request={"multipart/form-data": ImportUploadSerializer},
        responses={201: ImportJobDetailSerializer},
        description="Upload a CSV file into the list. Nothing is imported yet: the answer "
        "shows the file's columns, a suggested mapping and its first rows; start the import "
        "with `POST /imports/{import_id}/start/`. A file Missive cannot read (empty, not "
        "CSV, no email column, over the size limit) is refused with a 400 on `file` saying "
        "how to fix it, and is not kept.",
    )
    def post(self, request: Request, list_id: int) -> Response:
        contact_list = get_for_account_or_404(ContactList, self.account, pk=list_id)
        serializer = ImportUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            job = importing.import_upload(
                account=self.account,
                actor=self.actor,
                contact_list=contact_list,
                upload=serializer.validated_data["file"],
            )
        except DjangoValidationError as error:
            raise DjangoValidationError({"file": error.messages}) from None
        return Response(ImportJobDetailSerializer(job).data, status=status.HTTP_201_CREATED)


class ImportsView(AccountAPIMixin, generics.ListAPIView):
    """The account's imports, newest first."""

    serializer_class = ImportJobSerializer
    pagination_class = ImportPagination
    required_perms = {"GET": READ}

    def get_queryset(self) -> QuerySet[ImportJob]:
        return selectors.imports(self.account)

    @extend_schema(
        operation_id="imports_list",
        description="The account's imports, newest first, by cursor pages: follow `next` "
        "until it is null.",
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class ImportView(AccountAPIMixin, APIView):
    required_perms = {"GET": READ}

    @extend_schema(
        responses=ImportJobDetailSerializer,
        description="The import: its mapping and first rows while it waits to start, its "
        "`progress` while it is queued or running (poll every few seconds), its `counts` "
        "and `error` when it has ended.",
    )
    def get(self, request: Request, import_id: int) -> Response:
        job = get_for_account_or_404(ImportJob, self.account, pk=import_id)
        return Response(ImportJobDetailSerializer(job).data)


class ImportStartView(AccountAPIMixin, APIView):
    required_perms = {"POST": WRITE}

    @extend_schema(
        request=ImportStartSerializer,
        responses={
            202: ImportJobDetailSerializer,
            409: OpenApiResponse(
                ErrorSerializer, description="The import has already started or ended."
            ),
        },
        description="Map the columns, declare the consent, and queue the import. Addresses "
        "that are suppressed, or that unsubscribed from the list, are never subscribed.",
    )
    def post(self, request: Request, import_id: int) -> Response:
        job = get_for_account_or_404(ImportJob, self.account, pk=import_id)
        serializer = ImportStartSerializer(data=request.data, context={"job": job})
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            # Two calls at once queue one import: the second waits here, then sees QUEUED.
            job = ImportJob.objects.for_account(self.account).select_for_update().get(pk=job.pk)
            if job.status != ImportJob.Status.UPLOADED:
                raise ImportNotStartable(
                    f"This import is {job.get_status_display().lower()}: it can start only "
                    "once. Upload the file again to import it anew."
                )
            try:
                job = importing.import_configure(
                    job=job, actor=self.actor, **serializer.validated_data
                )
            except DjangoValidationError as error:
                if hasattr(error, "error_dict") and not set(error.error_dict) <= START_FIELDS:
                    raise DjangoValidationError({"mapping": error.messages}) from None
                raise
        return Response(ImportJobDetailSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ImportCancelView(AccountAPIMixin, APIView):
    required_perms = {"POST": WRITE}

    @extend_schema(
        request=None,
        responses=ImportJobDetailSerializer,
        description="Stop the import: one not yet running is cancelled at once; a running "
        "one stops before it saves anything (its status turns `cancelled` within seconds). "
        "An import that has ended is answered as it is.",
    )
    def post(self, request: Request, import_id: int) -> Response:
        job = get_for_account_or_404(ImportJob, self.account, pk=import_id)
        job = importing.import_cancel(job=job, actor=self.actor)
        return Response(ImportJobDetailSerializer(job).data)


class ImportRejectsView(AccountAPIMixin, generics.ListAPIView):
    """The rows the import refused, in file order, with the column and the reason."""

    serializer_class = ImportRejectSerializer
    pagination_class = RejectPagination
    required_perms = {"GET": READ}
    warnings = False

    def get_queryset(self) -> QuerySet[ImportReject]:
        job = get_for_account_or_404(ImportJob, self.account, pk=self.kwargs["import_id"])
        return ImportReject.objects.for_account(self.account).filter(job=job, warning=self.warnings)

    @extend_schema(
        operation_id="imports_rejects_list",
        description="The rows the import refused, in file order, by cursor pages: the line "
        "in the file (the header being line 1), the column, the value and the reason.",
    )
    def get(self, request: Request, import_id: int) -> Response:
        return super().get(request, import_id)


class ImportWarningsView(ImportRejectsView):
    """The values the import left out of rows it imported."""

    warnings = True

    @extend_schema(
        operation_id="imports_warnings_list",
        description="The values the import left out of rows it did import (a date, number "
        "or consent time it could not read, a field over the length limit), in file order, "
        "by cursor pages: the line in the file, the column, the value and why.",
    )
    def get(self, request: Request, import_id: int) -> Response:
        return super(ImportRejectsView, self).get(request, import_id)


class ImportRejectsCsvView(AccountAPIMixin, APIView):
    required_perms = {"GET": READ}
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONErrorsOnly

    @extend_schema(
        operation_id="imports_rejects_csv",
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="Streamed UTF-8 CSV: row, column, value, reason.",
            )
        },
        description="The rows the import refused, as a CSV file to fix and upload again.",
    )
    def get(self, request: Request, import_id: int) -> StreamingHttpResponse:
        job = get_for_account_or_404(ImportJob, self.account, pk=import_id)
        response = StreamingHttpResponse(
            importing.rejects_csv(self.account, job), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="rejects-{job.pk}.csv"'
        response["Cache-Control"] = "no-store"
        return response
