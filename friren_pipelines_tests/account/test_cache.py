"""The account cache against real Redis (and in-process): TTL, single-flight, stale fallback."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable

import pytest
import redis

from friren_pipelines.account.cache import (
    AccountCache,
    AccountDataTooOldError,
    AccountUnavailableError,
)
from friren_pipelines.account.snapshot import AccountSnapshot
from friren_pipelines_tests.account.conftest import ACCOUNT_PATH, BrokerKeys
from friren_pipelines_tests.account.workers import (
    Readers,
    SharedRedis,
    read_together,
    run_to_completion,
)
from friren_pipelines_tests.fakes.http import FakeHttpServer, Handler, Reply, recorded

ACCOUNT = recorded("alpaca/trading_v2_account.json")
MakeCache = Callable[..., AccountCache]


def broker_calls(alpaca: FakeHttpServer) -> int:
    return len(alpaca.calls(ACCOUNT_PATH))


def prime_then_expire(
    cache: AccountCache, alpaca: FakeHttpServer, then: Handler
) -> AccountSnapshot:
    """Cache a first value, have the broker answer `then` from now on, and wait until the value
    has just expired (50 ms past the cache's TTL); return the first value."""
    primed = cache.snapshot()
    alpaca.route("GET", ACCOUNT_PATH, then)
    time.sleep(cache.ttl_seconds + 0.05)
    return primed


def test_reads_within_the_ttl_cost_one_broker_call(
    make_cache: MakeCache, alpaca: FakeHttpServer, store_kind: str
) -> None:
    cache = make_cache(store_kind, ttl_seconds=5.0)
    snapshots = [cache.snapshot() for _ in range(50)]
    assert broker_calls(alpaca) == 1
    assert {s.fetched_at for s in snapshots} == {snapshots[0].fetched_at}
    assert not any(s.stale for s in snapshots)
    stats = cache.statistics()
    assert (stats.requests, stats.hits, stats.misses, stats.broker_calls) == (50, 49, 1, 1)
    assert stats.broker_calls_saved == 49
    assert stats.hit_ratio == pytest.approx(0.98)


def test_value_is_refreshed_once_the_ttl_has_passed(
    make_cache: MakeCache, alpaca: FakeHttpServer, store_kind: str
) -> None:
    cache = make_cache(store_kind, ttl_seconds=0.2)
    first = cache.snapshot()
    assert cache.snapshot().fetched_at == first.fetched_at
    time.sleep(0.25)
    second = cache.snapshot()
    assert second.fetched_at > first.fetched_at and not second.stale
    assert broker_calls(alpaca) == 2


def read_at_once(cache: AccountCache, readers: int) -> list[AccountSnapshot]:
    start = threading.Barrier(readers)
    results: list[AccountSnapshot] = []

    def read() -> None:
        start.wait()
        results.append(cache.snapshot())

    run_to_completion([threading.Thread(target=read) for _ in range(readers)])
    return results


def test_32_threads_across_an_expiry_make_one_broker_call(
    make_cache: MakeCache, alpaca: FakeHttpServer, store_kind: str
) -> None:
    cache = make_cache(store_kind, ttl_seconds=0.2, wait_timeout_seconds=2.0)
    primed = prime_then_expire(cache, alpaca, Reply(body=ACCOUNT, delay=0.1))
    results = read_at_once(cache, 32)
    assert broker_calls(alpaca) == 2  # the priming call and one refresh
    assert len({s.fetched_at for s in results}) == 1
    assert results[0].fetched_at > primed.fetched_at and not any(s.stale for s in results)
    assert cache.statistics().broker_calls == 2


def test_readers_in_two_processes_across_an_expiry_make_one_broker_call(
    make_cache: MakeCache,
    alpaca: FakeHttpServer,
    redis_url: str,
    redis_prefix: str,
    broker_keys: BrokerKeys,
) -> None:
    context = multiprocessing.get_context("fork")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    shared = SharedRedis(redis_url, redis_prefix)
    readers = Readers(alpaca.url, (broker_keys.key_id, broker_keys.secret_key), 0.5, threads=16)
    processes = [
        context.Process(target=read_together, args=(shared, readers, ready, go, results))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=30)
    cache = make_cache("redis", ttl_seconds=0.5)
    primed = prime_then_expire(cache, alpaca, Reply(body=ACCOUNT, delay=0.1))
    go.set()
    answers = [results.get(timeout=10) for _ in range(32)]
    for process in processes:
        process.join(timeout=10)
        assert process.exitcode == 0
    assert broker_calls(alpaca) == 2
    assert len({fetched_at for fetched_at, _ in answers}) == 1
    assert answers[0][0] > primed.fetched_at.timestamp()
    assert not any(stale for _, stale in answers)
    stats = cache.statistics()  # the counters are shared through Redis
    assert (stats.requests, stats.broker_calls) == (33, 2)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Reply(500, {"code": 50010000, "message": "internal server error"}), "HTTP 500"),
        (Reply(body=ACCOUNT, delay=1.0), r"timed out after 0\.2 s"),
        (Reply(body=b"<html>bad gateway</html>"), "not JSON"),
        (Reply(429, {"message": "too many"}, {"Retry-After": "30"}), "429"),
    ],
    ids=["http-500", "timeout", "malformed", "http-429"],
)
def test_broker_failure_serves_the_last_value_as_stale_then_raises_after_max_age(
    make_cache: MakeCache, alpaca: FakeHttpServer, fault: Reply, reason: str
) -> None:
    cache = make_cache(
        ttl_seconds=0.2,
        max_stale_seconds=0.6,
        broker_timeout_seconds=0.2,
        retry_backoff_seconds=0.05,
    )
    primed = prime_then_expire(cache, alpaca, fault)
    stale = cache.snapshot()
    assert stale.stale and stale.age_seconds > 0.2
    assert (stale.fetched_at, stale.equity) == (primed.fetched_at, primed.equity)
    time.sleep(0.65 - stale.age_seconds)
    with pytest.raises(
        AccountDataTooOldError, match=rf"is 0\.[6-9]\d* s old .*refresh failed: .*{reason}"
    ):
        cache.snapshot()
    stats = cache.statistics()
    assert stats.stale_answers >= 1 and stats.errors >= 1 and stats.unanswered == 1


def test_no_value_and_broker_down_raises_unavailable_with_the_reason(
    make_cache: MakeCache, alpaca: FakeHttpServer, store_kind: str
) -> None:
    alpaca.route("GET", ACCOUNT_PATH, Reply(503, {"message": "maintenance"}))
    with pytest.raises(AccountUnavailableError, match=r"no account value for 'test' yet.*HTTP 503"):
        make_cache(store_kind).snapshot()


def test_failed_refresh_is_not_retried_during_the_backoff(
    make_cache: MakeCache, alpaca: FakeHttpServer, store_kind: str
) -> None:
    cache = make_cache(store_kind, ttl_seconds=0.1, retry_backoff_seconds=0.5)
    prime_then_expire(cache, alpaca, Reply(500, {"message": "down"}))
    answers = []
    for _ in range(20):
        answers.append(cache.snapshot())
        time.sleep(0.01)
    assert all(a.stale for a in answers)
    assert broker_calls(alpaca) == 2  # the priming call and one failed refresh


def test_waiters_take_the_previous_value_when_the_refresh_is_slow(
    make_cache: MakeCache, alpaca: FakeHttpServer, store_kind: str
) -> None:
    cache = make_cache(store_kind, ttl_seconds=0.2, wait_timeout_seconds=0.1)
    primed = prime_then_expire(cache, alpaca, Reply(body=ACCOUNT, delay=0.6))
    refreshed: list[AccountSnapshot] = []
    holder = threading.Thread(target=lambda: refreshed.append(cache.snapshot()))
    holder.start()
    time.sleep(0.05)
    started = time.monotonic()
    waiter = cache.snapshot()
    assert time.monotonic() - started < 0.3
    assert waiter.stale and waiter.fetched_at == primed.fetched_at
    holder.join()
    assert refreshed[0].fetched_at > primed.fetched_at and not refreshed[0].stale
    assert broker_calls(alpaca) == 2


def test_every_redis_key_of_the_cache_carries_the_prefix(
    make_cache: MakeCache, redis_client: redis.Redis, redis_prefix: str
) -> None:
    make_cache("redis").snapshot()
    keys = {k.decode() for k in redis_client.scan_iter(f"{redis_prefix}*")}
    assert {f"{redis_prefix}account:test:value", f"{redis_prefix}account:test:stats"} <= keys
    assert f"{redis_prefix}ratelimit:alpaca-trading:window" in keys
