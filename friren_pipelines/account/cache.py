"""The account cache: one broker call per expiry across every process, stale answers in outages.

Rules (all times in seconds, Unix epoch for `fetched_at`):

- A value younger than `ttl_seconds` is a hit: answered from the store without any lock.
- When it has expired and the broker is believed healthy (the last refresh succeeded), readers
  race for a refresh lock (Redis `SET NX PX`, or a lock in the process). The winner checks the
  value again (another process may just have refreshed it), then calls the broker once. The
  losers wait at most `wait_timeout_seconds` for the new value, else take the previous one.
- When a refresh fails (error, timeout, rate limit), or outlives a waiter's
  `wait_timeout_seconds`, the failure is remembered with the time it happened, and after a
  broker failure nobody calls the broker again for `retry_backoff_seconds`. From then on until a
  refresh succeeds the cache is in *crisis*: every read with a value younger than
  `max_stale_seconds` is answered at once with it, flagged `stale=True`, and the first read after
  each back-off starts ONE background refresh (single-flight through the same lock, so one in
  flight across every process); nobody waits for the broker.
- Readers wait only when there is no value young enough to serve (the first read, or a value
  older than `max_stale_seconds`): the lock winner calls the broker (at most its timeout), the
  others wait at most `wait_timeout_seconds`. Past `max_stale_seconds`, or with no value at all,
  the read raises `AccountUnavailableError` saying how old the last value is and why the refresh
  failed.

Stores with the same semantics: `RedisAccountStore` (shared by processes), `MemoryAccountStore`
(threads of one process, used when `FRIREN_REDIS_URL` is not set) and `RedisOrMemoryStore`
(Redis while it answers, this process's copy while it does not: see its docstring).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

from friren_pipelines.account.redis_namespace import RedisOutage, redis_errors
from friren_pipelines.account.snapshot import (
    AccountFetcher,
    AccountSnapshot,
    BrokerAccount,
    BrokerFetchError,
)
from friren_pipelines.account.stats import COUNTERS, CacheStatistics

if TYPE_CHECKING:
    import redis

T = TypeVar("T")


class AccountUnavailableError(RuntimeError):
    """No account value young enough to answer: the message says its age and the refresh error."""


class AccountDataTooOldError(AccountUnavailableError):
    """The last value is older than the maximum stale age and the broker cannot refresh it."""


@dataclass(frozen=True)
class CachedAccount:
    account: BrokerAccount
    fetched_at: float  # Unix epoch seconds when the broker answered


@dataclass(frozen=True)
class RefreshFailure:
    reason: str
    failed_at: float  # Unix epoch seconds, from the cache's clock


@dataclass(frozen=True)
class StoreRead:
    """What one read of the store found.

    `fresh`: the value is younger than the TTL. The rest is filled only when it is not:
    `refreshing`: a refresh lock is held; `failure`: the last failed refresh, kept until a value
    is saved; `retry_blocked`: that failure is within its back-off.
    """

    entry: CachedAccount | None
    fresh: bool
    refreshing: bool = False
    failure: RefreshFailure | None = None
    retry_blocked: bool = False


class AccountStore(Protocol):
    """Where the cache keeps the value, the refresh lock, the last failure and the counters."""

    @property
    def degraded(self) -> str | None:
        """Why the shared store is not in use (a process copy serves instead), or None."""
        ...

    def read(self, now: float, ttl_seconds: float) -> StoreRead:
        """The value and the refresh state; counts a request (and a hit)."""
        ...

    def load(self) -> CachedAccount | None: ...

    def save(self, entry: CachedAccount) -> None:
        """Store the value and forget the last failure."""
        ...

    def try_lock(self, token: str, hold_seconds: float) -> bool: ...

    def unlock(self, token: str) -> None: ...

    def wait_for_newer(self, than: float | None, timeout_seconds: float) -> CachedAccount | None:
        """A value fetched after `than`, waiting while a refresh is in flight; None if none came."""
        ...

    def record_failure(self, failure: RefreshFailure, backoff_seconds: float) -> None: ...

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
        also_degraded: Callable[[], str | None] | None = None,
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
        self._also_degraded = also_degraded  # e.g. the rate limiter's own fallback

    def snapshot(self) -> AccountSnapshot:
        """The account, at most `ttl_seconds` old unless the broker cannot refresh it (`stale`)."""
        now = self._clock()
        state = self._store.read(now, self.ttl_seconds)
        entry = state.entry
        if entry is not None and state.fresh:
            return self._answer(entry)
        servable = entry is not None and now - entry.fetched_at <= self.max_stale_seconds
        failure = state.failure
        if servable and failure is not None:
            # Crisis: the last refresh failed. Answer now; one background refresh per back-off.
            if not state.retry_blocked and not state.refreshing:
                self._refresh_in_background()
            return self._fallback(entry, failure.reason)
        reason = failure.reason if failure is not None and state.retry_blocked else None
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
            reason = self._store.recent_failure()
            if reason is None:
                # The refresh outlived our wait: a crisis for every reader until it saves a
                # value, so nobody else waits for it (no back-off: it is not a broker answer).
                reason = (
                    f"the refresh in flight did not finish within {self.wait_timeout_seconds:g} s"
                )
                self._store.record_failure(RefreshFailure(reason, self._clock()), 0.0)
        return self._fallback(entry, reason)

    def degraded(self) -> str | None:
        """Why the shared cache or limiter runs on its in-process fallback, or None."""
        reasons = [self._store.degraded, self._also_degraded() if self._also_degraded else None]
        return "; ".join(dict.fromkeys(r for r in reasons if r)) or None

    def statistics(self) -> CacheStatistics:
        return CacheStatistics.from_counts(self._store.counts(), degraded=self.degraded())

    def _call_broker(self) -> CachedAccount | str:
        """One broker call: the saved value, or why it failed (remembered for the back-off)."""
        self._store.count("broker_calls")
        try:
            account = self._fetch()
        except BrokerFetchError as error:
            reason = str(error)
        except Exception as error:
            reason = f"the account fetch raised {type(error).__name__}"
        else:
            entry = CachedAccount(account, self._clock())
            self._store.save(entry)
            return entry
        self._store.count("errors")
        self._store.record_failure(
            RefreshFailure(reason, self._clock()), self.retry_backoff_seconds
        )
        return reason

    def _refresh(self, previous: CachedAccount | None) -> AccountSnapshot:
        # Someone may have refreshed between our read and taking the lock.
        current = self._store.load()
        if current is not None and self._clock() - current.fetched_at <= self.ttl_seconds:
            return self._answer(current)
        outcome = self._call_broker()
        if isinstance(outcome, str):
            return self._fallback(current or previous, outcome)
        return self._answer(outcome)

    def _refresh_in_background(self) -> None:
        token = uuid.uuid4().hex
        if not self._store.try_lock(token, self.broker_timeout_seconds + 1.0):
            return  # another reader, here or in another process, is refreshing

        def refresh() -> None:
            try:
                self._call_broker()
            finally:
                self._store.unlock(token)

        threading.Thread(target=refresh, name=f"account-refresh-{self.label}", daemon=True).start()

    def _answer(self, entry: CachedAccount) -> AccountSnapshot:
        return AccountSnapshot.of(
            entry.account,
            entry.fetched_at,
            self._clock(),
            self.ttl_seconds,
            degraded=self._store.degraded,
        )

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

    degraded = None

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._entry: CachedAccount | None = None
        self._holder: tuple[str, float] | None = None  # (token, monotonic expiry)
        self._failure: RefreshFailure | None = None  # the last failed refresh, until a save
        self._retry_after = 0.0  # monotonic end of the failure's back-off
        self._counts: Counter[str] = Counter()

    def _refreshing(self) -> bool:
        return self._holder is not None and self._holder[1] > time.monotonic()

    def read(self, now: float, ttl_seconds: float) -> StoreRead:
        with self._changed:
            entry = self._entry
            fresh = entry is not None and now - entry.fetched_at <= ttl_seconds
            self._counts["requests"] += 1
            self._counts["hits"] += int(fresh)
            if fresh:
                return StoreRead(entry, True)
            return StoreRead(
                entry,
                False,
                refreshing=self._refreshing(),
                failure=self._failure,
                retry_blocked=self._failure is not None and self._retry_after > time.monotonic(),
            )

    def load(self) -> CachedAccount | None:
        with self._changed:
            return self._entry

    def save(self, entry: CachedAccount) -> None:
        with self._changed:
            self._entry = entry
            self._failure = None
            self._changed.notify_all()

    def remember(self, entry: CachedAccount) -> None:
        """Keep `entry` if it is newer than ours (the copy of what Redis holds)."""
        current = self._entry
        if current is not None and current.fetched_at >= entry.fetched_at:
            return  # the common case, without the lock
        with self._changed:
            if self._entry is None or self._entry.fetched_at < entry.fetched_at:
                self._entry = entry
                if self._failure is not None and self._failure.failed_at < entry.fetched_at:
                    self._failure = None  # another process refreshed since our failure

    def try_lock(self, token: str, hold_seconds: float) -> bool:
        with self._changed:
            if self._refreshing():
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
            return newer() is not None or not self._refreshing()

        with self._changed:
            self._changed.wait_for(settled, timeout_seconds)
            return newer()

    def record_failure(self, failure: RefreshFailure, backoff_seconds: float) -> None:
        with self._changed:
            self._failure = failure
            self._retry_after = time.monotonic() + backoff_seconds

    def recent_failure(self) -> str | None:
        with self._changed:
            if self._failure is not None and self._retry_after > time.monotonic():
                return self._failure.reason
            return None

    def count(self, counter: str) -> None:
        with self._changed:
            self._counts[counter] += 1

    def counts(self) -> dict[str, int]:
        with self._changed:
            return {name: self._counts[name] for name in COUNTERS}

    def forget_counts(self, counts: dict[str, int]) -> None:
        """Subtract `counts` (once they have been added elsewhere)."""
        with self._changed:
            self._counts.subtract(counts)


# One round trip per read: fetch the value and count the request (and the hit) atomically; on a
# miss, also whether a refresh is in flight and the last failure (with its back-off).
_READ = """
local v = redis.call('HMGET', KEYS[1], 'fetched_at', 'account')
redis.call('HINCRBY', KEYS[2], 'requests', 1)
if v[1] and tonumber(ARGV[1]) - tonumber(v[1]) <= tonumber(ARGV[2]) then
  redis.call('HINCRBY', KEYS[2], 'hits', 1)
  return {v[1], v[2], 1}
end
local f = redis.call('HMGET', KEYS[3], 'reason', 'failed_at')
return {v[1] or '', v[2] or '', 0, redis.call('EXISTS', KEYS[4]), f[1] or '', f[2] or '',
        redis.call('EXISTS', KEYS[5])}
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisAccountStore:
    """The store shared by every process: keys
    `<prefix>account:<label>:{value,refresh-lock,refresh-failure,last-failure,stats}`.

    The value has no expiry: an old value is what lets the cache say how old it is in an outage.
    `refresh-failure` is the back-off (it expires with it); `last-failure` lasts until a value is
    saved, and marks the crisis.
    """

    degraded = None

    def __init__(self, client: redis.Redis, *, prefix: str, label: str) -> None:
        self._redis = client
        base = f"{prefix}account:{label}:"
        self._value_key = base + "value"
        self._lock_key = base + "refresh-lock"
        self._backoff_key = base + "refresh-failure"
        self._failure_key = base + "last-failure"
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

    def read(self, now: float, ttl_seconds: float) -> StoreRead:
        answer = cast(
            list,
            self._read(
                keys=[
                    self._value_key,
                    self._stats_key,
                    self._failure_key,
                    self._lock_key,
                    self._backoff_key,
                ],
                args=[repr(now), ttl_seconds],
            ),
        )
        entry = self._entry(answer[0], answer[1])
        if answer[2]:
            return StoreRead(entry, True)
        _, _, _, locked, reason, failed_at, blocked = answer
        failure = RefreshFailure(reason.decode(), float(failed_at)) if failed_at else None
        return StoreRead(
            entry, False, refreshing=bool(locked), failure=failure, retry_blocked=bool(blocked)
        )

    def load(self) -> CachedAccount | None:
        fetched_at, payload = cast(
            list, self._redis.hmget(self._value_key, "fetched_at", "account")
        )
        return self._entry(fetched_at, payload)

    def save(self, entry: CachedAccount) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
            self._value_key,
            mapping={"fetched_at": repr(entry.fetched_at), "account": entry.account.to_json()},
        )
        pipe.delete(self._failure_key)
        pipe.execute()

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

    def record_failure(self, failure: RefreshFailure, backoff_seconds: float) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
            self._failure_key,
            mapping={"reason": failure.reason, "failed_at": repr(failure.failed_at)},
        )
        if backoff_seconds > 0:
            pipe.set(self._backoff_key, failure.reason, px=max(1, int(backoff_seconds * 1000)))
        pipe.execute()

    def recent_failure(self) -> str | None:
        reason = cast(bytes | None, self._redis.get(self._backoff_key))
        return reason.decode() if reason is not None else None

    def count(self, counter: str) -> None:
        self._redis.hincrby(self._stats_key, counter, 1)

    def add_counts(self, counts: dict[str, int]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        for name, value in counts.items():
            if value:
                pipe.hincrby(self._stats_key, name, value)
        pipe.execute()

    def counts(self) -> dict[str, int]:
        raw = cast(dict[bytes, bytes], self._redis.hgetall(self._stats_key))
        return {k.decode(): int(v) for k, v in raw.items()}


class RedisOrMemoryStore:
    """Redis while it answers, this process's copy while it does not.

    Every value read from or saved to Redis is also kept in the process, so when Redis fails
    (refused, reset, timed out) the cache keeps answering with the last value it saw, under the
    same rules on one process: its own lock, failure memory and counters. `degraded` says so,
    and the snapshot, health and statistics carry it. Redis is re-checked in the background with
    a growing back-off (`RedisOutage`); when it answers, a newer value and the counters counted
    meanwhile are written back to it, and reads go to Redis again.
    """

    def __init__(self, shared: RedisAccountStore, client: redis.Redis) -> None:
        self._shared = shared
        self._local = MemoryAccountStore()
        self._outage = RedisOutage(client)
        self._outage.on_recovery(self._write_back)
        self._errors = redis_errors()

    @property
    def degraded(self) -> str | None:
        reason = self._outage.degraded
        return f"{reason}; answering from this process's cache" if reason else None

    def _write_back(self) -> None:
        mine = self._local.load()
        if mine is not None:
            theirs = self._shared.load()
            if theirs is None or theirs.fetched_at < mine.fetched_at:
                self._shared.save(mine)
        counts = self._local.counts()
        self._shared.add_counts(counts)
        self._local.forget_counts(counts)

    def _on_redis(self, call: Callable[[AccountStore], T], otherwise: Callable[[], T]) -> T:
        """`call` on Redis while it is usable; `otherwise()` during an outage or when the call
        fails with a Redis error (which starts or extends the outage)."""
        if self._outage.usable():
            try:
                return call(self._shared)
            except self._errors as error:
                self._outage.failed(error)
        return otherwise()

    def _redis_else_local(self, call: Callable[[AccountStore], T]) -> T:
        return self._on_redis(call, lambda: call(self._local))

    def _local_and_redis(self, call: Callable[[AccountStore], None]) -> None:
        """This process's store first, then Redis if usable (a Redis error is only recorded)."""
        call(self._local)
        self._on_redis(call, lambda: None)

    def _kept(self, entry: CachedAccount | None) -> CachedAccount | None:
        """`entry` (read from Redis), also kept in the process for an outage."""
        if entry is not None:
            self._local.remember(entry)
        return entry

    def read(self, now: float, ttl_seconds: float) -> StoreRead:
        def from_redis(redis: AccountStore) -> StoreRead:
            state = redis.read(now, ttl_seconds)
            self._kept(state.entry)
            return state

        return self._on_redis(from_redis, lambda: self._local.read(now, ttl_seconds))

    def load(self) -> CachedAccount | None:
        return self._on_redis(lambda redis: self._kept(redis.load()), self._local.load)

    def save(self, entry: CachedAccount) -> None:
        self._local_and_redis(lambda store: store.save(entry))

    def try_lock(self, token: str, hold_seconds: float) -> bool:
        return self._redis_else_local(lambda store: store.try_lock(token, hold_seconds))

    def unlock(self, token: str) -> None:
        # locally a no-op unless the lock was taken here
        self._local_and_redis(lambda store: store.unlock(token))

    def wait_for_newer(self, than: float | None, timeout_seconds: float) -> CachedAccount | None:
        return self._redis_else_local(lambda store: store.wait_for_newer(than, timeout_seconds))

    def record_failure(self, failure: RefreshFailure, backoff_seconds: float) -> None:
        self._local_and_redis(lambda store: store.record_failure(failure, backoff_seconds))

    def recent_failure(self) -> str | None:
        return self._redis_else_local(lambda store: store.recent_failure())

    def count(self, counter: str) -> None:
        self._redis_else_local(lambda store: store.count(counter))

    def counts(self) -> dict[str, int]:
        return self._redis_else_local(lambda store: store.counts())
