"""A campaign's life, in one table: which state may follow which, and on what action.

Every transition is asked of ``next_state``; nothing else compares states to decide what
may happen. Pause, resume and cancel act between batches of sending.
"""

from __future__ import annotations

from django.db import models


class State(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    PAUSED = "paused", "Paused"
    SENT = "sent", "Sent"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class Action(models.TextChoices):
    EDIT = "edit", "Edit"
    SCHEDULE = "schedule", "Schedule"
    UNSCHEDULE = "unschedule", "Back to draft"
    START = "start", "Send now"
    PAUSE = "pause", "Pause"
    RESUME = "resume", "Resume"
    CANCEL = "cancel", "Cancel"
    FINISH = "finish", "Finish"
    FAIL = "fail", "Fail"
    DELETE = "delete", "Delete"


# (state, action) → the state after it. Edit and delete keep or end the row, so they map
# to the state they leave it in.
TRANSITIONS: dict[tuple[str, str], str] = {
    (State.DRAFT, Action.EDIT): State.DRAFT,
    (State.DRAFT, Action.DELETE): State.DRAFT,
    (State.DRAFT, Action.SCHEDULE): State.SCHEDULED,
    (State.DRAFT, Action.START): State.SENDING,
    (State.SCHEDULED, Action.UNSCHEDULE): State.DRAFT,
    (State.SCHEDULED, Action.START): State.SENDING,
    (State.SCHEDULED, Action.CANCEL): State.CANCELLED,
    (State.SCHEDULED, Action.FAIL): State.FAILED,
    (State.SENDING, Action.PAUSE): State.PAUSED,
    (State.SENDING, Action.CANCEL): State.CANCELLED,
    (State.SENDING, Action.FINISH): State.SENT,
    (State.SENDING, Action.FAIL): State.FAILED,
    (State.PAUSED, Action.RESUME): State.SENDING,
    (State.PAUSED, Action.CANCEL): State.CANCELLED,
}

# A journey's email (Campaign.Kind.JOURNEY) is started, paused, resumed and cancelled with
# its journey, never by hand; its content may be edited while it sends: whoever reaches
# the step next gets the new version.
JOURNEY_TRANSITIONS: dict[tuple[str, str], str] = {
    (State.DRAFT, Action.EDIT): State.DRAFT,
    (State.DRAFT, Action.DELETE): State.DRAFT,
    (State.DRAFT, Action.START): State.SENDING,
    (State.SENDING, Action.EDIT): State.SENDING,
    (State.SENDING, Action.PAUSE): State.PAUSED,
    (State.SENDING, Action.CANCEL): State.CANCELLED,
    (State.SENDING, Action.FAIL): State.FAILED,
    (State.PAUSED, Action.EDIT): State.PAUSED,
    (State.PAUSED, Action.RESUME): State.SENDING,
    (State.PAUSED, Action.CANCEL): State.CANCELLED,
}
JOURNEY_HUMAN_ACTIONS = (Action.EDIT,)

# What a person may do from the campaign page (finish and fail are the pipeline's).
HUMAN_ACTIONS = (
    Action.EDIT,
    Action.SCHEDULE,
    Action.UNSCHEDULE,
    Action.START,
    Action.PAUSE,
    Action.RESUME,
    Action.CANCEL,
    Action.DELETE,
)


class TransitionRefused(ValueError):
    """The action is not possible in the campaign's state; the message says why."""


def _table(kind: str) -> dict[tuple[str, str], str]:
    return JOURNEY_TRANSITIONS if kind == "journey" else TRANSITIONS


def next_state(state: str, action: str, kind: str = "campaign") -> str:
    """The state after ``action``, for a campaign of ``kind`` (Campaign.Kind)."""
    try:
        return _table(kind)[(state, action)]
    except KeyError:
        raise TransitionRefused(
            f"“{Action(action).label}” is not possible while the campaign is "
            f"{State(state).label.lower()}."
        ) from None


def allowed_actions(state: str, kind: str = "campaign") -> list[str]:
    """What a person may do to a campaign of ``kind`` in ``state``, from a page or the API."""
    actions = JOURNEY_HUMAN_ACTIONS if kind == "journey" else HUMAN_ACTIONS
    return [a for a in actions if (state, a) in _table(kind)]
