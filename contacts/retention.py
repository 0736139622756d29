"""Retention of contacts data: import uploads never imported, the log of data requests,
and the links mailed to people. Opt-ins never confirmed and inactive contacts are the
privacy app's policies (privacy/retention.py): they weigh what was sent."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet

from accounts.retention_policy import Policy
from contacts.importing.jobs import imports_sweep
from contacts.models import DataRequest, ImportJob, PublicLink

logger = logging.getLogger(__name__)

CHUNK = 5_000


# -- import uploads ----------------------------------------------------------------------------


def _abandoned_uploads(now: datetime) -> QuerySet[ImportJob]:
    hours = settings.MISSIVE_RETENTION["import_uploads_hours"]
    return ImportJob.objects.filter(
        status=ImportJob.Status.UPLOADED, created_at__lt=now - timedelta(hours=hours)
    )


def uploads_due(now: datetime) -> int:
    return _abandoned_uploads(now).count()


def uploads_purge(now: datetime) -> int:
    hours = settings.MISSIVE_RETENTION["import_uploads_hours"]
    # (the sweep also runs every 10 minutes; this is the daily guarantee)
    return imports_sweep(upload_ttl=timedelta(hours=hours))["abandoned"]


# -- the data requests log ----------------------------------------------------------------------


def _old_requests(now: datetime) -> QuerySet:
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
        name="import_uploads",
        description="Uploaded files never imported, kept 24 hours at most.",
        due=uploads_due,
        purge=uploads_purge,
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
