"""Retention of account data: the audit log (and the record of retention runs) after a
year, the record of Missive's own mail that could not be sent (it holds addresses) after
90 days. A closed account's data are the privacy app's policy (privacy/retention.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import AuditEntry, MailFailure, RetentionRun
from accounts.retention_policy import Policy


def _old_audit(now: datetime) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(
        created_at__lt=now - timedelta(days=settings.MISSIVE_RETENTION["audit_log_days"])
    )


def audit_due(now: datetime) -> int:
    return _old_audit(now).count() + _old_runs(now).count()


def _old_runs(now: datetime) -> QuerySet[RetentionRun]:
    # The record of retention runs is kept as long as the audit log.
    return RetentionRun.objects.filter(
        started_at__lt=now - timedelta(days=settings.MISSIVE_RETENTION["audit_log_days"])
    )


def audit_purge(now: datetime) -> int:
    deleted, _ = _old_audit(now).delete()
    runs, _ = _old_runs(now).delete()
    return deleted + runs


def _old_mail_failures(now: datetime) -> QuerySet[MailFailure]:
    return MailFailure.objects.filter(
        created_at__lt=now - timedelta(days=settings.MISSIVE_RETENTION["mail_failures_days"])
    )


def mail_failures_due(now: datetime) -> int:
    return _old_mail_failures(now).count()


def mail_failures_purge(now: datetime) -> int:
    deleted, _ = _old_mail_failures(now).delete()
    return deleted


POLICIES = [
    Policy(
        name="audit_log",
        description="Audit log entries (and records of retention runs), kept one year by default.",
        due=audit_due,
        purge=audit_purge,
    ),
    Policy(
        name="mail_failures",
        description="Records of Missive's own mail that could not be sent, kept 90 days by "
        "default.",
        due=mail_failures_due,
        purge=mail_failures_purge,
    ),
]
