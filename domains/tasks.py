"""Celery tasks of sending domains: thin, idempotent."""

from __future__ import annotations

from celery import shared_task

from domains import providers, services


@shared_task(name="domains.check_domains")
def check_domains() -> int:
    return services.check_due_domains()


@shared_task(name="domains.classify_mailbox_domains")
def classify_mailbox_domains() -> int:
    return providers.classify_due()
