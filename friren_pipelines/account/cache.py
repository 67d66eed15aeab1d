"""The account cache: one broker call per expiry across every process, stale answers in outages.

Rules (all times in seconds, Unix epoch for `fetched_at`):

- A value younger than `ttl_seconds` is a hit: answered from the store without any lock.
- When it has expired, readers race for a refresh lock (Redis `SET NX PX`, or a lock in the
  process). The winner checks the value again (another process may just have refreshed it),
  then calls the broker once. The losers wait at most `wait_timeout_seconds` for the new value.
- When the refresh fails (error, timeout, rate limit) the failure is remembered for
  `retry_backoff_seconds`, during which nobody calls the broker again; readers get the previous
  value flagged `stale=True`, as long as it is younger than `max_stale_seconds`. Past that age, or
  with no value at all, the read raises `AccountUnavailableError` saying how old the last value is
  and why the refresh failed.

Two stores with the same semantics: `RedisAccountStore` (shared by processes) and
`MemoryAccountStore` (threads of one process, used when `FRIREN_REDIS_URL` is not set).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from friren_pipelines.account.snapshot import (
    AccountFetcher,
    AccountSnapshot,
    BrokerAccount,
    BrokerFetchError,
)
from friren_pipelines.account.stats import COUNTERS, CacheStatistics

if TYPE_CHECKING:
    import redis


class AccountUnavailableError(RuntimeError):
    """No account value young enough to answer: the message says its age and the refresh error."""


class AccountDataTooOldError(AccountUnavailableError):
    """The last value is older than the maximum stale age and the broker cannot refresh it."""


@dataclass(frozen=True)
class CachedAccount:
    account: BrokerAccount
    fetched_at: float  # Unix epoch seconds when the broker answered


class AccountStore(Protocol):
    """Where the cache keeps the value, the refresh lock, the last failure and the counters."""

    def read(self, now: float, ttl_seconds: float) -> tuple[CachedAccount | None, bool]:
        """The value and whether it is younger than the TTL; counts a request (and a hit)."""
        ...

    def load(self) -> CachedAccount | None: ...

    def save(self, entry: CachedAccount) -> None: ...

    def try_lock(self, token: str, hold_seconds: float) -> bool: ...

    def unlock(self, token: str) -> None: ...

    def wait_for_newer(self, than: float | None, timeout_seconds: float) -> CachedAccount | None:
        """A value fetched after `than`, waiting while a refresh is in flight; None if none came."""
        ...

    def record_failure(self, reason: str, backoff_seconds: float) -> None: ...

    def recent_failure(self) -> str | None:
        """The reason of the last failed refresh if it is within its back-off, else None."""
        ...

    def count(self, counter: str) -> None: ...

    def counts(self) -> dict[str, int]: ...


class AccountCache:
    """Answers `snapshot()` from the store, refreshing from the broker under the rules above."""

    def __init__(
        self,
        fetcher: AccountFetcher,
        store: AccountStore,
        *,
        label: str,
        ttl_seconds: float = 30.0,
        max_stale_seconds: float = 300.0,
        wait_timeout_seconds: float = 1.0,
        broker_timeout_seconds: float = 5.0,
        retry_backoff_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (
            ("ttl_seconds", ttl_seconds),
            ("wait_timeout_seconds", wait_timeout_seconds),
            ("broker_timeout_seconds", broker_timeout_seconds),
        ):
            if value <= 0:
                raise ValueError(f"{name}={value} must be > 0")
        if max_stale_seconds < ttl_seconds:
            raise ValueError(
                f"max_stale_seconds={max_stale_seconds} must be >= ttl_seconds={ttl_seconds}"
            )
        if retry_backoff_seconds < 0:
            raise ValueError(f"retry_backoff_seconds={retry_backoff_seconds} must be >= 0")
        self._fetch = fetcher
        self._store = store
        self.label = label
        self.ttl_seconds = ttl_seconds
        self.max_stale_seconds = max_stale_seconds
        self.wait_timeout_seconds = wait_timeout_seconds
        self.broker_timeout_seconds = broker_timeout_seconds
        self.retry_backoff_seconds = retry_backoff_seconds
        self._clock = clock  # Unix epoch seconds; injectable for tests

    def snapshot(self) -> AccountSnapshot:
        """The account, at most `ttl_seconds` old unless the broker cannot refresh it (`stale`)."""
        entry, fresh = self._store.read(self._clock(), self.ttl_seconds)
        if entry is not None and fresh:
            return self._answer(entry)
        reason = self._store.recent_failure()
        if reason is None:
            token = uuid.uuid4().hex
            # A holder that crashed mid-call frees the lock after its broker timeout + 1 s.
            if self._store.try_lock(token, self.broker_timeout_seconds + 1.0):
                try:
                    return self._refresh(entry)
                finally:
                    self._store.unlock(token)
            newer = self._store.wait_for_newer(
                entry.fetched_at if entry else None, self.wait_timeout_seconds
            )
            if newer is not None:
                return self._answer(newer)
            reason = self._store.recent_failure() or (
                f"the refresh in flight did not finish within {self.wait_timeout_seconds:g} s"
            )
        return self._fallback(entry, reason)

    def statistics(self) -> CacheStatistics:
        return CacheStatistics.from_counts(self._store.counts())

    def _refresh(self, previous: CachedAccount | None) -> AccountSnapshot:
        # Someone may have refreshed between our read and taking the lock.
        current = self._store.load()
        if current is not None and self._clock() - current.fetched_at <= self.ttl_seconds:
            return self._answer(current)
        self._store.count("broker_calls")
        try:
            account = self._fetch()
        except BrokerFetchError as error:
            self._store.count("errors")
            self._store.record_failure(str(error), self.retry_backoff_seconds)
            return self._fallback(current or previous, str(error))
        entry = CachedAccount(account, self._clock())
        self._store.save(entry)
        return self._answer(entry)

    def _answer(self, entry: CachedAccount) -> AccountSnapshot:
        return AccountSnapshot.of(entry.account, entry.fetched_at, self._clock(), self.ttl_seconds)

    def _fallback(self, entry: CachedAccount | None, reason: str) -> AccountSnapshot:
        if entry is None:
            self._store.count("unanswered")
            raise AccountUnavailableError(
                f"no account value for {self.label!r} yet and the refresh failed: {reason}"
            )
        snapshot = self._answer(entry)
        if snapshot.age_seconds > self.max_stale_seconds:
            self._store.count("unanswered")
            raise AccountDataTooOldError(
                f"the last account value for {self.label!r} is {snapshot.age_seconds:.1f} s old "
                f"(fetched at {snapshot.fetched_at.isoformat()}, at most "
                f"{self.max_stale_seconds:g} s allowed) and the refresh failed: {reason}"
            )
        if snapshot.stale:
            self._store.count("stale_answers")
        return snapshot


class MemoryAccountStore:
    """The store for one process: a value, a lock and counters guarded by one condition."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._entry: CachedAccount | None = None
        self._holder: tuple[str, float] | None = None  # (token, monotonic expiry)
        self._failure: tuple[str, float] | None = None  # (reason, monotonic expiry)
        self._counts: Counter[str] = Counter()

    def read(self, now: float, ttl_seconds: float) -> tuple[CachedAccount | None, bool]:
        with self._changed:
            entry = self._entry
            fresh = entry is not None and now - entry.fetched_at <= ttl_seconds
            self._counts["requests"] += 1
            self._counts["hits"] += int(fresh)
            return entry, fresh

    def load(self) -> CachedAccount | None:
        with self._changed:
            return self._entry

    def save(self, entry: CachedAccount) -> None:
        with self._changed:
            self._entry = entry
            self._changed.notify_all()

    def try_lock(self, token: str, hold_seconds: float) -> bool:
        with self._changed:
            if self._holder is not None and self._holder[1] > time.monotonic():
                return False
            self._holder = (token, time.monotonic() + hold_seconds)
            return True

    def unlock(self, token: str) -> None:
        with self._changed:
            if self._holder is not None and self._holder[0] == token:
                self._holder = None
            self._changed.notify_all()

    def wait_for_newer(self, than: float | None, timeout_seconds: float) -> CachedAccount | None:
        def newer() -> CachedAccount | None:
            entry = self._entry
            if entry is not None and (than is None or entry.fetched_at > than):
                return entry
            return None

        def settled() -> bool:
            holder = self._holder
            return newer() is not None or holder is None or holder[1] <= time.monotonic()

        with self._changed:
            self._changed.wait_for(settled, timeout_seconds)
            return newer()

    def record_failure(self, reason: str, backoff_seconds: float) -> None:
        with self._changed:
            self._failure = (reason, time.monotonic() + backoff_seconds)

    def recent_failure(self) -> str | None:
        with self._changed:
            if self._failure is not None and self._failure[1] > time.monotonic():
                return self._failure[0]
            return None

    def count(self, counter: str) -> None:
        with self._changed:
            self._counts[counter] += 1

    def counts(self) -> dict[str, int]:
        with self._changed:
            return {name: self._counts[name] for name in COUNTERS}


# One round trip per read: fetch the value and count the request (and the hit) atomically.
_READ = """
local v = redis.call('HMGET', KEYS[1], 'fetched_at', 'account')
redis.call('HINCRBY', KEYS[2], 'requests', 1)
if v[1] and tonumber(ARGV[1]) - tonumber(v[1]) <= tonumber(ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], 'hits', 1)
  return {v[1], v[2], 1}
end
return {v[1] or '', v[2] or '', 0}
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisAccountStore:
    """The store shared by every process: keys `<prefix>account:<label>:{value,lock,failure,stats}`.

    The value has no expiry: an old value is what lets the cache say how old it is in an outage.
    """

    def __init__(self, client: redis.Redis, *, prefix: str, label: str) -> None:
        self._redis = client
        base = f"{prefix}account:{label}:"
        self._value_key = base + "value"
        self._lock_key = base + "refresh-lock"
        self._failure_key = base + "refresh-failure"
        self._stats_key = base + "stats"
        self._read = client.register_script(_READ)
        self._unlock = client.register_script(_UNLOCK)
        self._parsed: tuple[bytes, BrokerAccount] | None = None  # skips JSON parsing on hits

    def _entry(self, fetched_at: bytes | None, payload: bytes | None) -> CachedAccount | None:
        if not fetched_at or not payload:
            return None
        parsed = self._parsed
        if parsed is None or parsed[0] != payload:
            parsed = (payload, BrokerAccount.from_json(payload))
            self._parsed = parsed
        return CachedAccount(parsed[1], float(fetched_at))

    def read(self, now: float, ttl_seconds: float) -> tuple[CachedAccount | None, bool]:
        fetched_at, payload, fresh = cast(
            list, self._read(keys=[self._value_key, self._stats_key], args=[repr(now), ttl_seconds])
        )
        return self._entry(fetched_at, payload), bool(fresh)

    def load(self) -> CachedAccount | None:
        fetched_at, payload = cast(
            list, self._redis.hmget(self._value_key, "fetched_at", "account")
        )
        return self._entry(fetched_at, payload)

    def save(self, entry: CachedAccount) -> None:
        self._redis.hset(
            self._value_key,
            mapping={"fetched_at": repr(entry.fetched_at), "account": entry.account.to_json()},
        )

    def try_lock(self, token: str, hold_seconds: float) -> bool:
        return bool(self._redis.set(self._lock_key, token, nx=True, px=int(hold_seconds * 1000)))

    def unlock(self, token: str) -> None:
        self._unlock(keys=[self._lock_key], args=[token])

    def wait_for_newer(self, than: float | None, timeout_seconds: float) -> CachedAccount | None:
        # Polling with a short, growing pause: waits last one broker call (milliseconds) and
        # need no extra connection per waiter, unlike a pub/sub subscription.
        deadline = time.monotonic() + timeout_seconds
        pause = 0.001
        while True:
            pipe = self._redis.pipeline(transaction=False)
            # Lock first: the holder saves before it unlocks, so no lock means the value is final.
            pipe.exists(self._lock_key)
            pipe.hmget(self._value_key, "fetched_at", "account")
            locked, (fetched_at, payload) = pipe.execute()
            if fetched_at and (than is None or float(fetched_at) > than):
                return self._entry(fetched_at, payload)
            remaining = deadline - time.monotonic()
            if not locked or remaining <= 0:
                return None
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.02)

    def record_failure(self, reason: str, backoff_seconds: float) -> None:
        if backoff_seconds > 0:
            self._redis.set(self._failure_key, reason, px=max(1, int(backoff_seconds * 1000)))

    def recent_failure(self) -> str | None:
        reason = cast(bytes | None, self._redis.get(self._failure_key))
        return reason.decode() if reason is not None else None

    def count(self, counter: str) -> None:
        self._redis.hincrby(self._stats_key, counter, 1)

    def counts(self) -> dict[str, int]:
        raw = cast(dict[bytes, bytes], self._redis.hgetall(self._stats_key))
        return {k.decode(): int(v) for k, v in raw.items()}
