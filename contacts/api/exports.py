"""The export endpoints of the API: every contact, or one list's, streamed as CSV or JSON
lines with the consent proof, and recorded in the account's activity log."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from psycopg import sql
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.api.auth import AccountAPIMixin
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from accounts.services import audit_log
from contacts import exporting
from contacts.models import ContactList

Chunks = Callable[..., Iterator[bytes]]
FORMATS: dict[str, tuple[Chunks, str]] = {
    "csv": (exporting.csv_chunks, "text/csv"),
    "ndjson": (exporting.ndjson_chunks, "application/x-ndjson"),
}


class JSONErrorsOnly(BaseContentNegotiation):
    """An export answers its file whatever the Accept header says, and its refusals in
    JSON: DRF must not turn ``Accept: text/csv`` into a 406."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


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

    def export(
        self,
        contact_list: ContactList | None,
        fmt: str,
        *,
        only: sql.Composable | None = None,
        name: str = "",
    ) -> StreamingHttpResponse:
        """One list's contacts, or all the account's; ``only`` (a statement selecting
        contact ids, named ``name``) narrows them, as a segment's export does."""
        if fmt not in FORMATS:
            raise Http404("Exports come as .csv or .ndjson.")
        chunks, content_type = FORMATS[fmt]
        what = name or (contact_list.name if contact_list else "all contacts")
        audit_log(
            account=self.account,
            actor=self.actor,
            action="contacts.exported",
            list=what,
            format=fmt,
        )
        stem = slugify(what) if (name or contact_list) else "contacts"
        filename = f"{stem}-{timezone.now():%Y%m%d-%H%M}.{fmt}"
        response = StreamingHttpResponse(
            chunks(self.account, contact_list, only=only),
            content_type=f"{content_type}; charset=utf-8",
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
