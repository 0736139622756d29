"""A campaign's A/B test on its page: set up while a draft, then each variant's figures
and, until the winner is chosen, a button to choose it by hand (campaigns.ab)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.http import AccountRequest
from accounts.roles import Perm
from accounts.scoping import get_for_account_or_404
from accounts.views.decorators import account_required
from campaigns import ab, blocks
from campaigns.models import ABTest, Campaign


def variants_from(
    data: QueryDict, campaign: Campaign, test: ABTest | None = None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """B, C and D as the form posted them, and the number each letter got; a variant
    left blank is not one. A variant that has its own blocks keeps them (the form holds
    only a mark of them); "Give B its own blocks" starts B's from a copy of A's, "Same
    content as A" drops them."""
    action = data.get("action", "")
    found: list[dict[str, Any]] = []
    numbers: dict[str, int] = {}
    for n, letter in enumerate(ab.LETTERS[1:], start=1):
        variant: dict[str, Any] = {name: data.get(f"{letter}-{name}", "") for name in ab.FIELDS}
        held = test.variants[n - 1].get("blocks") if test and n <= len(test.variants) else None
        if action == f"blocks-{letter}":
            variant["blocks"] = held or campaign.blocks or blocks.empty_document()
        elif held and data.get(f"{letter}-blocks") == "keep" and action != f"same-{letter}":
            variant["blocks"] = held
        if "blocks" in variant:
            variant["html"] = ""
        if variant.get("blocks") or any(str(v).strip() for v in variant.values()):
            found.append(variant)
            numbers[letter] = len(found)
    return found, numbers


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
            variants, numbers = variants_from(
                request.POST, campaign, ABTest.objects.filter(campaign=campaign).first()
            )
            test = ab.set_up(
                campaign=campaign,
                actor=request.user,
                variants=variants,
                share=_number(request.POST, "share", 20),
                metric=request.POST.get("metric", ""),
                wait_hours=_number(request.POST, "wait_hours", 4),
            )
            messages.success(
                request,
                f"A/B test of {test.count} variants saved: {test.share}% of the audience "
                "tries them, the rest gets the winner.",
            )
            action = request.POST.get("action", "")
            letter = action.removeprefix("blocks-")
            if action.startswith("blocks-") and letter in numbers:
                url = reverse("campaign_blocks", args=[campaign.pk])
                return redirect(f"{url}?variant={numbers[letter]}")
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
