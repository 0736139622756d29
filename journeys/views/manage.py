"""The journeys list, the starters to make one from, the journey page with its settings,
and what moves a journey: start, pause, resume, publish the draft, end, delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.http import AccountRequest
from accounts.query import QueryParams
from accounts.roles import Perm, role_can
from accounts.views.decorators import account_required
from journeys import selectors, services
from journeys import steps as stepping
from journeys.forms import (
    EMPTY,
    DeleteForm,
    EndForm,
    JourneySettingsForm,
    NewJourneyForm,
    PublishForm,
)
from journeys.models import Enrollment, Journey
from journeys.starters import STARTERS
from journeys.views import words
from journeys.views.page import journey_or_404, page_response

S = Journey.Status
ACTIVE = Enrollment.Status.ACTIVE


@account_required(Perm.VIEW)
def journeys(request: AccountRequest) -> HttpResponse:
    found = list(
        selectors.journeys(request.account).annotate(
            inside=Count("enrollments", filter=Q(enrollments__status=ACTIVE)),
            completed=Count(
                "enrollments", filter=Q(enrollments__status=Enrollment.Status.COMPLETED)
            ),
        )
    )
    names = words.Names.for_journeys(request.account, found)
    return render(
        request,
        "journeys/journeys.html",
        {
            "rows": [(j, words.trigger_summary(j, names)) for j in found],
            "time_zone": request.account.time_zone,
        },
    )


def _outline(steps: list[dict[str, Any]]) -> str:
    """A starter's steps in a line: “Email · Wait 3 days · Email”."""
    said = []
    for step in steps:
        if step["type"] == "wait" and step.get("until"):
            said.append(f"Wait until {step['until']['time']}")
        elif step["type"] == "wait":
            said.append(f"Wait {stepping.describe_wait(step)}")
        elif step["type"] == "condition":
            said.append("If / else")
        else:
            said.append(SHORT[step["type"]])
    return " · ".join(said)


SHORT = {"email": "Email", "tag": "Tag", "list": "List", "attribute": "Attribute", "exit": "Exit"}


@account_required(Perm.EDIT_CONTENT)
def journey_new(request: AccountRequest) -> HttpResponse:
    chosen = QueryParams(request.GET).choice(
        "starter", [s.key for s in STARTERS] + [EMPTY], STARTERS[0].key
    )
    form = NewJourneyForm(
        request.POST if request.method == "POST" else None, initial={"starter": chosen}
    )
    if request.method == "POST" and form.is_valid():
        starter = form.cleaned_data["starter"]
        try:
            journey = services.journey_create(
                account=request.account,
                actor=request.user,
                name=form.cleaned_data["name"],
                starter="" if starter == EMPTY else starter,
            )
        except ValidationError as error:
            form.add_error("name" if hasattr(error, "error_dict") else None, error.messages)
        else:
            messages.success(
                request,
                f"Journey “{journey.name}” made as a draft: choose what starts it, check its "
                "steps, then start it.",
            )
            return redirect("journey_detail", journey_id=journey.pk)
    starters = [(s, _outline(s.steps)) for s in STARTERS]
    return render(
        request,
        "journeys/journey_new.html",
        {"form": form, "starters": starters, "empty": EMPTY},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@account_required(Perm.VIEW)
def journey_detail(request: AccountRequest, journey_id: int) -> HttpResponse:
    """The journey page; a POST saves its settings."""
    journey = journey_or_404(request, journey_id)
    if request.method != "POST":
        return page_response(request, journey)
    if not role_can(request.membership.role, Perm.EDIT_CONTENT) or journey.status == S.ENDED:
        messages.error(request, "This journey's settings cannot be changed.")
        return redirect("journey_detail", journey_id=journey.pk)
    form = JourneySettingsForm(request.POST, journey=journey)
    if form.is_valid():
        fields, lists = form.changes()
        try:
            services.journey_update(journey=journey, actor=request.user, lists=lists, **fields)
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for key, reasons in error.message_dict.items():
                    form.add_error(form.field_for(key), reasons)
            else:
                form.add_error(None, error.messages)
        else:
            messages.success(request, "Settings saved.")
            return redirect("journey_detail", journey_id=journey.pk)
    return page_response(request, journey, form=form, status=400)


def _act(
    request: AccountRequest,
    journey: Journey,
    service: Callable[..., object],
    done: str,
    **arguments: object,
) -> HttpResponse:
    """Call one service that moves the journey; its refusals become messages, each a line
    of the list on the journey's page."""
    try:
        service(journey=journey, actor=request.user, **arguments)
    except ValidationError as refused:
        for reason in refused.messages:
            messages.error(request, reason)
    else:
        messages.success(request, done)
    return redirect("journey_detail", journey_id=journey.pk)


@require_POST
@account_required(Perm.SEND)
def journey_start(request: AccountRequest, journey_id: int) -> HttpResponse:
    journey = journey_or_404(request, journey_id)
    problems = services.start_problems(journey) if journey.status == S.DRAFT else []
    if problems:
        messages.error(request, "The journey cannot start yet:")
        for problem in problems:
            messages.error(request, problem)
        return redirect("journey_detail", journey_id=journey.pk)
    return _act(
        request,
        journey,
        services.journey_start,
        f"“{journey.name}” is live: contacts enter as its trigger happens.",
    )


@require_POST
@account_required(Perm.SEND)
def journey_pause(request: AccountRequest, journey_id: int) -> HttpResponse:
    journey = journey_or_404(request, journey_id)
    return _act(
        request,
        journey,
        services.journey_pause,
        "Paused: no one enters, no step runs and none of its emails leaves until you resume.",
    )


@require_POST
@account_required(Perm.SEND)
def journey_resume(request: AccountRequest, journey_id: int) -> HttpResponse:
    journey = journey_or_404(request, journey_id)
    return _act(
        request,
        journey,
        services.journey_resume,
        "Resumed: the waits that ended meanwhile go on now.",
    )


def _inside(journey: Journey) -> int:
    return Enrollment.objects.filter(journey=journey, status=ACTIVE).count()


@account_required(Perm.SEND)
def journey_end(request: AccountRequest, journey_id: int) -> HttpResponse:
    """End the journey: a page that asks what becomes of those inside, then the POST."""
    journey = journey_or_404(request, journey_id)
    form = EndForm(request.POST if request.method == "POST" else None)
    possible = journey.status in (S.LIVE, S.PAUSED, S.CLOSING)
    if request.method == "POST" and form.is_valid():
        inside = form.cleaned_data["inside"]
        return _act(
            request,
            journey,
            services.journey_close,
            "Ended: everyone inside was taken out."
            if inside == "remove"
            else "Closed to new contacts: it ends once the last one inside is through.",
            inside=inside,
        )
    return render(
        request,
        "journeys/journey_confirm.html",
        {
            "journey": journey,
            "form": form,
            "title": f"End “{journey.name}”?",
            "body": f"No one new enters. {_said_inside(_inside(journey))}",
            "possible": possible,
            "confirm_label": "End the journey",
            "danger": True,
        },
        status=400 if form.errors else 200,
    )


def _said_inside(count: int) -> str:
    if count == 0:
        return "Nobody is inside now."
    return f"{count} contact{'s are' if count != 1 else ' is'} inside now."


@account_required(Perm.SEND)
def journey_delete(request: AccountRequest, journey_id: int) -> HttpResponse:
    """Delete the journey; with contacts inside, taking them out must be ticked."""
    journey = journey_or_404(request, journey_id)
    inside = _inside(journey)
    form = DeleteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.journey_delete(
                journey=journey,
                actor=request.user,
                inside="remove" if form.cleaned_data["take_out"] else "",
            )
        except ValidationError as refused:
            form.add_error("take_out" if inside else None, refused.messages)
        else:
            messages.success(request, f"Journey “{journey.name}” deleted.")
            return redirect("journeys")
    if not inside:
        form.fields.pop("take_out")
    return render(
        request,
        "journeys/journey_confirm.html",
        {
            "journey": journey,
            "form": form,
            "title": f"Delete “{journey.name}”?",
            "body": (
                "Its steps, versions and the record of who went through are deleted; the "
                "messages it sent keep their reports with the campaigns. " + _said_inside(inside)
            ),
            "possible": True,
            "confirm_label": "Delete the journey",
            "danger": True,
        },
        status=400 if form.errors else 200,
    )


@account_required(Perm.SEND)
def journey_publish(request: AccountRequest, journey_id: int) -> HttpResponse:
    """Publish the draft as a new version: what it does to those inside, then the POST."""
    journey = journey_or_404(request, journey_id)
    form = PublishForm(request.POST if request.method == "POST" else None)
    possible = journey.status in (S.LIVE, S.PAUSED, S.CLOSING) and services.draft_changed(journey)
    if request.method == "POST" and possible and form.is_valid():
        move = form.cleaned_data["move"] == "move"
        try:
            version = services.journey_publish(journey=journey, actor=request.user, move=move)
        except ValidationError as refused:
            for reason in refused.messages:
                messages.error(request, reason)
        else:
            messages.success(
                request,
                f"Version {version.number} published: new contacts enter it"
                + (", and those inside moved to it where they could." if move else "."),
            )
        return redirect("journey_detail", journey_id=journey.pk)
    plan = services.move_plan(journey) if possible else None
    return render(
        request,
        "journeys/journey_publish.html",
        {
            "journey": journey,
            "form": form,
            "plan": plan,
            "possible": possible,
            "problems": services.start_problems(journey) if possible else [],
        },
        status=400 if form.errors else 200,
    )
