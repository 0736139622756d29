"""What the campaigns app does when a lower app says something changed."""

from __future__ import annotations

from typing import Any

from accounts.tasking import enqueue
from campaigns import sending
from campaigns.models import Campaign
from campaigns.states import State
from domains import pacing
from domains.models import SendingDomain


def release_warmup_hold(sender: object, *, domain_id: int, **_: Any) -> None:
    """A domain's warm-up was turned off or its caps changed: what its campaigns held
    until the domain's next local midnight is due again, and their lanes start once this
    commits. A batch that still finds today's cap spent holds the rest again."""
    domain = SendingDomain.objects.select_related("account").filter(pk=domain_id).first()
    if domain is None:
        return
    campaigns = Campaign.objects.filter(status=State.SENDING)
    if domain.account_id is not None:
        # The shared domain sends for several accounts; an account's domain for its own.
        campaigns = campaigns.filter(
            account_id=domain.account_id, from_email__iendswith=f"@{domain.name}"
        )
    midnight = pacing.next_local_midnight(domain)
    for campaign_id in campaigns.values_list("pk", flat=True):
        if sending.unhold(campaign_id, midnight):
            enqueue("campaigns.kick", campaign_id)
