"""The account's suppression list: the addresses its campaigns never reach, whatever
list they are on. Shown by hash only, since the address itself is not kept."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts.http import AccountRequest
from accounts.query import QueryParams
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.services import audit_log
from accounts.views.decorators import account_required
from contacts import services, suppressing
from contacts.forms_suppressions import (
    SuppressionAddForm,
    SuppressionCheckForm,
    SuppressionImportForm,
)
from contacts.models import Suppression


def _page(request: AccountRequest, status: int = 200, **context: object) -> HttpResponse:
    """The list page, with whichever forms and reports the request produced."""
    role = request.membership.role
    params = QueryParams(request.GET)
    cursor = params.cursor("after")
    params.note_ignored(request)
    context = {
        "page": suppressing.suppressions_page(request.account, cursor=cursor),
        "first_page": not cursor,
        "can_edit": role_can(role, Perm.EDIT_CONTENT),
        "can_export": role_can(role, Perm.EXPORT),
        "add_form": SuppressionAddForm(),
        "import_form": SuppressionImportForm(),
        "check_form": SuppressionCheckForm(),
        **context,
    }
    return render(request, "contacts/suppressions.html", context, status=status)


def _summary(result: suppressing.BulkResult) -> str:
    return f"{result.added} added, {result.already} already there, {result.invalid} invalid."


@account_required(Perm.VIEW)
def suppressions(request: AccountRequest) -> HttpResponse:
    return _page(request)


@account_required(Perm.EDIT_CONTENT)
def suppressions_add(request: AccountRequest) -> HttpResponse:
    if request.method != "POST":
        return redirect("suppressions")
    form = SuppressionAddForm(request.POST)
    if not form.is_valid():
        return _page(request, add_form=form)
    lines = form.numbered()
    result = suppressing.suppressions_add_many(
        account=request.account,
        emails=lines,
        reason=form.cleaned_data["reason"],
        actor=request.user,
        note=form.cleaned_data["note"],
        source="form",
    )
    if not result.invalid:
        messages.success(request, _summary(result))
        return redirect("suppressions")
    # Give the refused lines back, to fix and send again.
    refused = {r.line for r in result.refused}
    retry = SuppressionAddForm(
        initial={
            "emails": "\n".join(text for n, text in lines if n in refused),
            "reason": form.cleaned_data["reason"],
            "note": form.cleaned_data["note"],
        }
    )
    return _page(request, add_form=retry, result=result, result_of="add")


@account_required(Perm.EDIT_CONTENT)
def suppressions_import(request: AccountRequest) -> HttpResponse:
    if request.method != "POST":
        return redirect("suppressions")
    form = SuppressionImportForm(request.POST, request.FILES)
    rows = None
    if form.is_valid():
        try:
            rows = suppressing.read_upload(form.cleaned_data["file"])
        except ValidationError as error:
            form.add_error("file", error)
    if rows is None:
        return _page(request, import_form=form)
    result = suppressing.suppressions_add_many(
        account=request.account,
        emails=rows,
        reason=form.cleaned_data["reason"],
        actor=request.user,
        note=form.cleaned_data["note"],
        source="import",
    )
    if not result.invalid:
        messages.success(request, f"Import done: {_summary(result)}")
        return redirect("suppressions")
    return _page(request, result=result, result_of="import")


@account_required(Perm.VIEW)
def suppressions_check(request: AccountRequest) -> HttpResponse:
    """Is this address suppressed, here or platform-wide? Answered, never stored: a POST
    so the address stays out of URLs and access logs."""
    if request.method != "POST":
        return redirect("suppressions")
    form = SuppressionCheckForm(request.POST)
    context: dict[str, Any] = {"check_form": form}
    if form.is_valid():
        email = form.cleaned_data["email"]
        context["checked"] = suppressing.suppressions_matching(request.account, email)
        context["checked_email"] = email
    if request.htmx:
        return render(request, "contacts/suppressions_check.html", context)
    return _page(request, **context)


@account_required(Perm.EXPORT)
def suppressions_export(request: AccountRequest) -> StreamingHttpResponse:
    audit_log(account=request.account, actor=request.user, action="suppressions.exported")
    response = StreamingHttpResponse(
        suppressing.suppressions_csv(request.account), content_type="text/csv; charset=utf-8"
    )
    filename = f"suppressions-{timezone.now():%Y%m%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@account_required(Perm.EDIT_CONTENT)
def suppression_remove(request: AccountRequest, suppression_id: int) -> HttpResponse:
    suppression = get_for_account_or_404(Suppression, request.account, pk=suppression_id)
    prefix = f"{suppression.email_sha256[:6]}…"
    if request.method == "POST":
        services.suppression_remove(suppression=suppression, actor=request.user)
        messages.success(request, f"{prefix} removed from the suppression list.")
        return redirect("suppressions")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Remove {prefix} from the suppression list?",
            "body": f"This entry ({suppression.get_reason_display().lower()}) stops your "
            "campaigns from reaching the address. Once removed, the address receives them "
            "again if it is subscribed to a list. Remove it only if the person asked to "
            "hear from you again.",
            "confirm_label": "Remove from the list",
            "cancel_url": "suppressions",
        },
    )
