from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Account
from campaigns.models import Campaign, Template
from campaigns.rendering import sample_values
from contacts.models import Contact


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
