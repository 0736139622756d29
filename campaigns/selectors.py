from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import QuerySet

from accounts.models import Account
from campaigns.models import Campaign, Template
from campaigns.rendering import sample_values
from contacts.models import Contact, Subscription
from contacts.selectors import sendable_subscriptions


def campaigns(account: Account) -> QuerySet[Campaign]:
    return Campaign.objects.for_account(account).prefetch_related("lists")


def templates(account: Account) -> QuerySet[Template]:
    return Template.objects.for_account(account)


def recipient_values(campaign: Campaign, contact: Contact | None) -> dict[str, object]:
    """The plain values a message to ``contact`` is rendered with (sample values for a
    preview without a contact). Links are placeholders until the message is sent."""
    account = campaign.account
    values = sample_values(account_name=account.name, postal_address=account.postal_address)
    if contact is not None:
        values.update(
            email=contact.email,
            first_name=contact.first_name,
            last_name=contact.last_name,
            full_name=contact.full_name,
            attributes=dict(contact.attributes),
        )
    return values


@dataclass(frozen=True)
class Audience:
    subscribed: int  # distinct contacts subscribed to the campaign's lists
    sendable: int  # of them, those on no suppression list

    @property
    def excluded(self) -> int:
        return self.subscribed - self.sendable


def audience(campaign: Campaign) -> Audience:
    """Who the campaign would reach now, counted the way the send will build it."""
    list_ids = list(campaign.lists.values_list("pk", flat=True))
    subscribed = (
        Subscription.objects.for_account(campaign.account)
        .filter(contact_list_id__in=list_ids, status=Subscription.Status.SUBSCRIBED)
        .values("contact_id")
        .distinct()
        .count()
    )
    sendable = (
        sendable_subscriptions(campaign.account, list_ids).values("contact_id").distinct().count()
    )
    return Audience(subscribed=subscribed, sendable=sendable)


def start_problems(campaign: Campaign, reach: Audience | None = None) -> list[str]:
    """What stands between the campaign and sending it, each a sentence to act on."""
    problems = []
    if not campaign.subject.strip():
        problems.append("Write a subject.")
    try:
        validate_email(campaign.from_email)
    except ValidationError:
        problems.append("Give a valid sender address.")
    if not campaign.account.postal_address.strip():
        problems.append(
            "Add your postal address in Settings: the law requires it in every campaign."
        )
    if not campaign.html.strip():
        problems.append("Write the message.")
    if not campaign.lists.exists():
        problems.append("Choose at least one list.")
    else:
        reach = reach or audience(campaign)
        if reach.sendable == 0:
            problems.append(
                "Nobody on the chosen lists can receive it (no one subscribed, or all are "
                "suppressed)."
            )
    return problems
