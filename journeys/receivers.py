"""What journeys do when the contacts app says something changed."""

from __future__ import annotations

from typing import Any

from accounts.tasking import enqueue
from journeys.models import Journey

NUDGED = (Journey.Trigger.SUBSCRIBED, Journey.Trigger.TAG_ADDED)


def nudge(sender: object, *, account_id: int, **_: Any) -> None:
    """A subscription or a tag changed: read the triggers of the account's live journeys
    once this commits, rather than at the next minute's tick."""
    if Journey.objects.filter(
        account_id=account_id, status=Journey.Status.LIVE, trigger__in=NUDGED
    ).exists():
        enqueue("journeys.scan_account", account_id)
