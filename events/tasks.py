from __future__ import annotations

from celery import shared_task

from events.partitions import ensure_partitions


@shared_task(name="events.ensure_partitions")
def ensure_partitions_task() -> list[str]:
    """Keep the event table's monthly partitions three months ahead."""
    return ensure_partitions(months_ahead=3)
