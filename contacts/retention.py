"""Retention of contacts data: opt-ins never confirmed, import uploads never imported,
and contacts inactive beyond their account's horizon (after the account was told)."""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import BadHeaderError, send_mail
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.template.loader import render_to_string

from accounts.models import Account, Membership
from accounts.purge import Policy
from accounts.roles import Role
from accounts.services import audit_log
from contacts.models import Contact, ImportJob, PublicLink, Subscription
from contacts.selectors import forget_list_counts

logger = logging.getLogger(__name__)

CHUNK = 5_000


def delete_contacts(ids: list[int]) -> int:
    """Delete contacts by id, set-based: their subscriptions go, their deliveries stay
    (counted, no longer linked to anyone)."""
    removed = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM contacts_subscription WHERE contact_id = ANY(%s) "
                "RETURNING contact_list_id",
                [chunk],
            )
            forget_list_counts(sorted({row[0] for row in cursor.fetchall()}))
            cursor.execute(
                "UPDATE campaigns_delivery SET contact_id = NULL WHERE contact_id = ANY(%s)",
                [chunk],
            )
            cursor.execute("DELETE FROM contacts_contact WHERE id = ANY(%s)", [chunk])
            removed += cursor.rowcount
    return removed


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
    from campaigns.models import Delivery

    orphans = Contact.objects.filter(pk__in=contact_ids).filter(
        ~Exists(Subscription.objects.filter(contact=OuterRef("pk"))),
        ~Exists(Delivery.objects.filter(contact=OuterRef("pk"))),
    )
    delete_contacts(list(orphans.values_list("pk", flat=True)))
    return removed


# -- import uploads ----------------------------------------------------------------------------


def _abandoned_uploads(now: datetime) -> QuerySet[ImportJob]:
    hours = settings.MISSIVE_RETENTION["import_uploads_hours"]
    return ImportJob.objects.filter(
        status=ImportJob.Status.UPLOADED, created_at__lt=now - timedelta(hours=hours)
    )


def uploads_due(now: datetime) -> int:
    return _abandoned_uploads(now).count()


def uploads_purge(now: datetime) -> int:
    from contacts.importing import imports_sweep

    hours = settings.MISSIVE_RETENTION["import_uploads_hours"]
    # (the sweep also runs every 10 minutes; this is the daily guarantee)
    return imports_sweep(upload_ttl=timedelta(hours=hours))["abandoned"]


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


def _removal_line(account: Account) -> datetime:
    """Contacts inactive since before this are removed now: those announced in the
    notice (activity since then moved them out)."""
    horizon = timedelta(days=account.inactivity_horizon_days)
    return account.inactivity_notified_at + _notice() - horizon


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
    recipients = list(
        Membership.objects.for_account(account)
        .filter(Q(role=Role.OWNER) | Q(role=Role.ADMIN))
        .values_list("user__email", flat=True)
    )
    context = {"account": account, "count": count, "on": on, "url": settings.MISSIVE_BASE_URL}
    try:
        send_mail(
            subject=f"[Missive] {count} inactive contacts will be removed on {on:%Y-%m-%d}",
            message=render_to_string("contacts/email/inactive_notice.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
        )
    except (OSError, smtplib.SMTPException, BadHeaderError) as error:
        logger.warning("Inactivity notice not sent: %s", error.__class__.__name__)


def inactive_purge(now: datetime) -> int:
    removed = 0
    for account in _accounts_with_horizon():
        if _ready(account, now):
            ids = list(
                _inactive_since(account, _removal_line(account)).values_list("pk", flat=True)
            )
            count = delete_contacts(ids)
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
            horizon = timedelta(days=account.inactivity_horizon_days)
            coming = _inactive_since(account, now + _notice() - horizon).count()
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


# -- the data requests log ----------------------------------------------------------------------


def _old_requests(now: datetime) -> QuerySet:
    from contacts.models import DataRequest

    days = settings.MISSIVE_RETENTION["audit_log_days"]
    return DataRequest.objects.filter(created_at__lt=now - timedelta(days=days))


def requests_due(now: datetime) -> int:
    return _old_requests(now).count()


def requests_purge(now: datetime) -> int:
    deleted, _ = _old_requests(now).delete()
    return deleted


# -- links mailed to people ------------------------------------------------------------------


def _expired_links(now: datetime) -> QuerySet[PublicLink]:
    return PublicLink.objects.filter(expires_at__lt=now)


def links_due(now: datetime) -> int:
    return _expired_links(now).count()


def links_purge(now: datetime) -> int:
    """An expired link opens nothing; its row only kept the address it was mailed to."""
    deleted, _ = _expired_links(now).delete()
    return deleted


POLICIES = [
    Policy(
        name="unconfirmed_opt_ins",
        description="Subscriptions never confirmed (double opt-in), kept 30 days by default.",
        due=unconfirmed_due,
        purge=unconfirmed_purge,
    ),
    Policy(
        name="import_uploads",
        description="Uploaded files never imported, kept 24 hours at most.",
        due=uploads_due,
        purge=uploads_purge,
    ),
    Policy(
        name="inactive_contacts",
        description="Contacts without human activity beyond their account's horizon (3 "
        "years by default), removed 30 days after the account is told how many.",
        due=inactive_due,
        purge=inactive_purge,
    ),
    Policy(
        name="data_requests_log",
        description="The log of recipients' data requests, kept one year like the audit log.",
        due=requests_due,
        purge=requests_purge,
    ),
    Policy(
        name="public_links",
        description="Links mailed to people (your data, erasure, do not contact), with the "
        "address each was mailed to, removed once expired (a week at most).",
        due=links_due,
        purge=links_purge,
    ),
]
