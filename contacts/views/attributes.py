"""Attributes: declare them, and rename, retype or delete them after a confirmation page
saying what happens to the contacts' values and to the campaigns that use the tag."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from contacts import merge_tags, selectors, services
from contacts.forms import AttributeForm
from contacts.forms_attributes import AttributeRenameForm, AttributeRetypeForm
from contacts.models import AttributeDefinition
from contacts.views.lists import _add_errors


@account_required(Perm.VIEW)
def attributes(request: HttpRequest) -> HttpResponse:
    can_edit = role_can(request.membership.role, Perm.EDIT_CONTENT)
    form = AttributeForm(request.POST or None)
    if request.method == "POST":
        if not can_edit:
            messages.error(request, "Your role cannot declare attributes.")
            return redirect("attributes")
        if form.is_valid():
            try:
                definition = services.attribute_define(
                    account=request.account, actor=request.user, **form.cleaned_data
                )
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, f"Attribute “{definition.name}” declared.")
                return redirect("attributes")
    return render(
        request,
        "contacts/attributes.html",
        {"form": form, "attributes": selectors.attributes(request.account), "can_edit": can_edit},
    )


def _impact(definition: AttributeDefinition) -> dict[str, object]:
    """What a change touches: the contacts holding a value, the campaigns using the tag."""
    return {
        "definition": definition,
        "holders": selectors.attribute_holders(definition),
        "campaigns": merge_tags.uses(definition.account, definition.name),
    }


@account_required(Perm.EDIT_CONTENT)
def attribute_rename(request: HttpRequest, attribute_id: int) -> HttpResponse:
    definition = get_for_account_or_404(AttributeDefinition, request.account, pk=attribute_id)
    form = AttributeRenameForm(request.POST or None, initial={"name": definition.name})
    if request.method == "POST" and form.is_valid():
        old = definition.name
        try:
            changed = services.attribute_rename(
                definition=definition,
                actor=request.user,
                name=form.cleaned_data["name"],
                update_campaigns=form.cleaned_data["update_campaigns"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request,
                f"“{old}” is now “{definition.name}”"
                + (f"; {changed} draft campaign(s) updated." if changed else "."),
            )
            return redirect("attributes")
    return render(
        request,
        "contacts/attribute_rename.html",
        {**_impact(definition), "form": form},
        status=400 if form.errors else 200,
    )


@account_required(Perm.EDIT_CONTENT)
def attribute_retype(request: HttpRequest, attribute_id: int) -> HttpResponse:
    """Choose the type (GET), see what converting the stored values does (GET with
    ``type``), then confirm (POST): values that cannot be converted are dropped."""
    definition = get_for_account_or_404(AttributeDefinition, request.account, pk=attribute_id)
    data = request.POST if request.method == "POST" else request.GET
    form = AttributeRetypeForm(data if "type" in data else None, initial={"type": definition.type})
    plan = None
    if form.is_bound and form.is_valid():
        new_type = form.cleaned_data["type"]
        if request.method == "POST":
            try:
                services.attribute_retype(
                    definition=definition, actor=request.user, type=new_type, drop_invalid=True
                )
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(
                    request,
                    f"“{definition.name}” is now of type "
                    f"{AttributeDefinition.Type(new_type).label.lower()}.",
                )
                return redirect("attributes")
        plan = services.attribute_retype_plan(definition, new_type)
    return render(
        request,
        "contacts/attribute_retype.html",
        {
            **_impact(definition),
            "form": form,
            "plan": plan,
            "new_type": form.cleaned_data["type"] if plan else "",
        },
        status=400 if form.errors else 200,
    )


@account_required(Perm.EDIT_CONTENT)
def attribute_delete(request: HttpRequest, attribute_id: int) -> HttpResponse:
    definition = get_for_account_or_404(AttributeDefinition, request.account, pk=attribute_id)
    if request.method == "POST":
        cleared = services.attribute_delete(definition=definition, actor=request.user)
        messages.success(
            request, f"Attribute “{definition.name}” deleted, with its {cleared} value(s)."
        )
        return redirect("attributes")
    return render(request, "contacts/attribute_delete.html", _impact(definition))
