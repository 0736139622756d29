"""Journeys the tests build through the services, as a member would."""

from __future__ import annotations

from typing import Any

from campaigns import services as campaign_services
from campaigns.models import Campaign
from journeys import services


def branch_on_opening(
    journey: Any, owner: Any, subjects: tuple[str, str, str], *, wait_days: int = 1
) -> dict[str, dict]:
    """email 1 → wait → "opened email 1?" (people) → yes: email 2a / no: email 2b, with
    the three emails' subjects. Returns the steps by role: first, wait, condition, yes,
    no."""
    first = services.step_add(journey=journey, actor=owner, type="email")
    wait = services.step_add(journey=journey, actor=owner, type="wait", after=first["id"])
    services.step_change(
        journey=journey,
        actor=owner,
        step_id=wait["id"],
        settings={"amount": wait_days, "unit": "days"},
    )
    cond = services.step_add(journey=journey, actor=owner, type="condition", after=wait["id"])
    yes = services.step_add(
        journey=journey, actor=owner, type="email", after=cond["id"], branch="yes"
    )
    no = services.step_add(
        journey=journey, actor=owner, type="email", after=cond["id"], branch="no"
    )
    services.step_change(
        journey=journey,
        actor=owner,
        step_id=cond["id"],
        settings={
            "definition": {
                "match": "all",
                "conditions": [{"field": "opened", "op": "ever", "campaign": first["campaign"]}],
            }
        },
    )
    for step, subject in zip((first, yes, no), subjects, strict=True):
        campaign_services.campaign_update(
            campaign=Campaign.objects.get(pk=step["campaign"]), actor=owner, subject=subject
        )
    return {"first": first, "wait": wait, "condition": cond, "yes": yes, "no": no}
