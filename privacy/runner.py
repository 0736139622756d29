"""The retention runner: each kind of data is kept only as long as it serves, then
removed by itself.

Every app declares its policies in ``<app>/retention.py`` as a ``POLICIES`` list. One
daily beat task runs them all (``run_policies``) and records each run (``RetentionRun``:
policy, rows removed, time taken), visible to operators in the admin;
``manage.py purge [--dry-run] [--policy NAME]`` shows or does the same by hand.

How long each kind is kept is an operator's setting (``MISSIVE_RETENTION``, each entry
overridable by an environment variable).
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.conf import settings
from django.utils import timezone

from accounts.models import RetentionRun
from accounts.retention_policy import Policy

logger = logging.getLogger(__name__)


def all_policies() -> list[Policy]:
    policies = []
    for label in settings.MISSIVE_APPS:
        app = apps.get_app_config(label)
        try:
            module = importlib.import_module(f"{app.name}.retention")
        except ModuleNotFoundError as missing:
            if missing.name != f"{app.name}.retention":
                raise
            continue
        policies.extend(module.POLICIES)
    return policies


@dataclass(frozen=True)
class Outcome:
    policy: Policy
    count: int
    seconds: float
    error: str = ""


def run_policies(
    *, dry_run: bool = False, names: list[str] | None = None, now: datetime | None = None
) -> list[Outcome]:
    """Run (or, with ``dry_run``, count) every policy, or those named. A policy that fails
    is recorded with its error and the others still run."""
    now = now or timezone.now()
    policies = all_policies()
    if names:
        unknown = set(names) - {p.name for p in policies}
        if unknown:
            raise ValueError(f"Unknown retention policy: {', '.join(sorted(unknown))}.")
        policies = [p for p in policies if p.name in names]
    outcomes = []
    for policy in policies:
        started = time.perf_counter()
        error = ""
        count = 0
        try:
            count = policy.due(now) if dry_run else policy.purge(now)
        except Exception as failure:  # one policy's failure must not stop the others
            logger.exception("Retention policy %s failed", policy.name)
            error = f"{type(failure).__name__}: {failure}"
        seconds = time.perf_counter() - started
        RetentionRun.objects.create(
            policy=policy.name,
            dry_run=dry_run,
            started_at=now,
            duration_ms=round(seconds * 1000),
            removed=count,
            error=error,
        )
        outcomes.append(Outcome(policy=policy, count=count, seconds=seconds, error=error))
    return outcomes
