from __future__ import annotations

from celery import shared_task

from contacts import data_requests, erasure, importing, subscribing


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


@shared_task(name="contacts.send_your_data_link")
def send_your_data_link(email: str) -> None:
    """The link of the public "your data" page. Sent by a worker, so the page answers
    as fast for an address Missive holds as for one it does not."""
    data_requests.send_link(email)


@shared_task(name="contacts.notify_data_request")
def notify_data_request(data_request_id: int) -> None:
    data_requests.notify(data_request_id)


@shared_task(name="contacts.erase_in_flight_leftovers")
def erase_in_flight_leftovers(account_id: int, delivery_ids: list[int]) -> int:
    """What messages being sent during an erasure wrote after it; idempotent."""
    return erasure.erase_leftovers(account_id=account_id, delivery_ids=delivery_ids)
