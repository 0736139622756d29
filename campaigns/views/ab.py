"""A campaign's A/B test on its page: set up while a draft, then each variant's figures
and, until the winner is chosen, a button to choose it by hand (campaigns.ab)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.http import AccountRequest
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from campaigns import ab
from campaigns.models import Campaign


def variants_from(data: QueryDict) -> list[dict[str, Any]]:
    """B, C and D as the form posted them; a variant left blank is not one."""
    found = []
    for letter in ab.LETTERS[1:]:
        variant = {name: data.get(f"{letter}-{name}", "") for name in ab.FIELDS}
        if any(value.strip() for value in variant.values()):
            found.append(variant)
    return found


def _number(data: QueryDict, name: str, default: int) -> int:
    try:
        return int(data.get(name, default))
    except ValueError:
        return -1  # refused by the service, naming the field


@require_POST
@account_required(Perm.EDIT_CONTENT)
def campaign_ab(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    try:
        if request.POST.get("action") == "remove":
            ab.take_down(campaign=campaign, actor=request.user)
            messages.success(request, "The A/B test is removed: everyone gets A.")
        else:
            test = ab.set_up(
                campaign=campaign,
                actor=request.user,
                variants=variants_from(request.POST),
                share=_number(request.POST, "share", 20),
                metric=request.POST.get("metric", ""),
                wait_hours=_number(request.POST, "wait_hours", 4),
            )
            messages.success(
                request,
                f"A/B test of {test.count} variants saved: {test.share}% of the audience "
                "tries them, the rest gets the winner.",
            )
    except ValidationError as error:
        problems = (
            [f"{k}: {' '.join(v)}" for k, v in error.message_dict.items()]
            if hasattr(error, "error_dict")
            else error.messages
        )
        messages.error(request, "The A/B test was not saved. " + " ".join(problems))
    return redirect("campaign_detail", campaign_id=campaign.pk)


@require_POST
@account_required(Perm.SEND)
def campaign_ab_winner(request: AccountRequest, campaign_id: int) -> HttpResponse:
    campaign = get_for_account_or_404(Campaign, request.account, pk=campaign_id)
    try:
        variant = int(request.POST.get("variant", ""))
        test = ab.choose_winner(campaign=campaign, variant=variant, actor=request.user)
    except (ValueError, ValidationError) as error:
        text = " ".join(error.messages) if isinstance(error, ValidationError) else ""
        messages.error(request, f"No winner was chosen. {text or 'Choose a variant.'}")
    else:
        messages.success(
            request, f"Variant {ab.letter(test.winner or 0)} won: the rest of the audience gets it."
        )
    return redirect("campaign_detail", campaign_id=campaign.pk)
