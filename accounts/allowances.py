"""Hourly allowances for what an account makes Missive mail outside its campaigns (test
sends, invitations).

A sliding hour, not a clock hour: "10 an hour" means at most 10 in any 60 minutes, so 10
at 09:59 and 10 more at 10:00 are not possible. Each use is one member of a sorted set
in Redis scored by its time; one script, run atomically by Redis with Redis's clock,
forgets what is older than the window, counts what is left and takes the new uses only
when they fit. Every web process and API request counts in the same place.
"""

from __future__ import annotations

import math
import secrets
from functools import lru_cache

import redis
from django.conf import settings

WINDOW_SECONDS = 3600

# KEYS[1] the set; ARGV: window (s), how many to take, the limit, a unique prefix.
# Returns {taken (1/0), left after this call, seconds until enough uses expire (0 if taken)}.
_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local window = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used + count > limit then
    local over = used + count - limit
    local wait = 0
    if over <= used then
        local oldest = redis.call('ZRANGE', KEYS[1], over - 1, over - 1, 'WITHSCORES')
        wait = tonumber(oldest[2]) + window - now
    else
        wait = window
    end
    return {0, math.max(0, limit - used), tostring(wait)}
end
for i = 1, count do
    redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i)
end
redis.call('EXPIRE', KEYS[1], window)
return {1, limit - used - count, '0'}
"""


class AllowanceExceeded(Exception):
    """More than the allowance allows now: ``left`` is what may still be taken, and
    ``retry_after`` the seconds until the uses asked for would fit."""

    def __init__(self, left: int, retry_after: int) -> None:
        super().__init__(left, retry_after)
        self.left = left
        self.retry_after = retry_after


@lru_cache(maxsize=1)
def _script() -> redis.commands.core.Script:
    return redis.Redis.from_url(settings.REDIS_CLIENT_URL).register_script(_SCRIPT)


def take(name: str, account_id: int, *, count: int, limit: int) -> int:
    """Count ``count`` uses against the account's allowance ``name`` over the last hour,
    or take nothing and raise AllowanceExceeded when that would pass ``limit``. Returns
    what is left."""
    key = f"missive:allowance:{name}:{account_id}"
    taken, left, wait = _script()(
        keys=[key], args=[WINDOW_SECONDS, count, limit, secrets.token_hex(8)]
    )
    if not int(taken):
        raise AllowanceExceeded(left=int(left), retry_after=max(1, math.ceil(float(wait))))
    return int(left)
