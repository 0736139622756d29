"""The account's public archive: the campaigns it chose to show, as anyone may read them.

An archive is opened by its key, the account's id signed with the secret key (like a
subscribe form's key): stable, unguessable, and dead once the account is closed. A
campaign shows there once it is sent and while its ``public_archive`` is on. Its HTML is
rendered for nobody in particular: merge tags take empty values (so their defaults
show), the personal links are "#", and nothing is tracked: no pixel, links go straight
to their targets. The customer's footer and postal address show, the recipient's
unsubscribe link does not.
"""

from __future__ import annotations

from django.core import signing
from django.db.models import QuerySet

from accounts.models import Account
from campaigns import rendering, sanitizing
from campaigns.composing import compile_stored
from campaigns.models import Campaign
from campaigns.states import State
from contacts.models import ContactList


def _signer() -> signing.Signer:
    return signing.Signer(salt="missive.campaigns.archive")


def archive_key(account: Account) -> str:
    return _signer().sign(str(account.pk))


def account_for_key(key: str) -> Account | None:
    """The active account an archive key opens, or None for a forged or closed one."""
    if not key or len(key) > 100:
        return None
    try:
        account_id = _signer().unsign(key)
    except signing.BadSignature:
        return None
    if not account_id.isdigit():
        return None
    return Account.objects.filter(pk=int(account_id), status=Account.Status.ACTIVE).first()


def archived(account: Account) -> QuerySet[Campaign]:
    """The account's campaigns in its archive, newest first."""
    return (
        Campaign.objects.for_account(account)
        .filter(public_archive=True, status=State.SENT)
        .order_by("-started_at", "-pk")
    )


def public_values(account: Account) -> dict[str, object]:
    """What merge tags read in the archive: nobody's values."""
    return {
        **rendering.contact_values(email="", first_name="", last_name="", attributes={}),
        "unsubscribe_url": "#",
        "preferences_url": "#",
        "view_in_browser_url": "#",
        "stop_tracking_url": "#",
        "account_name": account.name,
        "postal_address": account.postal_address,
    }


def render(campaign: Campaign) -> tuple[str, str]:
    """The subject and the HTML of a campaign as its archive shows it."""
    values = public_values(campaign.account)
    subject = compile_stored(campaign.subject, autoescape=False).render(values)
    html = compile_stored(sanitizing.inline_css(campaign.html or "<p></p>"), autoescape=True)
    return subject, html.render(values)


def subscribe_lists(campaigns: QuerySet[Campaign] | list[Campaign]) -> list[ContactList]:
    """The lists whose forms a reader of these campaigns may subscribe through."""
    seen: dict[int, ContactList] = {}
    for campaign in campaigns:
        for contact_list in campaign.lists.all():
            seen.setdefault(contact_list.pk, contact_list)
    return list(seen.values())[:5]
