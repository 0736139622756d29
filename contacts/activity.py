"""What happened lately to the messages sent to a contact, for the contact's page.

Contacts sit below the apps that send and track messages, so they cannot ask them
directly: the app that knows (stats) registers here, when it loads, how to find it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from accounts.models import Account
from contacts.models import Contact


@dataclass(frozen=True)
class Activity:
    occurred_at: datetime
    type: str
    label: str
    campaign_id: int | None
    campaign_name: str
    link_url: str
    machine: bool


Finder = Callable[[Account, Contact], list[Activity]]
_finders: list[Finder] = []


def register(find: Finder) -> None:
    if find not in _finders:
        _finders.append(find)


def contact_activity(account: Account, contact: Contact) -> list[Activity]:
    """The newest first, from every app that registered a finder."""
    found = [item for find in _finders for item in find(account, contact)]
    return sorted(found, key=lambda a: a.occurred_at, reverse=True)
