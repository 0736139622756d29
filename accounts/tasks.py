from __future__ import annotations

from axes.models import AccessFailureLog
from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from accounts import mail, services
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


@shared_task(bind=True, name=mail.SEND_TASK, max_retries=None)
def send_notice(self: Task, notice: dict, on_failure: list | None = None) -> None:
    """Send one notice of Missive's own, as ``accounts.mail.send_notice`` rendered it:
    transient failures are retried with a doubling delay, the last failure is recorded."""
    attempt = self.request.retries + 1
    message = mail.Notice.from_data(notice)
    try:
        mail.deliver(message)
    except Exception as error:
        if mail.is_transient(error) and attempt < settings.MISSIVE_NOTICE_MAX_ATTEMPTS:
            raise self.retry(countdown=mail.retry_delay(attempt), exc=error) from None
        hook = (on_failure[0], on_failure[1]) if on_failure else None
        mail.notice_failed(message, error=error, attempts=attempt, on_failure=hook)


@shared_task(name="accounts.invitation_not_sent")
def invitation_not_sent(invitation_id: int, token_hash: str, error: str) -> None:
    services.invitation_mail_failed(invitation_id=invitation_id, token_hash=token_hash, error=error)
