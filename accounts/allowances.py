"""Hourly allowances for what an account makes Missive mail outside its campaigns (test
sends, invitations): a fixed window per clock hour, counted in the shared cache, so
every web process and API request counts in the same place."""

from __future__ import annotations

import time

from django.core.cache import cache

WINDOW_SECONDS = 3600


class AllowanceExceeded(Exception):
    """More than the allowance for this hour; ``left`` is what remains of it."""

    def __init__(self, left: int) -> None:
        super().__init__(left)
        self.left = left


def take(name: str, account_id: int, *, count: int, limit: int) -> None:
    """Count ``count`` against the account's allowance ``name`` for this hour, or take
    nothing and raise AllowanceExceeded when that would pass ``limit``."""
    key = f"allowance:{name}:{account_id}:{int(time.time() // WINDOW_SECONDS)}"
    # Kept a little past its hour, so a clock step near the boundary never reopens it.
    cache.add(key, 0, timeout=2 * WINDOW_SECONDS)
    try:
        used = cache.incr(key, count)
    except ValueError:  # evicted between the two calls: count from here
        cache.set(key, count, timeout=2 * WINDOW_SECONDS)
        used = count
    if used > limit:
        cache.decr(key, count)
        raise AllowanceExceeded(left=max(0, limit - (used - count)))
