"""The step editor of a journey's draft: each step a card with its counts, changed in
place with htmx (a card's form posts and the card comes back), added, moved and removed.
Without script every control is a plain link or form and the whole page comes back."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.http import AccountRequest
from accounts.roles import Perm
from accounts.views.decorators import account_required
from contacts import tagging
from journeys import services
from journeys import steps as stepping
from journeys.forms import TagStepForm
from journeys.models import Journey
from journeys.views import words
from journeys.views.page import can_edit, editor, journey_or_404, page_response


def back(request: AccountRequest, journey: Journey, anchor: str = "") -> HttpResponse:
    """To the journey's page, where the messages are: an htmx request is told to go there
    (a redirect it followed would swap the whole page into a card)."""
    address = reverse("journey_detail", args=[journey.pk]) + anchor
    if request.htmx:
        return HttpResponseClientRedirect(address)
    return redirect(address)


def _find_card(context: dict[str, Any], step_id: str) -> words.Card:
    for card, _branch in words.flatten(context["cards"]):
        if card.id == step_id:
            return card
    raise Http404("That step is not in the journey any more.")


def _step_or_404(journey: Journey, step_id: str) -> dict[str, Any]:
    found = stepping.find(list(journey.draft or []), step_id)
    if found is None:
        raise Http404("That step is not in the journey any more.")
    holder, position = found
    return holder[position]


def _card_response(request: AccountRequest, context: dict[str, Any], step_id: str) -> HttpResponse:
    context = {**context, "card": _find_card(context, step_id), "oob": True}
    response = render(request, "journeys/_card.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_http_methods(["GET", "POST"])
@account_required(Perm.VIEW)
def journey_step(request: AccountRequest, journey_id: int, step_id: str) -> HttpResponse:
    """A step's card (GET, closed); its settings saved (POST, the card back, or open on
    its form with what was wrong)."""
    journey = journey_or_404(request, journey_id)
    step = _step_or_404(journey, step_id)
    if request.method == "GET":
        if not request.htmx:
            return redirect(reverse("journey_detail", args=[journey.pk]) + f"#step-{step_id}")
        return _card_response(request, editor(request, journey), step_id)
    if not can_edit(request, journey):
        messages.error(request, "Your role cannot change this journey's steps.")
        return back(request, journey)
    context = editor(request, journey, open_id=step_id, data=request.POST)
    card = context["card"]
    if card is None:
        messages.error(request, f"A step of type “{step['type']}” has nothing to set.")
        return back(request, journey)
    error = ""
    if card.form.is_valid():
        try:
            settings = card.form.settings()
            if isinstance(card.form, TagStepForm) and card.form.cleaned_data["new_tag"].strip():
                tag, _made = tagging.tag_get_or_create(
                    account=request.account,
                    actor=request.user,
                    name=card.form.cleaned_data["new_tag"],
                )
                settings["tag"] = tag.pk
            services.step_change(
                journey=journey, actor=request.user, step_id=step_id, settings=settings
            )
        except (ValidationError, stepping.StepsInvalid) as refused:
            error = " ".join(
                refused.messages if isinstance(refused, ValidationError) else [str(refused)]
            )
        else:
            journey.refresh_from_db()
            if not request.htmx:
                messages.success(request, f"Step {card.number} saved.")
                return redirect(reverse("journey_detail", args=[journey.pk]) + f"#step-{step_id}")
            return _card_response(request, editor(request, journey, saved=step_id), step_id)
    context = editor(request, journey, open_id=step_id, data=request.POST, error=error)
    if request.htmx:
        # htmx swaps only successful answers: the card with its errors comes back as one.
        return _card_response(request, context, step_id)
    return page_response(request, journey, context, status=400)


@account_required(Perm.EDIT_CONTENT)
def journey_step_edit(request: AccountRequest, journey_id: int, step_id: str) -> HttpResponse:
    """The step's card open on its settings form."""
    journey = journey_or_404(request, journey_id)
    _step_or_404(journey, step_id)
    context = editor(request, journey, open_id=step_id)
    if request.htmx:
        return _card_response(request, context, step_id)
    return page_response(request, journey, context)


def _steps_response(request: AccountRequest, journey: Journey, open_id: str = "") -> HttpResponse:
    """After a step was added, moved or removed: the steps again (htmx), or the page."""
    if not request.htmx:
        anchor = f"#step-{open_id}" if open_id else "#steps"
        return redirect(reverse("journey_detail", args=[journey.pk]) + anchor)
    journey.refresh_from_db()
    context = {**editor(request, journey, open_id=open_id), "steps_oob": True}
    response = render(request, "journeys/_steps.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_POST
@account_required(Perm.EDIT_CONTENT)
def journey_step_add(request: AccountRequest, journey_id: int) -> HttpResponse:
    journey = journey_or_404(request, journey_id)
    kind = request.POST.get("type", "")
    after = request.POST.get("after", "")
    branch = request.POST.get("branch", "")
    if after and stepping.find(list(journey.draft or []), after) is None:
        messages.error(request, "That step is not in the journey any more: nothing was added.")
        return back(request, journey)
    try:
        step = services.step_add(
            journey=journey,
            actor=request.user,
            type=kind,
            after=after,
            branch=branch if branch in ("yes", "no") else "",
        )
    except ValidationError as refused:
        for reason in refused.messages:
            messages.error(request, reason)
        return back(request, journey)
    return _steps_response(request, journey, open_id=step["id"])


@require_POST
@account_required(Perm.EDIT_CONTENT)
def journey_step_move(request: AccountRequest, journey_id: int, step_id: str) -> HttpResponse:
    journey = journey_or_404(request, journey_id)
    _step_or_404(journey, step_id)
    direction = request.POST.get("direction", "")
    if direction not in ("up", "down"):
        messages.error(request, "Move a step up or down.")
        return back(request, journey)
    try:
        services.step_move(
            journey=journey,
            actor=request.user,
            step_id=step_id,
            offset=-1 if direction == "up" else 1,
        )
    except ValidationError as refused:
        for reason in refused.messages:
            messages.error(request, reason)
        return back(request, journey)
    return _steps_response(request, journey)


@account_required(Perm.EDIT_CONTENT)
def journey_step_remove(request: AccountRequest, journey_id: int, step_id: str) -> HttpResponse:
    journey = journey_or_404(request, journey_id)
    step = _step_or_404(journey, step_id)
    numbers = words.numbers_of(journey.draft or [])
    number = numbers.get(step_id, 0)
    if request.method == "POST":
        try:
            services.step_remove(journey=journey, actor=request.user, step_id=step_id)
        except ValidationError as refused:
            for reason in refused.messages:
                messages.error(request, reason)
        else:
            messages.success(request, f"Step {number} removed.")
        return redirect(reverse("journey_detail", args=[journey.pk]) + "#steps")
    inner = sum(1 for _ in stepping.walk(step.get("yes") or [])) + sum(
        1 for _ in stepping.walk(step.get("no") or [])
    )
    body = "Contacts waiting at it go on with the step after it once you publish."
    if step.get("type") == "condition" and inner:
        body = (
            f"Its branches go with it: {inner} step{'s' if inner != 1 else ''} inside them. " + body
        )
    if step.get("type") == "email":
        body = "Its message is deleted with it unless a published version sends it. " + body
    return render(
        request,
        "accounts/confirm.html",
        {
            "form": None,
            "title": f"Remove step {number} ({stepping.TYPES.get(step['type'], step['type'])})?",
            "body": body,
            "confirm_label": f"Remove step {number}",
            "cancel_href": reverse("journey_detail", args=[journey.pk]) + f"#step-{step_id}",
        },
    )
