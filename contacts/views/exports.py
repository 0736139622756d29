"""Exports, at any time: the customer's data is theirs to take."""

from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from django.utils.text import slugify

from accounts.http import AccountRequest
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from accounts.services import audit_log
from accounts.views.decorators import account_required
from contacts import exporting
from contacts.models import ContactList

FORMATS = {
    "csv": (exporting.csv_chunks, "text/csv; charset=utf-8"),
    "ndjson": (exporting.ndjson_chunks, "application/x-ndjson; charset=utf-8"),
}


def export_response(
    request: AccountRequest, contact_list: ContactList | None, fmt: str
) -> StreamingHttpResponse:
    """A streamed download, recorded in the account's activity log."""
    if fmt not in FORMATS:
        raise Http404("Exports come as .csv or .ndjson.")
    chunks, content_type = FORMATS[fmt]
    account = request.account
    audit_log(
        account=account,
        actor=request.user if request.user.is_authenticated and request.user.pk else None,
        action="contacts.exported",
        list=contact_list.name if contact_list else "all contacts",
        format=fmt,
    )
    stem = slugify(contact_list.name) if contact_list else "contacts"
    filename = f"{stem}-{timezone.now():%Y%m%d-%H%M}.{fmt}"
    response = StreamingHttpResponse(chunks(account, contact_list), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@account_required(Perm.EXPORT)
def export_list(request: AccountRequest, list_id: int, fmt: str) -> StreamingHttpResponse:
    contact_list = get_for_account_or_404(ContactList, request.account, pk=list_id)
    return export_response(request, contact_list, fmt)


@account_required(Perm.EXPORT)
def export_all(request: AccountRequest, fmt: str) -> StreamingHttpResponse:
    return export_response(request, None, fmt)
