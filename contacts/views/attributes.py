"""Attributes: declare them, and rename, retype or delete them after a confirmation page
saying what happens to the contacts' values and to the campaigns that use the tag. While
a campaign using the tag is being sent, the page says so and the change is refused."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import ngettext

from accounts.http import AccountRequest
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from contacts import merge_tags, selectors, services
from contacts.forms import AttributeForm
from contacts.forms_attributes import AttributeRenameForm, AttributeRetypeForm
from contacts.models import AttributeDefinition
from contacts.views.lists import _add_errors


@account_required(Perm.VIEW)
def attributes(request: AccountRequest) -> HttpResponse:
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


def _impact(definition: AttributeDefinition, refused: str = "") -> dict[str, object]:
    """What a change touches: the contacts holding a value, the campaigns using the tag,
    and why it cannot be made now (a campaign using the tag is being sent): as the
    service said when it refused, or as the campaigns are now."""
    campaigns = merge_tags.uses(definition.account, definition.name)
    return {
        "definition": definition,
        "holders": selectors.attribute_holders(definition),
        "campaigns": campaigns,
        "blocked": refused or services.attribute_in_use_message(definition.name, campaigns),
    }


def _status(form_errors: object, refused: str) -> int:
    return 409 if refused else 400 if form_errors else 200


def _count(number: int, singular: str, plural: str) -> str:
    return ngettext(singular, plural, number) % {"count": f"{number:,}"}


@account_required(Perm.EDIT_CONTENT)
def attribute_rename(request: AccountRequest, attribute_id: int) -> HttpResponse:
    definition = get_for_account_or_404(AttributeDefinition, request.account, pk=attribute_id)
    form = AttributeRenameForm(
        request.POST or None, initial={"name": definition.name}, definition=definition
    )
    refused = ""
    if request.method == "POST" and form.is_valid():
        old = definition.name
        try:
            changed = services.attribute_rename(
                definition=definition,
                actor=request.user,
                name=form.cleaned_data["name"],
                update_campaigns=form.cleaned_data["update_campaigns"],
            )
        except AttributeDefinition.DoesNotExist:
            raise Http404 from None
        except services.AttributeInUse as error:
            refused = error.messages[0]
        except ValidationError as error:
            _add_errors(form, error)
        else:
            new = form.cleaned_data["name"]
            updated = _count(
                changed, "; %(count)s draft campaign updated", "; %(count)s draft campaigns updated"
            )
            messages.success(request, f"“{old}” is now “{new}”{updated if changed else ''}.")
            return redirect("attributes")
    return render(
        request,
        "contacts/attribute_rename.html",
        {**_impact(definition, refused), "form": form},
        status=_status(form.errors, refused),
    )


@account_required(Perm.EDIT_CONTENT)
def attribute_retype(request: AccountRequest, attribute_id: int) -> HttpResponse:
    """Choose the type (GET), see what converting the stored values does (GET with
    ``type``), then confirm (POST) with the number of values the page said would be
    dropped: if that many no longer would be, the page is shown again with the new count."""
    definition = get_for_account_or_404(AttributeDefinition, request.account, pk=attribute_id)
    data = request.POST if request.method == "POST" else request.GET
    form = AttributeRetypeForm(
        data if "type" in data else None, initial={"type": definition.type}, definition=definition
    )
    plan = None
    refused = new_type = ""
    if form.is_bound and form.is_valid():
        new_type = form.cleaned_data["type"]
        if request.method == "POST":
            # Without the count the page showed, nothing is dropped.
            confirmed = form.cleaned_data["drops"]
            try:
                done = services.attribute_retype(
                    definition=definition,
                    actor=request.user,
                    type=new_type,
                    drop_invalid=bool(confirmed),
                    expected_drops=confirmed,
                )
            except AttributeDefinition.DoesNotExist:
                raise Http404 from None
            except services.AttributeInUse as error:
                refused = error.messages[0]
            except services.AttributeValuesWouldDrop as error:
                # Shown above the new count, which the page shows again to confirm.
                form.add_error(None, error.messages)
            except ValidationError as error:
                _add_errors(form, error)
            else:
                label = AttributeDefinition.Type(new_type).label.lower()
                dropped = _count(
                    done.failing, "; %(count)s value dropped", "; %(count)s values dropped"
                )
                messages.success(
                    request,
                    f"“{definition.name}” is now of type {label}{dropped if done.failing else ''}.",
                )
                return redirect("attributes")
        plan = services.attribute_retype_plan(definition, new_type)
    return render(
        request,
        "contacts/attribute_retype.html",
        {
            **_impact(definition, refused),
            "form": form,
            "plan": plan,
            "new_type": new_type if plan else "",
        },
        status=_status(form.errors, refused),
    )


@account_required(Perm.EDIT_CONTENT)
def attribute_delete(request: AccountRequest, attribute_id: int) -> HttpResponse:
    definition = get_for_account_or_404(AttributeDefinition, request.account, pk=attribute_id)
    refused = ""
    if request.method == "POST":
        try:
            cleared = services.attribute_delete(definition=definition, actor=request.user)
        except AttributeDefinition.DoesNotExist:
            raise Http404 from None
        except services.AttributeInUse as error:
            refused = error.messages[0]
        else:
            values = _count(cleared, "with %(count)s value", "with %(count)s values")
            messages.success(request, f"Attribute “{definition.name}” deleted, {values}.")
            return redirect("attributes")
    return render(
        request,
        "contacts/attribute_delete.html",
        _impact(definition, refused),
        status=_status(None, refused),
    )
