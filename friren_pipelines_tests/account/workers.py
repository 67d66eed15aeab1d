"""Process bodies for the cross-process tests (module functions, so any start method runs them)."""

from __future__ import annotations

import threading
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

import redis
import requests

from friren_pipelines.account.broker import AlpacaAccountFetcher
from friren_pipelines.account.cache import AccountCache, RedisAccountStore
from friren_pipelines.account.rate_limit import RateLimit, RateLimiter, limit_session


def read_together(
    redis_url: str,
    prefix: str,
    broker_url: str,
    keys: tuple[str, str],
    ttl_seconds: float,
    threads: int,
    ready: Queue,
    go: Event,
    results: Queue,
) -> None:
    """Start `threads` readers that call snapshot() at once when `go` is set; report fetched_at."""
    client = redis.Redis.from_url(redis_url)
    cache = AccountCache(
        AlpacaAccountFetcher(
            *keys, url_override=broker_url, limiter=RateLimiter.in_redis(client, prefix)
        ),
        RedisAccountStore(client, prefix=prefix, label="test"),
        label="test",
        ttl_seconds=ttl_seconds,
        wait_timeout_seconds=3.0,
    )

    def read() -> None:
        go.wait()
        snapshot = cache.snapshot()
        results.put((snapshot.fetched_at.timestamp(), snapshot.stale))

    workers = [threading.Thread(target=read) for _ in range(threads)]
    for worker in workers:
        worker.start()
    ready.put(True)
    for worker in workers:
        worker.join()


def call_through_limiter(
    redis_url: str, prefix: str, url: str, calls: int, per_seconds: float, seconds: float
) -> None:
    """Hammer `url` from 4 threads for `seconds`, every request through the shared limiter."""
    limiter = RateLimiter.in_redis(
        redis.Redis.from_url(redis_url), prefix, {"alpaca-trading": RateLimit(calls, per_seconds)}
    )
    hammer(limiter, url, seconds)


def hammer(limiter: RateLimiter, url: str, seconds: float, threads: int = 4) -> None:
    session = requests.Session()
    limit_session(session, limiter, "alpaca-trading", timeout_seconds=2.0)
    deadline = time.monotonic() + seconds

    def call() -> None:
        while time.monotonic() < deadline:
            session.get(url)

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
