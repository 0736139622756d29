"""Retention of account data: a closed account's data 90 days after closure (an
anonymized stub stays for the operator's records), and the audit log after a year."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from accounts import closing
from accounts.models import AuditEntry, RetentionRun
from accounts.purge import Policy


def closed_due(now: datetime) -> int:
    return len(closing.purge_due(now))


def closed_purge(now: datetime) -> int:
    """The number of accounts whose data were deleted."""
    due = closing.purge_due(now)
    for account in due:
        closing.purge_account_data(account)
    return len(due)


def _old_audit(now: datetime):
    return AuditEntry.objects.filter(
        created_at__lt=now - timedelta(days=settings.MISSIVE_RETENTION["audit_log_days"])
    )


def audit_due(now: datetime) -> int:
    return _old_audit(now).count() + _old_runs(now).count()


def _old_runs(now: datetime):
    # The record of retention runs is kept as long as the audit log.
    return RetentionRun.objects.filter(
        started_at__lt=now - timedelta(days=settings.MISSIVE_RETENTION["audit_log_days"])
    )


def audit_purge(now: datetime) -> int:
    deleted, _ = _old_audit(now).delete()
    runs, _ = _old_runs(now).delete()
    return deleted + runs


POLICIES = [
    Policy(
        name="closed_accounts",
        description="All data of an account closed 90 days ago by default (counted in "
        "accounts); an anonymized stub stays.",
        due=closed_due,
        purge=closed_purge,
    ),
    Policy(
        name="audit_log",
        description="Audit log entries (and records of retention runs), kept one year by default.",
        due=audit_due,
        purge=audit_purge,
    ),
]
