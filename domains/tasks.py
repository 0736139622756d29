"""Celery tasks of sending domains: thin, idempotent."""

from __future__ import annotations

from celery import shared_task

from domains import services


@shared_task(name="domains.check_domains")
def check_domains() -> int:
    return services.check_due_domains()
