"""Segments: the list, the builder (live count and a sample of who matches as the
conditions change), delete, and turning one into a list."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.http import AccountRequest
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from audiences import builder, selectors, services
from audiences.conditions import Context, Invalid, clean_definition, context_for
from audiences.models import Segment
from contacts import tagging

SAMPLE_SIZE = 10


@account_required(Perm.VIEW)
def segments(request: AccountRequest) -> HttpResponse:
    return render(
        request,
        "audiences/segments.html",
        {"segments": selectors.segments(request.account)},
    )


@account_required(Perm.VIEW)
def segment_count(request: AccountRequest, segment_id: int) -> HttpResponse:
    """How many match now: loaded into the list page row by row."""
    segment = get_for_account_or_404(Segment, request.account, pk=segment_id)
    problem = ""
    found = None
    try:
        found = selectors.count(request.account, segment.definition)
    except Invalid:
        problem = selectors.problem(segment)
    return render(
        request, "audiences/_count.html", {"count": found, "problem": problem, "segment": segment}
    )


def _result(definition: Any, ctx: Context) -> dict[str, Any]:
    """What the builder shows under the conditions: the count and a sample, or what is
    wrong, beside the part at fault."""
    errors: dict[str, str] = {}
    found, sample, partial = None, [], False
    try:
        clean = clean_definition(definition, ctx)
    except Invalid as invalid:
        errors = invalid.errors
        # Conditions still waiting for their value are left out of the count meanwhile.
        rest = builder.without_blanks(definition, errors)
        clean = None
        if rest is not None:
            try:
                clean = clean_definition(rest, ctx)
            except Invalid:
                clean = None
            partial = clean is not None
    if clean is not None:
        matching = selectors.matching_clean(clean, ctx)
        found = selectors.count(ctx.account, clean, now=ctx.now)
        sample = list(matching.order_by("-pk")[:SAMPLE_SIZE])
    return {
        "tree": builder.rows(definition, ctx, errors),
        "fields": builder.field_choices(ctx),
        "count": found,
        "partial": partial,
        "problems": builder.problems(errors),
        "sample": sample,
        "errors": errors,
    }


def _builder(request: AccountRequest, segment: Segment | None) -> HttpResponse:
    ctx = context_for(request.account)
    can_edit = role_can(request.membership.role, Perm.EDIT_CONTENT)
    name = segment.name if segment else ""
    description = segment.description if segment else ""
    definition: Any = (
        segment.definition
        if segment
        else {"match": "all", "conditions": [dict(builder.NEW_CONDITION)]}
    )
    name_error = ""
    if request.method == "POST":
        name = request.POST.get("name", "")
        description = request.POST.get("description", "")
        definition = builder.from_form(request.POST, ctx)
        action = request.POST.get("action", "")
        if action == "save":
            if not can_edit:
                messages.error(request, "Your role cannot change segments.")
                return redirect("segments")
            saved, name_error = _save(request, segment, name, description, definition)
            if saved is not None:
                url = reverse("segment_detail", args=[saved.pk])
                if request.htmx:
                    return HttpResponseClientRedirect(url)
                return redirect(url)
        elif action:
            definition = builder.apply(definition, action)
    context = {
        "segment": segment,
        "name": name,
        "description": description,
        "name_error": name_error,
        "can_edit": can_edit,
        **_result(definition, ctx),
    }
    template = "audiences/segment.html"
    if request.htmx and request.method == "POST" and not request.htmx.history_restore_request:
        template = "audiences/_builder.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _save(
    request: AccountRequest,
    segment: Segment | None,
    name: str,
    description: str,
    definition: Any,
) -> tuple[Segment | None, str]:
    try:
        if segment is None:
            segment = services.segment_create(
                account=request.account,
                actor=request.user,
                name=name,
                description=description,
                definition=definition,
            )
            messages.success(request, f"Segment “{segment.name}” saved.")
        else:
            services.segment_update(
                segment=segment,
                actor=request.user,
                name=name,
                description=description,
                definition=definition,
            )
            messages.success(request, "Segment saved.")
    except Invalid:
        return None, ""  # the builder shows each error beside its condition
    except ValidationError as error:
        return None, " ".join(error.messages)
    return segment, ""


@account_required(Perm.VIEW)
def segment_new(request: AccountRequest) -> HttpResponse:
    return _builder(request, None)


@account_required(Perm.VIEW)
def segment_detail(request: AccountRequest, segment_id: int) -> HttpResponse:
    segment = get_for_account_or_404(Segment, request.account, pk=segment_id)
    return _builder(request, segment)


@account_required(Perm.EDIT_CONTENT)
def segment_delete(request: AccountRequest, segment_id: int) -> HttpResponse:
    segment = get_for_account_or_404(Segment, request.account, pk=segment_id)
    if request.method == "POST":
        try:
            services.segment_delete(segment=segment, actor=request.user)
        except services.SegmentInUse as in_use:
            messages.error(request, " ".join(in_use.messages))
            return redirect("segment_detail", segment_id=segment.pk)
        messages.success(request, f"Segment “{segment.name}” deleted.")
        return redirect("segments")
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Delete the segment “{segment.name}”?",
            "body": "Its conditions are deleted. No contact is changed or removed, and "
            "campaigns already sent to it keep their recipients.",
            "confirm_label": "Delete the segment",
            "cancel_url": "segments",
        },
    )


@require_POST
@account_required(Perm.EDIT_CONTENT)
def segment_to_list(request: AccountRequest, segment_id: int) -> HttpResponse:
    segment = get_for_account_or_404(Segment, request.account, pk=segment_id)
    name = request.POST.get("list_name", "").strip() or segment.name
    try:
        made, added = services.segment_to_list(segment=segment, actor=request.user, name=name)
    except Invalid:
        messages.error(request, selectors.problem(segment))
        return redirect("segment_detail", segment_id=segment.pk)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("segment_detail", segment_id=segment.pk)
    messages.success(
        request,
        f"List “{made.name}” made with the {added} subscribed contact"
        f"{'s' if added != 1 else ''} of the segment; it does not change when the segment "
        "does.",
    )
    return redirect("list_detail", list_id=made.pk)


@require_POST
@account_required(Perm.EDIT_CONTENT)
def segment_tag(request: AccountRequest, segment_id: int) -> HttpResponse:
    """Put a tag on (or take it off) every contact the segment matches now."""
    segment = get_for_account_or_404(Segment, request.account, pk=segment_id)
    remove = request.POST.get("remove") == "1"
    try:
        contacts = selectors.matching(request.account, segment.definition)
        change = tagging.untag_contacts if remove else tagging.tag_contacts
        done = change(
            account=request.account,
            actor=request.user,
            tag=request.POST.get("tag_name", ""),
            contacts=contacts,
            how=f"segment {segment.name}",
        )
    except Invalid:
        messages.error(request, selectors.problem(segment))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        verb = "taken off" if remove else "put on"
        messages.success(
            request,
            f"“{done.tag.name}” {verb} {done.changed} contact{'s' if done.changed != 1 else ''}"
            f" of the segment ({done.matched} match now).",
        )
    return redirect("segment_detail", segment_id=segment.pk)
