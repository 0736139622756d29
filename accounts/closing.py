"""A closed account, as the accounts app sees it: when its data go, who can reopen it,
and which of a user's memberships are of closed accounts. Closing it, its export and its
purge are the privacy app's (privacy/closure.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Account, Membership, User
from accounts.roles import Role
from accounts.services import audit_log


def purge_date(account: Account) -> datetime | None:
    if account.closed_at is None:
        return None
    return account.closed_at + timedelta(days=settings.MISSIVE_RETENTION["closed_accounts_days"])


@transaction.atomic
def account_reopen(*, account: Account, actor: User) -> Account:
    account = Account.objects.select_for_update().get(pk=account.pk)
    if not Membership.objects.filter(account=account, user=actor, role=Role.OWNER).exists():
        raise ValidationError("Only an owner can reopen the account.")
    if account.is_active:
        return account
    if account.purged_at is not None:
        raise ValidationError("The account's data were deleted: it cannot be reopened.")
    account.status = Account.Status.ACTIVE
    account.closed_at = None
    account.save(update_fields=["status", "closed_at"])
    audit_log(account=account, actor=actor, action="account.reopened")
    return account


def closed_memberships(user: User) -> list[Membership]:
    """The user's memberships of closed accounts whose data still exist."""
    return list(
        Membership.objects.filter(
            user=user, account__status=Account.Status.CLOSED, account__purged_at__isnull=True
        ).select_related("account")
    )
