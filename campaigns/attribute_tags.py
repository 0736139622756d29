"""The campaigns that use an attribute's merge tag, for the attribute screens of
contacts (registered in ``CampaignsConfig.ready``, see contacts/merge_tags.py)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from campaigns.models import Campaign
from campaigns.states import State
from contacts.merge_tags import TagUse, tag_rename, tag_used

# The parts of a campaign that merge tags are rendered in.
PARTS = ("subject", "preheader", "html", "text")
# Campaigns a changed attribute still matters to: not sent yet, or not finished sending.
NOT_SENT = (State.DRAFT, State.SCHEDULED, State.SENDING, State.PAUSED)
# Sending renders the tag again with each batch, and a paused campaign may resume.
SENDING = (State.SENDING, State.PAUSED)


def _candidates(account: Account, name: str) -> QuerySet[Campaign]:
    needle = f"attributes.{name}"
    contains = Q()
    for part in PARTS:
        contains |= Q(**{f"{part}__contains": needle})
    return Campaign.objects.for_account(account).filter(contains, status__in=NOT_SENT)


def campaigns_using(account: Account, name: str, *, lock: bool = False) -> list[TagUse]:
    candidates = _candidates(account, name).order_by("name", "pk")
    if lock:
        # Starting, pausing and resuming lock the campaign's row too: a campaign that
        # starts sending meanwhile is seen as sending here, once its start commits.
        candidates = candidates.select_for_update()
    return [
        TagUse(
            id=campaign.pk,
            name=campaign.name,
            status=campaign.get_status_display(),
            editable=campaign.status == State.DRAFT,
            url=reverse("campaign_detail", args=[campaign.pk]),
            sending=campaign.status in SENDING,
        )
        for campaign in candidates
        if any(tag_used(getattr(campaign, part) or "", name) for part in PARTS)
    ]


def campaigns_rename_tag(account: Account, old: str, new: str) -> int:
    """The drafts that use ``{{ attributes.old }}`` use ``{{ attributes.new }}`` instead.
    A scheduled campaign is left as it is: it can no longer be edited."""
    changed = 0
    for campaign in _candidates(account, old).filter(status=State.DRAFT).select_for_update():
        parts = {part: tag_rename(getattr(campaign, part) or "", old, new) for part in PARTS}
        if any(parts[part] != getattr(campaign, part) for part in PARTS):
            for part, value in parts.items():
                setattr(campaign, part, value)
            campaign.updated_at = timezone.now()
            campaign.save(update_fields=[*PARTS, "updated_at"])
            changed += 1
    return changed
