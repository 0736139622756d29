from __future__ import annotations

from celery import shared_task

from privacy import data_requests, erasure
from privacy.runner import run_policies


@shared_task(name="privacy.send_your_data_link")
def send_your_data_link(email: str) -> None:
    """The link of the public "your data" page. Sent by a worker, so the page answers
    as fast for an address Missive holds as for one it does not."""
    data_requests.send_link(email)


@shared_task(name="privacy.notify_data_request")
def notify_data_request(data_request_id: int) -> None:
    data_requests.notify(data_request_id)


@shared_task(name="privacy.erase_in_flight_leftovers")
def erase_in_flight_leftovers(account_id: int, delivery_ids: list[int]) -> int:
    """What messages being sent during an erasure wrote after it; idempotent."""
    return erasure.erase_leftovers(account_id=account_id, delivery_ids=delivery_ids)


@shared_task(name="privacy.run_retention")
def run_retention() -> dict[str, int]:
    """Every retention policy, once a day; each run is recorded."""
    return {o.policy.name: o.count for o in run_policies()}
