"""The shared broker rate limiter: sliding window across processes, broker headers, 429s."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator

import pytest
import redis

from friren_pipelines.account.rate_limit import RateLimit, RateLimitedError, RateLimiter
from friren_pipelines_tests.account.workers import SharedRedis, call_through_limiter, hammer
from friren_pipelines_tests.fakes.http import FakeHttpServer, Reply

BUCKET = "alpaca-trading"
JITTER = 0.1  # seconds between taking a slot and the server noting the request, under load


def busiest_window(arrivals: list[float], seconds: float) -> int:
    """The most arrivals in any half-open window [t, t + seconds)."""
    times = sorted(arrivals)
    return max(sum(1 for u in times[i:] if u < t + seconds) for i, t in enumerate(times))


@pytest.fixture
def ping_server() -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as server:
        server.route("GET", "/ping", Reply(body={"ok": True}))
        yield server


@pytest.fixture(params=["redis", "process"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    limits = {BUCKET: RateLimit(calls=3, per_seconds=5.0)}
    if request.param == "redis":
        client = request.getfixturevalue("redis_client")
        return RateLimiter.in_redis(client, request.getfixturevalue("redis_prefix"), limits)
    return RateLimiter.in_process(limits)


def test_no_window_holds_more_calls_than_the_limit_across_two_processes(
    ping_server: FakeHttpServer, redis_url: str, redis_prefix: str
) -> None:
    calls, per_seconds, seconds = 5, 0.5, 1.3
    context = multiprocessing.get_context("fork")
    shared = SharedRedis(redis_url, redis_prefix)
    processes = [
        context.Process(
            target=call_through_limiter,
            args=(shared, f"{ping_server.url}/ping", RateLimit(calls, per_seconds), seconds),
        )
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=10)
        assert process.exitcode == 0
    arrivals = [r.at for r in ping_server.calls("/ping")]
    assert busiest_window(arrivals, per_seconds - JITTER) <= calls, sorted(arrivals)
    assert len(arrivals) >= 2 * calls  # 8 eager threads did get through, window after window


def test_no_window_holds_more_calls_than_the_limit_across_threads_in_process(
    ping_server: FakeHttpServer,
) -> None:
    limiter = RateLimiter.in_process({BUCKET: RateLimit(calls=5, per_seconds=0.5)})
    hammer(limiter, f"{ping_server.url}/ping", 1.3, threads=8)
    arrivals = [r.at for r in ping_server.calls("/ping")]
    assert busiest_window(arrivals, 0.5 - JITTER) <= 5
    assert len(arrivals) >= 10


def test_a_full_window_refuses_a_caller_that_cannot_wait(limiter: RateLimiter) -> None:
    for _ in range(3):
        assert limiter.acquire(BUCKET, max_wait_seconds=0).waited_seconds == pytest.approx(
            0, abs=0.05
        )
    with pytest.raises(
        RateLimitedError,
        match=r"'alpaca-trading': the sliding window is full; next call allowed in [45]\.\d+ s",
    ):
        limiter.acquire(BUCKET, max_wait_seconds=0.5)


def test_a_call_counts_in_the_window_from_its_completion(limiter: RateLimiter) -> None:
    limiter.limits[BUCKET] = RateLimit(calls=1, per_seconds=0.3)
    with limiter.acquire(BUCKET):
        time.sleep(0.2)  # a slow request: the broker may have seen it as late as now
    with pytest.raises(RateLimitedError, match="sliding window is full"):
        limiter.acquire(
            BUCKET, max_wait_seconds=0.2
        )  # free 0.3 s after completion, not after start
    assert 0.2 < limiter.acquire(BUCKET).waited_seconds < 0.4


def test_broker_remaining_counts_down_until_its_reset(limiter: RateLimiter) -> None:
    reset = time.time() + 0.4
    limiter.observe(
        BUCKET, {"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": f"{reset:.3f}"}, 200
    )
    limiter.acquire(BUCKET, max_wait_seconds=0)
    with pytest.raises(RateLimitedError, match="X-Ratelimit-Remaining: 0"):
        limiter.acquire(BUCKET, max_wait_seconds=0.1)
    waited = limiter.acquire(BUCKET, max_wait_seconds=1.0).waited_seconds
    assert 0.2 < waited < 0.6
    assert time.time() >= reset - 0.01


def test_429_blocks_for_retry_after(limiter: RateLimiter) -> None:
    limiter.observe(BUCKET, {"Retry-After": "0.3", "X-Ratelimit-Remaining": "150"}, 429)
    with pytest.raises(RateLimitedError, match="the broker answered 429"):
        limiter.acquire(BUCKET, max_wait_seconds=0.1)
    assert 0.15 < limiter.acquire(BUCKET).waited_seconds < 0.45


def test_429_without_retry_after_blocks_until_the_reset(limiter: RateLimiter) -> None:
    limiter.observe(BUCKET, {"X-Ratelimit-Reset": f"{time.time() + 0.3:.3f}"}, 429)
    assert 0.15 < limiter.acquire(BUCKET).waited_seconds < 0.45


def test_429_without_any_hint_blocks_for_the_default_backoff(limiter: RateLimiter) -> None:
    limiter.default_backoff_seconds = 0.3
    limiter.observe(BUCKET, {}, 429)
    assert 0.15 < limiter.acquire(BUCKET).waited_seconds < 0.45


def test_answers_without_rate_headers_change_nothing(limiter: RateLimiter) -> None:
    limiter.observe(BUCKET, {"Content-Type": "application/json"}, 200)
    limiter.observe(BUCKET, {"Retry-After": "5"}, 500)
    assert limiter.acquire(BUCKET, max_wait_seconds=0).waited_seconds == pytest.approx(0, abs=0.05)


def test_unknown_bucket_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(
        ValueError, match="unknown rate-limit bucket 'polygon'; known: alpaca-data, alpaca-trading"
    ):
        RateLimiter.in_process().acquire("polygon")


def test_redis_limiter_state_lives_under_the_prefix(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    limiter = RateLimiter.in_redis(redis_client, redis_prefix)
    limiter.acquire(BUCKET)
    limiter.observe(BUCKET, {"Retry-After": "1"}, 429)
    keys = {k.decode() for k in redis_client.scan_iter(f"{redis_prefix}ratelimit:*")}
    assert keys == {
        f"{redis_prefix}ratelimit:{BUCKET}:window",
        f"{redis_prefix}ratelimit:{BUCKET}:blocked",
    }
