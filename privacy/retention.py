"""Retention that weighs several apps' data: opt-ins never confirmed (their contacts go
too when nothing was ever sent to them), contacts inactive beyond their account's horizon
(after the account was told), and closed accounts (all their data 90 days after
closure by default; an anonymized stub stays for the operator's records)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils.translation import ngettext

from accounts.mail import send_notice
from accounts.models import Account, Membership
from accounts.retention_policy import Policy
from accounts.roles import Role
from accounts.services import audit_log
from campaigns.models import Delivery
from contacts.models import Contact, Subscription
from contacts.selectors import forget_list_counts
from contacts.services import delete_contact_rows
from privacy import closure

# -- unconfirmed opt-ins -----------------------------------------------------------------------


def _unconfirmed(now: datetime) -> QuerySet[Subscription]:
    days = settings.MISSIVE_RETENTION["unconfirmed_days"]
    return Subscription.objects.filter(
        status=Subscription.Status.UNCONFIRMED, created_at__lt=now - timedelta(days=days)
    )


def unconfirmed_due(now: datetime) -> int:
    return _unconfirmed(now).count()


def unconfirmed_purge(now: datetime) -> int:
    """The subscriptions go; so do their contacts when nothing else holds them (no other
    subscription, no message ever sent)."""
    subscriptions = _unconfirmed(now)
    contact_ids = list(subscriptions.values_list("contact_id", flat=True).distinct())
    list_ids = list(subscriptions.values_list("contact_list_id", flat=True).distinct())
    removed, _ = subscriptions.delete()
    forget_list_counts(list_ids)
    orphans = Contact.objects.filter(pk__in=contact_ids).filter(
        ~Exists(Subscription.objects.filter(contact=OuterRef("pk"))),
        ~Exists(Delivery.objects.filter(contact=OuterRef("pk"))),
    )
    delete_contact_rows(list(orphans.values_list("pk", flat=True)))
    return removed


# -- inactive contacts -------------------------------------------------------------------------


def _inactive_since(account: Account, before: datetime) -> QuerySet[Contact]:
    """Contacts of ``account`` with no human activity (nor creation) since ``before``."""
    return (
        Contact.objects.for_account(account)
        .annotate(active_at=Coalesce("last_activity_at", "created_at"))
        .filter(active_at__lt=before)
    )


def _accounts_with_horizon() -> QuerySet[Account]:
    return Account.objects.filter(
        status=Account.Status.ACTIVE, inactivity_horizon_days__isnull=False
    ).exclude(inactivity_horizon_days=0)


def _notice() -> timedelta:
    return timedelta(days=settings.MISSIVE_RETENTION["inactivity_notice_days"])


def _horizon(account: Account) -> timedelta:
    days = account.inactivity_horizon_days
    assert days is not None, "only accounts with a horizon are walked (_accounts_with_horizon)"
    return timedelta(days=days)


def _removal_line(account: Account) -> datetime:
    """Contacts inactive since before this are removed now: those announced in the
    notice (activity since then moved them out)."""
    notified = account.inactivity_notified_at
    assert notified is not None, "asked only once the notice went out (_ready)"
    return notified + _notice() - _horizon(account)


def _ready(account: Account, now: datetime) -> bool:
    notified = account.inactivity_notified_at
    return notified is not None and now >= notified + _notice()


def inactive_due(now: datetime) -> int:
    return sum(
        _inactive_since(account, _removal_line(account)).count()
        for account in _accounts_with_horizon()
        if _ready(account, now)
    )


def _tell(account: Account, count: int, on: datetime) -> None:
    """Have the owners and admins mailed how many contacts will go, and when (a worker
    sends it once this run's transaction commits, and retries)."""
    recipients = list(
        Membership.objects.for_account(account)
        .filter(Q(role=Role.OWNER) | Q(role=Role.ADMIN))
        .values_list("user__email", flat=True)
    )
    if not recipients:
        return
    context = {"account": account, "count": count, "on": on, "url": settings.MISSIVE_BASE_URL}
    subject = ngettext(
        "[Missive] %(count)d inactive contact will be removed on %(on)s",
        "[Missive] %(count)d inactive contacts will be removed on %(on)s",
        count,
    ) % {"count": count, "on": f"{on:%Y-%m-%d}"}
    send_notice("privacy/email/inactive_notice", context, to=recipients, subject=subject)


def inactive_purge(now: datetime) -> int:
    removed = 0
    for account in _accounts_with_horizon():
        if _ready(account, now):
            ids = list(
                _inactive_since(account, _removal_line(account)).values_list("pk", flat=True)
            )
            count = delete_contact_rows(ids)
            removed += count
            Account.objects.filter(pk=account.pk).update(inactivity_notified_at=None)
            audit_log(
                account=account,
                actor=None,
                action="retention.inactive_contacts_removed",
                count=count,
                horizon_days=account.inactivity_horizon_days,
            )
        elif account.inactivity_notified_at is None:
            coming = _inactive_since(account, now + _notice() - _horizon(account)).count()
            if coming:
                Account.objects.filter(pk=account.pk).update(inactivity_notified_at=now)
                _tell(account, coming, now + _notice())
                audit_log(
                    account=account,
                    actor=None,
                    action="retention.inactive_contacts_notice",
                    count=coming,
                    on=(now + _notice()).date().isoformat(),
                )
    return removed


def closed_due(now: datetime) -> int:
    return len(closure.purge_due(now))


def closed_purge(now: datetime) -> int:
    """The number of accounts whose data were deleted."""
    due = closure.purge_due(now)
    for account in due:
        closure.purge_account_data(account)
    return len(due)


POLICIES = [
    Policy(
        name="unconfirmed_opt_ins",
        description="Subscriptions never confirmed (double opt-in), kept 30 days by default.",
        due=unconfirmed_due,
        purge=unconfirmed_purge,
    ),
    Policy(
        name="inactive_contacts",
        description="Contacts without human activity beyond their account's horizon (3 "
        "years by default), removed 30 days after the account is told how many.",
        due=inactive_due,
        purge=inactive_purge,
    ),
    Policy(
        name="closed_accounts",
        description="All data of an account closed 90 days ago by default (counted in "
        "accounts); an anonymized stub stays.",
        due=closed_due,
        purge=closed_purge,
    ),
]
