"""A token bucket in Redis, shared by every worker on every machine.

``acquire(key, rate)`` takes one token from the bucket of ``key`` (filled at ``rate``
tokens per second, holding at most one second's worth) and sleeps for as long as the
bucket is in debt. The script runs atomically in Redis with Redis's own clock, so
workers with drifting clocks still share one rate.
"""

from __future__ import annotations

import time
from functools import lru_cache

import redis
from django.conf import settings

_SCRIPT = """
redis.replicate_commands()
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate / 1000) - wanted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], 60000)
if tokens >= 0 then return 0 end
return math.ceil(-tokens * 1000 / rate)
"""


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_CLIENT_URL)


@lru_cache(maxsize=1)
def _script() -> redis.commands.core.Script:
    return _client().register_script(_SCRIPT)


def reserve(key: str, rate: float, tokens: int = 1) -> float:
    """Take ``tokens`` now; the seconds to wait before using them."""
    burst = max(rate, 1)
    wait_ms = _script()(keys=[f"missive:rate:{key}"], args=[rate, burst, tokens])
    return int(wait_ms) / 1000


def acquire(key: str, rate: float, tokens: int = 1) -> None:
    wait = reserve(key, rate, tokens)
    if wait > 0:
        time.sleep(wait)
