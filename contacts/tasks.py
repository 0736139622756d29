from __future__ import annotations

from celery import shared_task

from contacts import importing, subscribing


@shared_task(name="contacts.sweep_imports")
def sweep_imports() -> dict[str, int]:
    return importing.imports_sweep()


@shared_task(name="contacts.run_import", acks_late=True)
def run_import(job_id: int) -> None:
    """Thin wrapper: the import claims its job, so a task delivered twice runs once."""
    importing.run_import(job_id)


@shared_task(name="contacts.send_subscribe_confirmation")
def send_subscribe_confirmation(subscription_id: int) -> None:
    subscribing.send_confirmation(subscription_id)


@shared_task(name="contacts.confirmation_not_sent")
def confirmation_not_sent(subscription_id: int, error: str) -> None:
    """The failure hook of the confirmation mail (accounts.send_notice)."""
    subscribing.confirmation_not_sent(subscription_id)
