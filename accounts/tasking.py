"""Work handed to the workers, by task name, once the current transaction commits.

A service never imports a tasks module: tasks import services to do their work, so the
other way round would be a cycle, and a lower app cannot import a higher one's tasks at
all. It names the task instead. The message leaves only once the transaction that asked
for it has committed (at once outside a transaction), so a worker never looks for rows
that are not there yet, and a rolled-back request sends nothing.
"""

from __future__ import annotations

from typing import TypedDict

from celery import current_app
from django.db import transaction


class SendOptions(TypedDict, total=False):
    countdown: float


def enqueue(name: str, *args: object, countdown: float | None = None) -> None:
    """Run the task registered as ``name`` with ``args`` once this transaction commits,
    ``countdown`` seconds later if given."""
    options: SendOptions = {"countdown": countdown} if countdown else {}
    transaction.on_commit(lambda: _send(name, list(args), options))


def _send(name: str, args: list[object], options: SendOptions) -> None:
    current_app.send_task(name, args=args, **options)
