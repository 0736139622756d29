from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from stats.bounces import fetch_mailbox
from stats.feedback import send_refusals_record
from stats.rollup import rollup


@shared_task(name="stats.record_send_refusals")
def record_send_refusals_task(refusals: list[list]) -> int:
    """Bounces told by the mail server while sending (campaigns.sending enqueues them by
    name); how many were recorded."""
    return send_refusals_record([(int(i), str(reply)) for i, reply in refusals])


@shared_task(name="stats.rollup")
def rollup_task() -> int:
    """Fold the events recorded since the last run into the report counters; how many."""
    return rollup().events


# Beat runs the mailbox every minute; a run still going (a slow server, a backlog) is not
# joined by a second one.
_FETCH_LOCK = "stats:fetch-bounces"
_FETCH_LOCK_SECONDS = 10 * 60


@shared_task(name="stats.fetch_bounces")
def fetch_bounces_task() -> dict[str, int]:
    """Read the bounce mailbox of SMTP sending, when one is configured
    (MISSIVE_BOUNCE_MAILBOX); how many messages of each result."""
    url = settings.MISSIVE_BOUNCE_MAILBOX
    if not url or not cache.add(_FETCH_LOCK, "1", timeout=_FETCH_LOCK_SECONDS):
        return {}
    try:
        return dict(fetch_mailbox(url))
    finally:
        cache.delete(_FETCH_LOCK)
