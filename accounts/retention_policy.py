"""What a retention policy is. Every app declares its own in ``<app>/retention.py`` as a
``POLICIES`` list; the runner that applies them all is ``privacy.runner``.

A policy is two functions of "now": ``due`` counts what would go, ``purge`` removes it
and returns how many rows went. The same selection serves both, so a dry run lists
exactly what a real run removes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    due: Callable[[datetime], int]
    purge: Callable[[datetime], int]
