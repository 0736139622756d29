"""Periodic jobs, run by a real Celery worker over the real broker."""

from __future__ import annotations

from datetime import timedelta

from axes.models import AccessFailureLog
from django.conf import settings
from django.utils import timezone

from accounts.models import Invitation
from accounts.tasks import purge_expired_invitations, purge_login_failures
from config.celery import app
from tests.factories import make_invitation
from tests.workers import wait_until


def test_it_purges_expired_invitations_in_a_worker(world, celery_worker):
    expired, _ = make_invitation(world.account_a, "late@example.com")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))

    purge_expired_invitations.delay()

    wait_until(
        lambda: not Invitation.objects.filter(pk=expired.pk).exists(),
        timeout=15,
        message="the expired invitation to be purged",
    )
    assert Invitation.objects.filter(pk=world.invitation.pk).exists()


def test_it_purges_old_failed_logins_in_a_worker(db, celery_worker):
    old = AccessFailureLog.objects.create(
        username="a@example.com",
        ip_address="192.0.2.1",
        user_agent="x",
        path_info="/",
        locked_out=False,
    )
    AccessFailureLog.objects.filter(pk=old.pk).update(
        attempt_time=timezone.now() - settings.LOGIN_FAILURE_RETENTION - timedelta(hours=1)
    )
    recent = AccessFailureLog.objects.create(
        username="b@example.com",
        ip_address="192.0.2.2",
        user_agent="x",
        path_info="/",
        locked_out=False,
    )

    purge_login_failures.delay()

    wait_until(
        lambda: not AccessFailureLog.objects.filter(pk=old.pk).exists(),
        timeout=15,
        message="the old failed login to be purged",
    )
    assert AccessFailureLog.objects.filter(pk=recent.pk).exists()


def test_it_schedules_every_periodic_job_with_an_expiry():
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
        assert entry["options"]["expires"] > 0, name
