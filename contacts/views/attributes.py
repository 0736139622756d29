from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.roles import Perm, role_can
from accounts.views.decorators import account_required
from contacts import selectors, services
from contacts.forms import AttributeForm
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
