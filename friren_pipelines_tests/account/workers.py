"""Process bodies for the cross-process tests (module functions, so any start method runs them)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

import redis
import requests

from friren_pipelines.account.broker import AlpacaAccountFetcher, AlpacaConnection
from friren_pipelines.account.cache import AccountCache, RedisAccountStore
from friren_pipelines.account.rate_limit import RateLimit, RateLimiter, limit_session


def run_to_completion(workers: Sequence[threading.Thread]) -> None:
    """Start every thread before joining any, so they all run at once; return when all are done."""
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


@dataclass(frozen=True)
class SharedRedis:
    url: str
    prefix: str

    def limiter(self, limits: dict[str, RateLimit] | None = None) -> RateLimiter:
        client = redis.Redis.from_url(self.url)
        return RateLimiter.in_redis(client, self.prefix, *([limits] if limits else []))


@dataclass(frozen=True)
class Readers:
    broker_url: str
    keys: tuple[str, str]
    ttl_seconds: float
    threads: int


def read_together(
    shared: SharedRedis, readers: Readers, ready: Queue, go: Event, results: Queue
) -> None:
    """Start reader threads that call snapshot() at once when `go` is set; report fetched_at."""
    cache = AccountCache(
        AlpacaAccountFetcher(
            AlpacaConnection(*readers.keys, url_override=readers.broker_url),
            limiter=shared.limiter(),
        ),
        RedisAccountStore(redis.Redis.from_url(shared.url), prefix=shared.prefix, label="test"),
        label="test",
        ttl_seconds=readers.ttl_seconds,
        wait_timeout_seconds=3.0,
    )

    def read() -> None:
        go.wait()
        snapshot = cache.snapshot()
        results.put((snapshot.fetched_at.timestamp(), snapshot.stale))

    workers = [threading.Thread(target=read) for _ in range(readers.threads)]
    for worker in workers:
        worker.start()
    ready.put(True)
    for worker in workers:
        worker.join()


def call_through_limiter(shared: SharedRedis, url: str, limit: RateLimit, seconds: float) -> None:
    hammer(shared.limiter({"alpaca-trading": limit}), url, seconds)


def hammer(limiter: RateLimiter, url: str, seconds: float, threads: int = 4) -> None:
    """Call `url` from `threads` threads for `seconds`, every request through the limiter."""
    session = requests.Session()
    limit_session(session, limiter, "alpaca-trading", timeout_seconds=2.0)
    deadline = time.monotonic() + seconds

    def call() -> None:
        while time.monotonic() < deadline:
            session.get(url)

    run_to_completion([threading.Thread(target=call) for _ in range(threads)])
