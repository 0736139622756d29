"""Imports: upload, map the columns, watch the progress, read the outcome."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import BoundField
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render

from accounts.http import AccountRequest
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from contacts import importing, selectors
from contacts.forms_imports import MappingForm, UploadForm
from contacts.models import ContactList, ImportJob
from contacts.views.lists import _add_errors

REJECTS_SHOWN = 100


@dataclass(frozen=True)
class _Column:
    """A column of the file on the mapping page: its field, first values and a note."""

    field: BoundField
    samples: list[str]
    note: str


@account_required(Perm.EDIT_CONTENT)
def import_upload(request: AccountRequest, list_id: int) -> HttpResponse:
    contact_list = get_for_account_or_404(ContactList, request.account, pk=list_id)
    form = UploadForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                job = importing.import_upload(
                    account=request.account,
                    actor=request.user,
                    contact_list=contact_list,
                    upload=form.cleaned_data["file"],
                )
            except ValidationError as error:
                form.add_error("file", error.messages)
            else:
                return redirect("import_detail", import_id=job.pk)
        status = 400
    return render(
        request,
        "contacts/import_upload.html",
        {
            "form": form,
            "contact_list": contact_list,
            "imports": selectors.imports(request.account).filter(contact_list=contact_list)[:10],
        },
        status=status,
    )


@account_required(Perm.VIEW)
def import_detail(request: AccountRequest, import_id: int) -> HttpResponse:
    """The mapping screen before the import starts, its progress while it runs, and its
    outcome after."""
    job = get_for_account_or_404(ImportJob, request.account, pk=import_id)
    if job.status == ImportJob.Status.UPLOADED:
        return _mapping(request, job)
    context = {"job": job, "progress": importing.progress_of(job)}
    if job.is_finished:
        context["rejects"] = job.rejects.filter(warning=False)[:REJECTS_SHOWN]
        context["warnings"] = job.rejects.filter(warning=True)[:REJECTS_SHOWN]
        # Every row rejected: the same file, waiting for a better mapping.
        context["retry"] = job.retries.filter(status=ImportJob.Status.UPLOADED).first()
    return render(request, "contacts/import_detail.html", context)


def _mapping(request: AccountRequest, job: ImportJob) -> HttpResponse:
    can_edit = role_can(request.membership.role, Perm.EDIT_CONTENT)
    if request.method == "POST" and not can_edit:
        messages.error(request, "Your role cannot start imports.")
        return redirect("import_detail", import_id=job.pk)
    form = MappingForm(request.POST or None, job=job)
    checking = "check" in request.POST
    if request.method == "POST" and checking:
        # "Check the mapping": the sample rows against the columns as chosen, nothing saved.
        form.is_valid()
        form.errors.clear()
    elif request.method == "POST" and form.is_valid():
        try:
            importing.import_configure(
                job=job,
                actor=request.user,
                mapping=form.mapping(),
                legal_basis=form.cleaned_data["legal_basis"],
                consent_text=form.cleaned_data["consent_text"],
                update_existing=form.cleaned_data["update_existing"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            return redirect("import_detail", import_id=job.pk)
    preview = importing.preview_rows(job)
    notes = importing.column_notes(job.columns)
    columns = [
        _Column(
            field=form[name],
            samples=[row[index] if index < len(row) else "" for row in preview],
            note=notes.get(str(index), ""),
        )
        for index, name in enumerate(form.column_fields)
    ]
    mapping = job.mapping
    if request.method == "POST":
        mapping = {
            key: request.POST.get(f"col_{key}", "ignore")
            for key in map(str, range(len(job.columns)))
        }
    try:
        importing.check_mapping(job, mapping)
    except ValidationError as error:
        problems = []
        if request.method == "POST":
            # Refused on "Check the mapping" as on start, saying which column is wrong.
            for message in error.messages:
                if message not in form.non_field_errors():
                    form.add_error(None, message)
    else:
        problems = importing.mapping_problems(job, mapping)
    known = importing.recognize_export(job.columns)
    return render(
        request,
        "contacts/import_mapping.html",
        {
            "job": job,
            "form": form,
            "columns": columns,
            "problems": problems,
            "checked": checking,
            "known_export": known.name if known else "",
            "can_edit": can_edit,
        },
        status=400 if form.errors else 200,
    )


@account_required(Perm.VIEW)
def import_progress(request: AccountRequest, import_id: int) -> HttpResponse:
    """The progress card alone, polled by htmx every second while the import runs."""
    job = get_for_account_or_404(ImportJob, request.account, pk=import_id)
    response = render(
        request,
        "contacts/_import_progress.html",
        {"job": job, "progress": importing.progress_of(job)},
    )
    if job.is_finished:
        # The whole page changes (summary, rejects): reload it once.
        response["HX-Refresh"] = "true"
    return response


@account_required(Perm.EDIT_CONTENT)
def import_cancel(request: AccountRequest, import_id: int) -> HttpResponse:
    job = get_for_account_or_404(ImportJob, request.account, pk=import_id)
    if request.method == "POST":
        importing.import_cancel(job=job, actor=request.user)
        messages.success(request, "The import is cancelled; nothing from it was saved.")
        return redirect("import_detail", import_id=job.pk)
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Cancel the import of {job.original_name}?",
            "body": "It stops before saving anything; the contacts already in the list stay "
            "as they are.",
            "confirm_label": "Cancel import",
            "cancel_url": "lists",
        },
    )


@account_required(Perm.VIEW)
def import_rejects(request: AccountRequest, import_id: int) -> StreamingHttpResponse:
    return _rejects_csv(request, import_id, warnings=False)


@account_required(Perm.VIEW)
def import_warnings(request: AccountRequest, import_id: int) -> StreamingHttpResponse:
    """The values left out of rows that were imported."""
    return _rejects_csv(request, import_id, warnings=True)


def _rejects_csv(
    request: AccountRequest, import_id: int, *, warnings: bool
) -> StreamingHttpResponse:
    job = get_for_account_or_404(ImportJob, request.account, pk=import_id)
    response = StreamingHttpResponse(
        importing.rejects_csv(request.account, job, warnings=warnings),
        content_type="text/csv; charset=utf-8",
    )
    kind = "warnings" if warnings else "rejects"
    response["Content-Disposition"] = f'attachment; filename="{kind}-{job.pk}.csv"'
    response["Cache-Control"] = "no-store"
    return response


@account_required(Perm.VIEW)
def imports(request: AccountRequest) -> HttpResponse:
    return render(
        request, "contacts/imports.html", {"imports": selectors.imports(request.account)[:100]}
    )
