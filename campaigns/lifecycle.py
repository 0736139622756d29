"""The one write of a campaign's state, whoever moves it: a member or an API key (start,
schedule, pause, resume, cancel), the schedule (a campaign whose time came), the sender
(a campaign sent to the end, or one that cannot be sent), an account's closure or its
suspension. Each move is asked of ``campaigns.states.next_state`` and leaves an audit
entry naming who did it, or which part of Missive did.
"""

from __future__ import annotations

from enum import StrEnum

from accounts.models import User
from accounts.services import audit_log
from campaigns.models import Campaign
from campaigns.states import Action, next_state

AUDIT_ACTIONS: dict[str, str] = {
    Action.SCHEDULE: "campaign.scheduled",
    Action.UNSCHEDULE: "campaign.unscheduled",
    Action.START: "campaign.started",
    Action.PAUSE: "campaign.paused",
    Action.RESUME: "campaign.resumed",
    Action.CANCEL: "campaign.cancelled",
    Action.FINISH: "campaign.finished",
    Action.FAIL: "campaign.failed",
}


class By(StrEnum):
    """What part of Missive moved a campaign when no person or key did."""

    SCHEDULE = "schedule"  # its scheduled time came
    SENDER = "sender"  # sent to the end, or it could not be sent
    CLOSURE = "account closure"
    SUSPENSION = "sending suspension"  # the account's complaint rate went over the limit
    JOURNEY = "journey"  # a journey's email, started, paused or ended with its journey


def transition(
    campaign: Campaign,
    action: str,
    *,
    actor: User | None,
    by: By | None = None,
    **changes: object,
) -> str:
    """Move ``campaign`` by ``action``, with ``changes`` to its other fields, and audit it.
    The caller holds the campaign's row locked (``select_for_update``) in its transaction.
    ``actor`` is the member who acted (an API key is named by its request); ``by`` says
    what part of Missive did when nobody did. Raises TransitionRefused when the action is
    not possible in the campaign's state. Returns the new state."""
    campaign.status = next_state(campaign.status, action, campaign.kind)
    for name, value in changes.items():
        setattr(campaign, name, value)
    campaign.save(update_fields=["status", *changes])
    detail: dict[str, object] = {"name": campaign.name}
    if action == Action.SCHEDULE and campaign.scheduled_at:
        detail["at"] = campaign.scheduled_at.isoformat()
    if action == Action.FAIL:
        detail["reason"] = campaign.failure_reason
    audit_log(
        account=campaign.account,
        actor=actor,
        action=AUDIT_ACTIONS[action],
        acting=str(by) if by else "",
        **detail,
    )
    return campaign.status
