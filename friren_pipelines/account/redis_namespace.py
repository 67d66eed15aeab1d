"""The Redis connection shared by the account cache, the broker rate limiter and the bar reader.

Every key is `<prefix><area>:<name>:<part>`; the prefix is the setting `FRIREN_REDIS_PREFIX`
(default `friren:`), so tests and several deployments can share one Redis.

Redis is a cache and a coordinator here, never the only copy of anything: when it fails, each
user falls back to its in-process twin and `RedisOutage` decides when to try Redis again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

FIRST_RECHECK_SECONDS = 0.5
MAX_RECHECK_SECONDS = 30.0


def connect(url: str) -> redis.Redis:
    """A client with short socket timeouts: a Redis that hangs must not hang the readers."""
    import redis  # imported on first use: loading the definitions needs no Redis client

    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)


def redis_errors() -> tuple[type[Exception], ...]:
    """What a Redis outage raises (refused or reset connection, timeout, a loading server)."""
    import redis

    return (redis.RedisError, OSError)


class RedisOutage:
    """Whether one Redis client may be used right now.

    After `failed()`, `usable()` answers False at once (callers serve from their in-process
    fallback) and one background thread re-checks Redis with PING: first after
    `first_recheck_seconds`, then doubling up to `max_recheck_seconds`. When PING answers, the
    `on_recovery` callbacks run (they copy what the process learnt during the outage back to
    Redis) and `usable()` is True again. A recovery callback that fails counts as a failed check.
    Readers never wait for a check: a stalled Redis costs one socket timeout, once.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        first_recheck_seconds: float = FIRST_RECHECK_SECONDS,
        max_recheck_seconds: float = MAX_RECHECK_SECONDS,
    ) -> None:
        self._client = client
        self._first = first_recheck_seconds
        self._max = max_recheck_seconds
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._recheck_after = first_recheck_seconds
        self._next_check = 0.0  # time.monotonic() of the next PING
        self._checking = False
        self._on_recovery: list[Callable[[], None]] = []
        kwargs = client.connection_pool.connection_kwargs
        self.where = (
            f"{kwargs['host']}:{kwargs.get('port', 6379)}"
            if "host" in kwargs
            else str(kwargs.get("path", "redis"))
        )

    def on_recovery(self, callback: Callable[[], None]) -> None:
        self._on_recovery.append(callback)

    @property
    def degraded(self) -> str | None:
        """Why Redis is not used, or None when it is; asking starts a re-check when one is due."""
        self.usable()
        return self._reason

    def usable(self) -> bool:
        if self._reason is None:  # the common case: no lock taken
            return True
        with self._lock:
            if self._reason is None:
                return True
            if not self._checking and time.monotonic() >= self._next_check:
                self._checking = True
                threading.Thread(target=self._check, name="redis-recheck", daemon=True).start()
            return False

    def failed(self, error: BaseException) -> None:
        with self._lock:
            if self._reason is None:
                self._recheck_after = self._first
                self._next_check = time.monotonic() + self._recheck_after
            detail = str(error) or type(error).__name__
            self._reason = f"Redis at {self.where} unreachable ({detail})"

    def _check(self) -> None:
        try:
            self._client.ping()
            for callback in self._on_recovery:
                callback()
        except Exception as error:  # any failure of the check keeps the fallback in use
            with self._lock:
                detail = str(error) or type(error).__name__
                self._reason = f"Redis at {self.where} unreachable ({detail})"
                self._recheck_after = min(self._recheck_after * 2, self._max)
                self._next_check = time.monotonic() + self._recheck_after
                self._checking = False
            return
        with self._lock:
            self._reason = None
            self._checking = False
