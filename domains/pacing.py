"""Pacing: how fast, and over how many connections, Missive sends to each mailbox
provider, and how many messages a warming-up domain may send today.

Receivers judge a sender by its volume: a new domain that sends a hundred thousand
messages on its first day, or a sender that opens fifty connections at once or pushes
hundreds of messages down one, is deferred (4.7.x) and then filed as spam. Everything
here is shared by every worker on every machine through Redis, and every count is
changed by one atomic script, so two workers can never both take the last of a limit.

- ``reserve_daily`` takes messages from a warming-up domain's cap for its local day;
  ``release_daily`` gives back what a batch did not use.
- ``connection_slot`` holds one of a provider's connections. A slot is a lease with an
  expiry: a worker killed while holding one does not hold it for ever.
- ``note_deferral`` halves a provider's pace after it defers for rate; the pace comes
  back once the provider has not deferred for ``MISSIVE_DEFERRAL_MINUTES``.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from django.utils import timezone

from domains import providers
from domains.models import SendingDomain
from domains.selectors import warmup_cap_today

# Limits and slots are per provider (domains.providers), with "other"'s for the rest.
OTHER = providers.OTHER


@dataclass(frozen=True)
class Limits:
    connections: int  # open at once, across every worker
    per_connection: int  # messages on one connection before it is closed
    rate: float | None  # messages a second across every worker (None: no limit)


def limits_for(provider: str) -> Limits:
    configured = settings.MISSIVE_PROVIDER_LIMITS
    spec = configured.get(provider) or configured[OTHER]
    rate = spec.get("rate")
    return Limits(
        connections=max(int(spec["connections"] or 1), 1),
        per_connection=max(int(spec["per_connection"] or 1), 1),
        rate=float(rate) if rate else None,
    )


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_CLIENT_URL)


def _key(*parts: object) -> str:
    return "missive:pacing:" + ":".join(str(part) for part in parts)


# -- connections ---------------------------------------------------------------------------------

# KEYS[1]: the provider's leases (a sorted set, scored by expiry in ms of Redis's clock).
# ARGV: limit, lease id, lease length in ms. 1 when the lease was taken.
_ACQUIRE = """
redis.replicate_commands()
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
"""
# Pushes a held lease's expiry on; 0 when it had expired and was taken back. A lease past
# its expiry that nobody removed yet still counted against the limit: it is kept.
_RENEW = """
redis.replicate_commands()
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"""


class SlotUnavailable(Exception):
    """Every connection to the provider stayed in use for as long as a worker may wait."""


@dataclass
class Slot:
    """One held connection to a provider; ``renew`` it while the connection lives longer
    than a lease."""

    provider: str
    lease: str
    length: float  # seconds
    renewed: float  # time.monotonic() of the last renewal

    def renew(self, *, force: bool = False) -> bool:
        """Push the lease's expiry on, at most every third of its length. False when the
        lease had run out and another worker took its place: the connection it stood
        for must close, or the provider would have one more than its limit."""
        now = time.monotonic()
        if not force and now - self.renewed <= self.length / 3:
            return True
        held = _client().eval(
            _RENEW, 1, _key("connections", self.provider), self.lease, int(self.length * 1000)
        )
        self.renewed = now
        return bool(held)


def acquire_slot(provider: str, *, wait: float | None = None) -> Slot:
    """Take one of the provider's connections, waiting up to ``wait`` seconds
    (MISSIVE_CONNECTION_SLOT_WAIT) for another worker to give one back."""
    limit = limits_for(provider).connections
    length = float(settings.MISSIVE_CONNECTION_LEASE)
    wait = float(settings.MISSIVE_CONNECTION_SLOT_WAIT) if wait is None else wait
    lease = secrets.token_hex(8)
    deadline = time.monotonic() + wait
    pause = 0.02
    while True:
        taken = _client().eval(
            _ACQUIRE, 1, _key("connections", provider), limit, lease, int(length * 1000)
        )
        if taken:
            return Slot(provider=provider, lease=lease, length=length, renewed=time.monotonic())
        if time.monotonic() >= deadline:
            raise SlotUnavailable(
                f"All {limit} connections to {provider} stayed in use for {wait:g} seconds."
            )
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        pause = min(pause * 2, 0.5)


def release_slot(slot: Slot) -> None:
    _client().zrem(_key("connections", slot.provider), slot.lease)


def connections_in_use(provider: str) -> int:
    """The provider's leases that have not expired."""
    now_ms = int(time.time() * 1000)
    return int(_client().zcount(_key("connections", provider), now_ms, "+inf"))


@contextmanager
def connection_slot(provider: str, *, wait: float | None = None) -> Iterator[Slot]:
    """Hold one of the provider's connections for the ``with`` block."""
    slot = acquire_slot(provider, wait=wait)
    try:
        yield slot
    finally:
        release_slot(slot)


# -- warm-up ------------------------------------------------------------------------------------

# KEYS[1]: what the domain took today. ARGV: cap, wanted, seconds to keep. What was granted.
_RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[2]), math.max(tonumber(ARGV[1]) - used, 0))
if grant > 0 then redis.call('INCRBY', KEYS[1], grant) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return grant
"""
_RELEASE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local back = math.min(tonumber(ARGV[1]), used)
if back > 0 then redis.call('DECRBY', KEYS[1], back) end
return back
"""
_TWO_DAYS = 2 * 24 * 3600


def _zone(domain: SendingDomain) -> zoneinfo.ZoneInfo:
    # The warm-up's days are the account's (domains.selectors.warmup_cap_today).
    return zoneinfo.ZoneInfo(domain.account.time_zone if domain.account else "UTC")


def local_today(domain: SendingDomain) -> dt.date:
    return timezone.now().astimezone(_zone(domain)).date()


def next_local_midnight(domain: SendingDomain, *, day: dt.date | None = None) -> dt.datetime:
    """When the domain's next day of warm-up begins (the day after ``day``, local)."""
    tomorrow = (day or local_today(domain)) + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time(0), tzinfo=_zone(domain))


def reserve_daily(domain: SendingDomain, wanted: int, *, day: dt.date | None = None) -> int:
    """Take up to ``wanted`` messages from the domain's warm-up cap of ``day`` (today,
    local); all of them when it has no cap."""
    day = day or local_today(domain)
    cap = warmup_cap_today(domain, day)
    if cap is None or wanted <= 0:
        return max(wanted, 0)
    granted = _client().eval(_RESERVE, 1, _key("daily", domain.pk, day), cap, wanted, _TWO_DAYS)
    return int(granted)


def release_daily(domain: SendingDomain, unused: int, *, day: dt.date | None = None) -> None:
    """Give back what ``reserve_daily`` granted for ``day`` and was not sent."""
    if unused <= 0:
        return
    _client().eval(_RELEASE, 1, _key("daily", domain.pk, day or local_today(domain)), unused)


def sent_today(domain: SendingDomain) -> int:
    """The messages the domain took from today's cap."""
    return int(_client().get(_key("daily", domain.pk, local_today(domain))) or 0)


# -- deferrals ----------------------------------------------------------------------------------

# KEYS[1]: the provider's pace, KEYS[2]: its deferrals today. ARGV: the pace to halve when
# none is set, the lowest pace, seconds the pace holds. A burst of deferrals from one
# slow-down (every worker's messages in flight) halves it once a second at most.
_DEFER = """
redis.replicate_commands()
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'rate', 'at')
local rate = tonumber(state[1]) or tonumber(ARGV[1])
local at = tonumber(state[2]) or 0
if now - at >= 1 then
    rate = math.max(rate / 2, tonumber(ARGV[2]))
    at = now
end
redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'at', tostring(at))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 172800)
return tostring(rate)
"""
_LOWEST_PACE = 0.1  # a message every ten seconds
_DEFERRAL = re.compile(r"\b4\.7\.\d{1,3}\b")
_RATE_WORDS = re.compile(
    r"rate|too many|throttl|volume|slow down|try again later|temporarily deferred", re.I
)


def is_rate_deferral(detail: str) -> bool:
    """Whether a temporary SMTP answer ("421 4.7.0 Try again later") asks to slow down:
    a 4.7.x status, or a 421/451 whose words speak of rate or volume."""
    code = detail[:3]
    if not (code.isdigit() and code.startswith("4")):
        return False
    if _DEFERRAL.search(detail):
        return True
    return code in {"421", "451"} and bool(_RATE_WORDS.search(detail))


def _today_utc() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def note_deferral(provider: str) -> float:
    """The provider deferred a message for rate: halve its pace for the next
    MISSIVE_DEFERRAL_MINUTES and count the deferral. Returns the new pace."""
    start = limits_for(provider).rate or float(settings.MISSIVE_DEFERRAL_START_RATE)
    rate = _client().eval(
        _DEFER,
        2,
        _key("pace", provider),
        _key("deferrals", provider, _today_utc()),
        start,
        _LOWEST_PACE,
        int(settings.MISSIVE_DEFERRAL_MINUTES) * 60,
    )
    return float(rate)


def deferrals_today(provider: str) -> int:
    return int(_client().get(_key("deferrals", provider, _today_utc())) or 0)


def provider_pace(provider: str) -> float | None:
    """The messages a second the provider may receive now, across every worker (None: no
    limit): its configured rate, or less while it is deferring."""
    slowed = _client().hget(_key("pace", provider), "rate")
    if slowed is not None:
        return float(slowed)
    return limits_for(provider).rate
