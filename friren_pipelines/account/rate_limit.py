"""The one rate limiter for every broker call in the project, shared by processes through Redis.

Alpaca allows 200 calls per minute per account on each API. Each API is a *bucket*
(`alpaca-trading`, `alpaca-data`) with its own sliding window: a call is let through only if
fewer than `RateLimit.calls` calls were let through in the last `per_seconds` seconds, so no
window of that length ever holds more. The defaults keep 10 calls of headroom under the
broker's 200 for in-flight jitter and other clients of the same account.

The broker's own view wins when it is stricter: `observe()` reads `X-Ratelimit-Remaining` and
`X-Ratelimit-Reset` (Unix epoch seconds) from each answer, and a 429 blocks the bucket for
`Retry-After` seconds (else until the reset, else `default_backoff_seconds`).

A call is counted from the moment it takes its slot; leaving the `with` block counts it again
from the moment it completed instead, so a request delayed on its way to the broker (a slow
connect, a busy network) cannot make two calls look closer than they were: the window the broker
measures then never holds more calls than the limiter let through. Use it around any broker call:

    limiter = broker_rate_limiter(settings.redis_url, settings.redis_prefix)
    with limiter.acquire("alpaca-trading", max_wait_seconds=2.0):
        response = ...
    limiter.observe("alpaca-trading", response.headers, response.status_code)

or, for a `requests` session (what alpaca-py uses), once: `limit_session(session, limiter, bucket)`.
With Redis the state lives in `<prefix>ratelimit:<bucket>:{window,blocked,quota}` and Redis'
clock decides; without Redis it lives in the process.

When Redis fails (refused, reset, timed out), the limiter does not: each process falls back to its
own window holding `LOCAL_SHARE` of each bucket's calls (a quarter: 47 of 190 per 60 s), so up
to four processes running through the outage together stay under the broker's 200. `degraded`
says so. Redis is re-checked in the background (`RedisOutage`); for one window after it returns a
call needs a slot in both, so the calls made locally still count.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import requests
from requests.adapters import HTTPAdapter

from friren_pipelines.account.redis_namespace import RedisOutage, connect, redis_errors
from friren_pipelines.config import DEFAULT_REDIS_PREFIX

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True)
class RateLimit:
    calls: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.calls < 1 or self.per_seconds <= 0:
            raise ValueError(f"{self} must allow at least 1 call per a positive number of seconds")


# Share of a bucket's calls one process may make on its own while Redis is unreachable.
LOCAL_SHARE = 0.25

BROKER_RATE_LIMITS: Mapping[str, RateLimit] = {
    "alpaca-trading": RateLimit(calls=190, per_seconds=60.0),
    "alpaca-data": RateLimit(calls=190, per_seconds=60.0),
}

# Why a call must wait, as returned by the backends.
WINDOW_FULL, BROKER_QUOTA_SPENT, BROKER_SAID_429 = 1, 2, 3
_WHY = {
    WINDOW_FULL: "the sliding window is full",
    BROKER_QUOTA_SPENT: "the broker reported X-Ratelimit-Remaining: 0",
    BROKER_SAID_429: "the broker answered 429",
}


class RateLimitedError(RuntimeError):
    """The next call would have to wait longer than the caller allows."""

    def __init__(self, bucket: str, wait_seconds: float, why: int, max_wait_seconds: float):
        self.bucket = bucket
        self.wait_seconds = wait_seconds
        super().__init__(
            f"rate limit {bucket!r}: {_WHY[why]}; next call allowed in {wait_seconds:.2f} s, "
            f"longer than the {max_wait_seconds:g} s this caller waits"
        )


@dataclass(frozen=True)
class BrokerSaid:
    """What one broker answer said about the limit.

    `quota`: (calls remaining, Unix epoch seconds of the reset) from the X-Ratelimit-* headers;
    after a 429, a block for `block_for_seconds` (Retry-After) or until `block_until_epoch`.
    """

    quota: tuple[int, float] | None
    block_for_seconds: float | None
    block_until_epoch: float | None


class _Backend(Protocol):
    @property
    def degraded(self) -> str | None:
        """Why the shared state is not used (then a local fallback is), or None."""
        ...

    def try_take(self, bucket: str, limit: RateLimit, slot_id: str) -> tuple[float, int]:
        """(0, 0) when the call `slot_id` was let through, else (seconds to wait, why)."""
        ...

    def complete(self, bucket: str, slot_id: str) -> None:
        """Count the call from now (its completion) rather than from when it took its slot."""
        ...

    def record(self, bucket: str, said: BrokerSaid) -> None:
        """Store the broker's (remaining, reset epoch) and/or a block after a 429."""
        ...


_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return {blocked - now, 3} end
local quota = redis.call('HMGET', KEYS[3], 'remaining', 'reset_ms')
local quota_live = quota[2] and tonumber(quota[2]) > now
if quota_live and tonumber(quota[1]) <= 0 then return {tonumber(quota[2]) - now, 2} end
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {math.max(1, tonumber(oldest[2]) + window - now), 1}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window + 60000)
if quota_live then redis.call('HINCRBY', KEYS[3], 'remaining', -1) end
return {0, 0}
"""

_COMPLETE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
"""

_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' and tonumber(ARGV[2]) > now then
  redis.call('HSET', KEYS[2], 'remaining', ARGV[1], 'reset_ms', ARGV[2])
  redis.call('PEXPIREAT', KEYS[2], ARGV[2])
end
local till = 0
if ARGV[3] ~= '' then till = now + tonumber(ARGV[3])
elseif ARGV[4] ~= '' then till = tonumber(ARGV[4]) end
if till > now and till > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%d', till), 'PXAT', string.format('%d', till))
end
return 1
"""


class _RedisBackend:
    degraded = None

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._prefix = prefix
        self._take = client.register_script(_TAKE)
        self._record = client.register_script(_RECORD)
        self._complete = client.register_script(_COMPLETE)

    def _keys(self, bucket: str) -> list[str]:
        base = f"{self._prefix}ratelimit:{bucket}:"
        return [base + "window", base + "blocked", base + "quota"]

    def try_take(self, bucket: str, limit: RateLimit, slot_id: str) -> tuple[float, int]:
        wait_ms, why = cast(
            list,
            self._take(
                keys=self._keys(bucket), args=[limit.calls, int(limit.per_seconds * 1000), slot_id]
            ),
        )
        return int(wait_ms) / 1000, int(why)

    def complete(self, bucket: str, slot_id: str) -> None:
        self._complete(keys=self._keys(bucket)[:1], args=[slot_id])

    def record(self, bucket: str, said: BrokerSaid) -> None:
        _, blocked_key, quota_key = self._keys(bucket)
        quota, block_for, block_until = said.quota, said.block_for_seconds, said.block_until_epoch
        self._record(
            keys=[blocked_key, quota_key],
            args=[
                "" if quota is None else quota[0],
                "" if quota is None else int(quota[1] * 1000),
                "" if block_for is None else int(block_for * 1000),
                "" if block_until is None else int(block_until * 1000),
            ],
        )


class _MemoryBackend:
    """The same rules for the threads of one process, on the local clock."""

    degraded = None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, dict[str, float]] = {}  # bucket -> slot id -> counted from
        self._blocked_until: dict[str, float] = {}
        self._quota: dict[str, tuple[int, float]] = {}

    def try_take(self, bucket: str, limit: RateLimit, slot_id: str) -> tuple[float, int]:
        with self._lock:
            now = time.time()
            blocked = self._blocked_until.get(bucket, 0.0)
            if blocked > now:
                return blocked - now, BROKER_SAID_429
            quota = self._quota.get(bucket)
            quota_live = quota is not None and quota[1] > now
            if quota is not None and quota_live and quota[0] <= 0:
                return quota[1] - now, BROKER_QUOTA_SPENT
            calls = self._calls.setdefault(bucket, {})
            for expired in [k for k, t in calls.items() if t <= now - limit.per_seconds]:
                del calls[expired]
            if len(calls) >= limit.calls:
                return max(0.001, min(calls.values()) + limit.per_seconds - now), WINDOW_FULL
            calls[slot_id] = now
            if quota is not None and quota_live:
                self._quota[bucket] = (quota[0] - 1, quota[1])
            return 0.0, 0

    def complete(self, bucket: str, slot_id: str) -> None:
        with self._lock:
            calls = self._calls.get(bucket, {})
            if slot_id in calls:
                calls[slot_id] = time.time()

    def record(self, bucket: str, said: BrokerSaid) -> None:
        with self._lock:
            now = time.time()
            if said.quota is not None and said.quota[1] > now:
                self._quota[bucket] = said.quota
            block_for = said.block_for_seconds
            till = now + block_for if block_for is not None else said.block_until_epoch
            if till is not None and till > self._blocked_until.get(bucket, 0.0):
                self._blocked_until[bucket] = till


class _RedisWithLocalFallback:
    """Redis while it answers; else this process's own window at `LOCAL_SHARE` of each limit."""

    def __init__(self, client: redis.Redis, prefix: str, local_share: float = LOCAL_SHARE) -> None:
        self._redis = _RedisBackend(client, prefix)
        self._local = _MemoryBackend()
        self._share = local_share
        self._outage = RedisOutage(client)
        self._errors = redis_errors()
        self._outage.on_recovery(self._recovered)
        self._local_until = 0.0  # time.monotonic() until which local slots are still taken too
        self._window_seconds = 0.0  # the longest window seen, for `_local_until`

    @property
    def degraded(self) -> str | None:
        reason = self._outage.degraded
        if reason is None:
            return None
        return f"{reason}; this process limits itself to {self._share:.0%} of each broker budget"

    def _local_limit(self, limit: RateLimit) -> RateLimit:
        return RateLimit(max(1, int(limit.calls * self._share)), limit.per_seconds)

    def _recovered(self) -> None:
        self._local_until = time.monotonic() + self._window_seconds

    def try_take(self, bucket: str, limit: RateLimit, slot_id: str) -> tuple[float, int]:
        self._window_seconds = max(self._window_seconds, limit.per_seconds)
        if self._outage.usable():
            if time.monotonic() < self._local_until:
                wait, why = self._local.try_take(bucket, self._local_limit(limit), slot_id)
                if wait > 0:
                    return wait, why
            try:
                return self._redis.try_take(bucket, limit, slot_id)
            except self._errors as error:
                self._outage.failed(error)
        return self._local.try_take(bucket, self._local_limit(limit), slot_id)

    def complete(self, bucket: str, slot_id: str) -> None:
        self._local.complete(bucket, slot_id)  # a no-op for a slot taken in Redis
        if self._outage.usable():
            try:
                self._redis.complete(bucket, slot_id)
            except self._errors as error:
                self._outage.failed(error)

    def record(self, bucket: str, said: BrokerSaid) -> None:
        self._local.record(bucket, said)  # kept locally too: it serves during an outage
        if self._outage.usable():
            try:
                self._redis.record(bucket, said)
            except self._errors as error:
                self._outage.failed(error)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None  # e.g. Retry-After as an HTTP date: fall back to the reset or the default


@dataclass
class Slot:
    """A call let through by the limiter; as a context manager, counted from its completion."""

    limiter: RateLimiter
    bucket: str
    slot_id: str
    waited_seconds: float

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.limiter._backend.complete(self.bucket, self.slot_id)


class RateLimiter:
    """Lets broker calls through at most at the configured rate, in every process together."""

    def __init__(
        self,
        backend: _Backend,
        limits: Mapping[str, RateLimit] = BROKER_RATE_LIMITS,
        default_backoff_seconds: float = 1.0,
    ) -> None:
        self._backend = backend
        self.limits = dict(limits)
        self.default_backoff_seconds = default_backoff_seconds

    @classmethod
    def in_redis(
        cls, client: redis.Redis, prefix: str, limits: Mapping[str, RateLimit] = BROKER_RATE_LIMITS
    ) -> RateLimiter:
        """Shared through Redis; while Redis is unreachable, local at `LOCAL_SHARE` of `limits`."""
        return cls(_RedisWithLocalFallback(client, prefix), limits)

    @classmethod
    def in_process(cls, limits: Mapping[str, RateLimit] = BROKER_RATE_LIMITS) -> RateLimiter:
        return cls(_MemoryBackend(), limits)

    @property
    def degraded(self) -> str | None:
        """Why the limiter runs on its local fallback (Redis unreachable), or None."""
        return self._backend.degraded

    def _limit(self, bucket: str) -> RateLimit:
        try:
            return self.limits[bucket]
        except KeyError:
            known = ", ".join(sorted(self.limits))
            raise ValueError(f"unknown rate-limit bucket {bucket!r}; known: {known}") from None

    def acquire(self, bucket: str, *, max_wait_seconds: float | None = None) -> Slot:
        """Wait for a slot in `bucket` and take it (use the returned `Slot` in a `with` block).

        Raises `RateLimitedError` at once when the wait would exceed `max_wait_seconds`
        (None: wait as long as needed).
        """
        limit = self._limit(bucket)
        slot_id = uuid.uuid4().hex
        started = time.monotonic()
        while True:
            wait, why = self._backend.try_take(bucket, limit, slot_id)
            waited = time.monotonic() - started
            if wait <= 0:
                return Slot(self, bucket, slot_id, waited)
            if max_wait_seconds is not None and waited + wait > max_wait_seconds:
                raise RateLimitedError(bucket, wait, why, max_wait_seconds)
            time.sleep(wait)

    def observe(self, bucket: str, headers: Mapping[str, str], status: int) -> None:
        """Learn from a broker answer: its X-Ratelimit-* headers and a 429's Retry-After."""
        self._limit(bucket)
        remaining = _number(_header(headers, "X-Ratelimit-Remaining"))
        reset = _number(_header(headers, "X-Ratelimit-Reset"))
        quota = (int(remaining), reset) if remaining is not None and reset is not None else None
        block_for = block_until = None
        if status == 429:
            block_for = _number(_header(headers, "Retry-After"))
            if block_for is None:
                block_until = reset
                if block_until is None:
                    block_for = self.default_backoff_seconds
        if quota is not None or block_for is not None or block_until is not None:
            self._backend.record(bucket, BrokerSaid(quota, block_for, block_until))


class RateLimitedAdapter(HTTPAdapter):
    """A `requests` transport that takes a slot before each request and observes each answer."""

    def __init__(
        self,
        limiter: RateLimiter,
        bucket: str,
        *,
        timeout_seconds: float,
        max_wait_seconds: float | None,
    ) -> None:
        super().__init__()
        self._limiter = limiter
        self._bucket = bucket
        self._timeout = timeout_seconds
        self._max_wait = max_wait_seconds

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if kwargs.get("timeout") is None:  # alpaca-py passes none: a hung broker would hang us
            kwargs["timeout"] = self._timeout
        with self._limiter.acquire(self._bucket, max_wait_seconds=self._max_wait):
            response = super().send(request, *args, **kwargs)
        self._limiter.observe(self._bucket, response.headers, response.status_code)
        return response


def limit_session(
    session: requests.Session,
    limiter: RateLimiter,
    bucket: str,
    *,
    timeout_seconds: float = 10.0,
    max_wait_seconds: float | None = None,
) -> None:
    """Route every request of `session` through `limiter` with a default timeout (seconds)."""
    adapter = RateLimitedAdapter(
        limiter, bucket, timeout_seconds=timeout_seconds, max_wait_seconds=max_wait_seconds
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)


def broker_rate_limiter(
    redis_url: str | None = None, prefix: str = DEFAULT_REDIS_PREFIX
) -> RateLimiter:
    """The project's limiter: in Redis under `prefix` when `redis_url` is set (one client per
    process, the state shared by every process), else the one limiter of this process."""
    if redis_url is None:
        return _process_limiter()
    return _redis_limiter(redis_url, prefix)


@functools.cache
def _process_limiter() -> RateLimiter:
    return RateLimiter.in_process()


@functools.cache
def _redis_limiter(redis_url: str, prefix: str) -> RateLimiter:
    return RateLimiter.in_redis(connect(redis_url), prefix)
