"""A sent campaign and the events its recipients made, written straight into the event
table (the way the sender, the public endpoints and provider webhooks record them), for
the roll-up and report tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from accounts.models import Account
from campaigns.models import Campaign, Delivery, Link
from campaigns.states import State
from contacts.models import Contact
from events.services import NewEvent, record_events

STARTED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@dataclass
class SentCampaign:
    campaign: Campaign
    deliveries: dict[str, Delivery]  # by address
    links: list[Link]

    def event(
        self,
        type: str,
        email: str,
        *,
        at: timedelta = timedelta(minutes=5),
        machine: bool = False,
        link: int | None = None,
        **detail: object,
    ) -> NewEvent:
        """An event of the recipient ``email``, ``at`` after the send began; ``link`` is
        a position in ``links``."""
        return NewEvent(
            type=type,
            account_id=self.campaign.account_id,
            campaign_id=self.campaign.pk,
            delivery_id=self.deliveries[email].pk,
            link_id=self.links[link].pk if link is not None else None,
            occurred_at=STARTED + at,
            machine=machine,
            detail=detail,
        )

    def record(self, *events: NewEvent) -> None:
        record_events(events)


def sent_campaign(
    account: Account,
    emails: list[str],
    *,
    name: str = "Autumn sale",
    links: tuple[str, ...] = ("https://shop.example/sale", "https://shop.example/boots"),
) -> SentCampaign:
    """A campaign sent to ``emails`` (one "sent" event each), with ``links`` in its body."""
    campaign = Campaign.objects.create(
        account=account,
        name=name,
        subject=name,
        from_email="news@shop.example",
        html="<p>Hi</p>",
        status=State.SENT,
        snapshot_at=STARTED,
        started_at=STARTED,
        finished_at=STARTED + timedelta(minutes=2),
        recipients_count=len(emails),
        sent_count=len(emails),
    )
    deliveries = {}
    for email in emails:
        contact = Contact.objects.create(account=account, email=email)
        deliveries[email] = Delivery.objects.create(
            campaign=campaign, contact=contact, status=Delivery.Status.SENT, sent_at=STARTED
        )
    sent = SentCampaign(
        campaign=campaign,
        deliveries=deliveries,
        links=[
            Link.objects.create(campaign=campaign, position=n, url=url)
            for n, url in enumerate(links, start=1)
        ],
    )
    sent.record(*(sent.event("sent", email, at=timedelta(seconds=30)) for email in emails))
    return sent


# Five recipients at three domains, and what they did (the report tests count on it):
#   ann   delivered, opened 3 times (and once through Apple's privacy proxy), clicked the
#         sale link twice and the boots link once
#   ben   delivered, opened once, clicked the sale link once (and a scanner followed the
#         boots link for him), complained, unsubscribed
#   cat   delivered; only Apple's privacy proxy opened it, and something followed the sale
#         link a minute after sending
#   dan   hard bounce
#   eve   soft bounce, twice
STORY_EMAILS = [
    "ann@gmail.test",
    "ben@gmail.test",
    "cat@yahoo.test",
    "dan@corp.test",
    "eve@yahoo.test",
]


def record_story(sc: SentCampaign) -> None:
    hour = timedelta(hours=1)
    sc.record(
        *(sc.event("delivered", who, at=timedelta(minutes=1)) for who in STORY_EMAILS[:3]),
        sc.event("bounce", "dan@corp.test", at=timedelta(minutes=1), kind="hard"),
        sc.event("bounce", "eve@yahoo.test", at=timedelta(minutes=1), kind="soft"),
        sc.event("bounce", "eve@yahoo.test", at=timedelta(minutes=50), kind="soft"),
        sc.event(
            "open",
            "ann@gmail.test",
            at=timedelta(minutes=2),
            machine=True,
            machine_reason="apple_mpp",
        ),
        sc.event("open", "ann@gmail.test", at=timedelta(minutes=10)),
        sc.event("open", "ann@gmail.test", at=timedelta(minutes=20)),
        sc.event("open", "ann@gmail.test", at=2 * hour),
        sc.event("open", "ben@gmail.test", at=2 * hour),
        sc.event(
            "open",
            "cat@yahoo.test",
            at=timedelta(minutes=3),
            machine=True,
            machine_reason="apple_mpp",
        ),
        sc.event("click", "ann@gmail.test", at=timedelta(minutes=11), link=0),
        sc.event("click", "ann@gmail.test", at=timedelta(minutes=12), link=0),
        sc.event("click", "ann@gmail.test", at=2 * hour, link=1),
        sc.event("click", "ben@gmail.test", at=2 * hour, link=0),
        sc.event(
            "click",
            "ben@gmail.test",
            at=timedelta(minutes=1),
            link=1,
            machine=True,
            machine_reason="scanner",
        ),
        sc.event(
            "click",
            "cat@yahoo.test",
            at=timedelta(minutes=1),
            link=0,
            machine=True,
            machine_reason="timing",
        ),
        sc.event("complaint", "ben@gmail.test", at=3 * hour),
        sc.event("unsubscribe", "ben@gmail.test", at=3 * hour, how="one-click"),
    )
