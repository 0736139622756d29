"""What the journey page is made of: the journey (fetched in the account), its settings
panel, its totals and the step editor of its draft. The page's views (manage, steps)
render it whole from here, with one card open or a form's errors when they have some."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import render

from accounts.http import AccountRequest
from accounts.roles import Perm, role_can
from accounts.scoping import get_for_account_or_404
from journeys import selectors, services
from journeys import steps as stepping
from journeys.forms import STEP_FORMS, AnyStepForm, ConditionForm, JourneySettingsForm
from journeys.models import Journey
from journeys.views import words

S = Journey.Status


def journey_or_404(request: AccountRequest, journey_id: int) -> Journey:
    journey = get_for_account_or_404(Journey, request.account, pk=journey_id)
    journey.account = request.account  # the same row: scoped above
    return journey


def can_edit(request: AccountRequest, journey: Journey) -> bool:
    return journey.status != S.ENDED and role_can(request.membership.role, Perm.EDIT_CONTENT)


def draft_problems(journey: Journey) -> dict[str, str]:
    """What stands in the way of each step of the draft, by step id."""
    try:
        services.check_steps(journey.account, journey.draft or [])
    except stepping.StepsInvalid as invalid:
        return dict(invalid.errors)
    return {}


def _step_form(
    journey: Journey, card: words.Card, emails: list[tuple[int, str]], data: Any = None
) -> AnyStepForm | None:
    form_class = STEP_FORMS.get(card.type)
    if form_class is None:
        return None
    if form_class is ConditionForm:
        return ConditionForm(data, step=card.row.step, account=journey.account, emails=emails)
    return form_class(data, step=card.row.step, account=journey.account)


def editor(
    request: AccountRequest,
    journey: Journey,
    *,
    open_id: str = "",
    data: Any = None,
    error: str = "",
    saved: str = "",
) -> dict[str, Any]:
    """The step editor's context: the draft's steps as cards, one of them open on its
    form (bound to ``data`` when posted)."""
    steps = journey.draft or []
    figures = selectors.step_figures(journey, steps)
    rows = selectors.rows(journey, steps, figures)
    cards = words.cards(journey.account, steps, rows, problems=draft_problems(journey))
    flat = [card for card, _branch in words.flatten(cards)]
    emails = [
        (card.campaign.pk, f"Step {card.number}: {card.campaign.name}")
        for card in flat
        if card.type == "email" and card.campaign is not None
    ]
    chosen = None
    for card in flat:
        if card.id == open_id and card.editable and can_edit(request, journey):
            card.open = True
            card.form = _step_form(journey, card, emails, data)
            card.error = error
            chosen = card
        card.saved = card.id == saved
    return {
        "journey": journey,
        "cards": cards,
        "card": chosen,
        "types": list(stepping.TYPES.items()),
        "can_edit": can_edit(request, journey),
        "draft_changed": services.draft_changed(journey),
        "started": journey.status in (S.LIVE, S.PAUSED, S.CLOSING),
        "problems": services.start_problems(journey) if journey.status == S.DRAFT else [],
    }


def page_context(
    request: AccountRequest,
    journey: Journey,
    *,
    form: JourneySettingsForm | None = None,
    steps: dict[str, Any] | None = None,
) -> dict[str, Any]:
    names = words.Names.for_journeys(journey.account, [journey])
    return {
        **(steps or editor(request, journey)),
        "form": form or JourneySettingsForm(journey=journey),
        "can_send": role_can(request.membership.role, Perm.SEND),
        "trigger_summary": words.trigger_summary(journey, names),
        "goal_summary": words.goal_summary(journey, names),
        "totals": selectors.totals(journey),
        "time_zone": journey.account.time_zone,
    }


def page_response(
    request: AccountRequest,
    journey: Journey,
    steps: dict[str, Any] | None = None,
    *,
    form: JourneySettingsForm | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "journeys/journey.html",
        page_context(request, journey, form=form, steps=steps),
        status=status,
    )
