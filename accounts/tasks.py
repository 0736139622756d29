from __future__ import annotations

from axes.models import AccessFailureLog
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from accounts.models import Invitation


@shared_task(name="accounts.purge_login_failures")
def purge_login_failures() -> int:
    """Failed-login records are personal data: keep them only as long as they serve."""
    cutoff = timezone.now() - settings.LOGIN_FAILURE_RETENTION
    deleted, _ = AccessFailureLog.objects.filter(attempt_time__lt=cutoff).delete()
    return deleted


@shared_task(name="accounts.purge_expired_invitations")
def purge_expired_invitations() -> int:
    deleted, _ = Invitation.objects.filter(
        accepted_at__isnull=True, expires_at__lt=timezone.now()
    ).delete()
    return deleted


@shared_task(name="accounts.run_retention")
def run_retention() -> dict[str, int]:
    """Every retention policy, once a day; each run is recorded."""
    from accounts.purge import run_policies

    return {o.policy.name: o.count for o in run_policies()}
