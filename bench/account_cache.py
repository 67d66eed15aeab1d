"""Benchmark of the live account cache against real Redis and a fake Alpaca (real alpaca-py).

    .venv/bin/python -m bench.account_cache [--quick] [--redis-url redis://127.0.0.1:6379/0]

Prints, in one run:
1. cached read latency p50 / p99 (goal p99 <= 0.5 ms);
2. broker calls per TTL window with 32 readers (2 processes x 16 threads) across each expiry
   (goal exactly 1);
3. hit ratio and broker calls per minute with 2 processes polling at 10 Hz for 2 minutes,
   TTL 30 s (goals >= 99.5 % and <= 4 per minute);
4. reads answered during a 60 s broker outage (goals all, flagged stale, p99 <= 1 ms: answered
   from the cache while one background refresh retries);
5. the busiest 60 s window seen by the broker while 16 threads in 2 processes call it without
   cache as fast as the shared limiter lets them (goal <= 200, Alpaca's limit).

`--quick` shortens the durations and the TTL of stages 3-4 (a smoke run: the goals of stage 3
are stated for the full run). Keys live under a fresh `friren-bench-<id>:` prefix, removed at exit.
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
import uuid
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import TypeVar

import redis
import requests

from friren_pipelines.account.broker import AlpacaAccountFetcher, AlpacaConnection
from friren_pipelines.account.cache import (
    AccountCache,
    AccountUnavailableError,
    RedisAccountStore,
)
from friren_pipelines.account.rate_limit import RateLimitedError, RateLimiter
from friren_pipelines_tests.fakes.http import FakeHttpServer, Reply, Request, recorded

ACCOUNT_PATH = "/v2/account"
BROKER_LATENCY = 0.05  # seconds the fake broker takes to answer, like a real round trip
BROKER_TIMEOUT = 1.0
KEYS = ("PKBENCHKEY0000000000", "bench-secret-not-a-real-key")
Size = TypeVar("Size", int, float)  # a stage's size: a count of reads or windows, or seconds


class FakeBroker:
    """The fake trading API; `down` switches between the account and an outage."""

    def __init__(self, server: FakeHttpServer) -> None:
        self.server = server
        self.down = False
        self._account = recorded("alpaca/trading_v2_account.json")
        server.route("GET", ACCOUNT_PATH, self._answer)

    def _answer(self, request: Request) -> Reply:
        if not self.down:
            return Reply(body=self._account, delay=BROKER_LATENCY)
        # An outage of both kinds: errors and answers that never come in time.
        if len(self.server.requests) % 2:
            return Reply(503, {"code": 50300000, "message": "service unavailable"})
        return Reply(body=self._account, delay=BROKER_TIMEOUT * 2)

    def calls_since(self, started: float) -> list[float]:
        return [r.at for r in self.server.calls(ACCOUNT_PATH) if r.at >= started]


@dataclass(frozen=True)
class Setup:
    redis_url: str
    prefix: str
    broker_url: str

    def cache(
        self, label: str, ttl_seconds: float, max_stale_seconds: float = 300.0
    ) -> AccountCache:
        client = redis.Redis.from_url(self.redis_url)
        fetcher = AlpacaAccountFetcher(
            AlpacaConnection(*KEYS, url_override=self.broker_url),
            limiter=RateLimiter.in_redis(client, self.prefix),
            timeout_seconds=BROKER_TIMEOUT,
        )
        return AccountCache(
            fetcher,
            RedisAccountStore(client, prefix=self.prefix, label=label),
            label=label,
            ttl_seconds=ttl_seconds,
            max_stale_seconds=max_stale_seconds,
            wait_timeout_seconds=BROKER_TIMEOUT / 2,
            broker_timeout_seconds=BROKER_TIMEOUT,
            retry_backoff_seconds=min(5.0, ttl_seconds),
        )


@dataclass(frozen=True)
class Polling:
    label: str
    ttl_seconds: float
    max_stale_seconds: float
    threads: int
    period_seconds: float  # between two reads of one thread
    start_at: float  # Unix epoch: every process starts together
    seconds: float


def poll(setup: Setup, polling: Polling, results: Queue) -> None:
    """One process: `threads` readers reading every `period_seconds`; reports every read."""
    cache = setup.cache(polling.label, polling.ttl_seconds, polling.max_stale_seconds)
    reads: list[tuple[float, bool, bool]] = []  # (latency s, answered, stale)
    lock = threading.Lock()

    def reader() -> None:
        time.sleep(max(0.0, polling.start_at - time.time()))
        next_read = time.monotonic()
        deadline = next_read + polling.seconds
        while next_read < deadline:
            started = time.perf_counter()
            try:
                stale, answered = cache.snapshot().stale, True
            except AccountUnavailableError:
                stale, answered = False, False
            with lock:
                reads.append((time.perf_counter() - started, answered, stale))
            next_read += polling.period_seconds
            time.sleep(max(0.0, next_read - time.monotonic()))

    threads = [threading.Thread(target=reader) for _ in range(polling.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put(reads)


def run_pollers(
    setup: Setup,
    label: str,
    ttl_seconds: float,
    *,
    max_stale_seconds: float = 300.0,
    threads: int,
    period_seconds: float,
    seconds: float,
    processes: int = 2,
) -> list[tuple[float, bool, bool]]:
    """`processes` processes of `threads` readers each, all starting in one second (time to fork
    them) and polling one cache `label` for `seconds`; every read of every process."""
    polling = Polling(
        label,
        ttl_seconds,
        max_stale_seconds,
        threads,
        period_seconds,
        start_at=time.time() + 1.0,
        seconds=seconds,
    )
    context = multiprocessing.get_context("fork")
    results: Queue = context.Queue()
    workers = [
        context.Process(target=poll, args=(setup, polling, results)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    reads = [read for _ in workers for read in results.get()]
    for worker in workers:
        worker.join()
    return reads


def percentile_ms(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def cached_read_latency(setup: Setup, reads: int) -> None:
    cache = setup.cache("bench-latency", ttl_seconds=3600, max_stale_seconds=3600)
    cache.snapshot()
    for _ in range(200):  # warm the connection and the parsed-value memo
        cache.snapshot()
    latencies = []
    for _ in range(reads):
        started = time.perf_counter()
        cache.snapshot()
        latencies.append(time.perf_counter() - started)
    p50, p99 = percentile_ms(latencies, 0.50), percentile_ms(latencies, 0.99)
    print(
        f"1. cached read latency over {reads} reads: p50 {p50:.3f} ms, p99 {p99:.3f} ms "
        f"(goal p99 <= 0.5 ms: {verdict(p99 <= 0.5)})"
    )


def busiest_window(arrivals: list[float], seconds: float) -> int:
    """The most broker calls in any window [t, t + seconds)."""
    times = sorted(arrivals)
    return max(
        (sum(1 for u in times[i:] if u < t + seconds) for i, t in enumerate(times)), default=0
    )


def readers_across_expiries(setup: Setup, broker: FakeBroker, windows: int) -> None:
    ttl = 1.0
    started = time.monotonic()
    reads = run_pollers(
        setup, "bench-expiry", ttl, threads=16, period_seconds=0.005, seconds=windows * ttl
    )
    calls = broker.calls_since(started)
    most = busiest_window(calls, ttl)
    print(
        f"2. 32 readers (2 processes x 16 threads, each reading every 5 ms, {len(reads)} reads) "
        f"for {windows} s with a {ttl:g} s TTL: {len(calls)} broker calls (one per expiry), "
        f"at most {most} in any {ttl:g} s window (goal exactly 1: {verdict(most == 1)})"
    )


def steady_polling(
    setup: Setup, broker: FakeBroker, ttl: float, seconds: float, full: bool
) -> None:
    started = time.monotonic()
    reads = run_pollers(setup, "bench-polling", ttl, threads=1, period_seconds=0.1, seconds=seconds)
    stats = setup.cache("bench-polling", ttl).statistics()
    calls = len(broker.calls_since(started))
    per_minute = calls / (seconds / 60)
    goals = (
        f"(goals >= 99.5 %: {verdict(stats.hit_ratio >= 0.995)}, "
        f"<= 4 per minute: {verdict(per_minute <= 4)})"
        if full
        else "(smoke run with a short TTL: the goals apply to the full run)"
    )
    print(
        f"3. 2 processes at 10 Hz for {seconds:g} s, TTL {ttl:g} s, cold start: {len(reads)} reads, "
        f"hit ratio {stats.hit_ratio:.2%} ({stats.hits}/{stats.requests}), {calls} broker calls "
        f"= {per_minute:.2f} per minute; p99 read {percentile_ms([r[0] for r in reads], 0.99):.3f} ms "
        f"{goals}"
    )


def outage(setup: Setup, broker: FakeBroker, ttl: float, seconds: float) -> None:
    max_stale = seconds + 2 * ttl
    cache = setup.cache("bench-outage", ttl, max_stale_seconds=max_stale)
    cache.snapshot()
    broker.down = True
    time.sleep(ttl)  # the value expires during the outage: every read below needs the broker
    started = time.monotonic()
    reads = run_pollers(
        setup,
        "bench-outage",
        ttl,
        max_stale_seconds=max_stale,
        threads=1,
        period_seconds=0.1,
        seconds=seconds,
    )
    broker.down = False
    answered = sum(1 for r in reads if r[1])
    stale = sum(1 for r in reads if r[2])
    calls = len(broker.calls_since(started))
    latencies = [r[0] for r in reads]
    p99 = percentile_ms(latencies, 0.99)
    print(
        f"4. {seconds:g} s broker outage (503s and timeouts), 2 processes at 10 Hz: "
        f"{answered}/{len(reads)} reads answered, {stale} flagged stale, {calls} broker attempts, "
        f"p50 {percentile_ms(latencies, 0.5):.3f} ms, p99 {p99:.3f} ms, "
        f"max {max(latencies) * 1000:.0f} ms, "
        f"{sum(1 for t in latencies if t > 0.001)} reads over 1 ms "
        f"(goals all answered and stale: {verdict(answered == stale == len(reads))}, "
        f"p99 <= 1 ms: {verdict(p99 <= 1.0)})"
    )


def hammer(setup: Setup, seconds: float) -> None:
    """8 threads calling the broker without cache, each call through the shared limiter."""
    limiter = RateLimiter.in_redis(redis.Redis.from_url(setup.redis_url), setup.prefix)
    deadline = time.monotonic() + seconds

    def call() -> None:
        session = requests.Session()
        while (left := deadline - time.monotonic()) > 0:
            try:
                slot = limiter.acquire("alpaca-trading", max_wait_seconds=left)
            except RateLimitedError:
                return  # the next slot opens after the end of the stage
            with slot:
                try:
                    response = session.get(f"{setup.broker_url}{ACCOUNT_PATH}", timeout=5.0)
                except requests.RequestException:
                    continue  # the fake's accept queue overflowed: the slot is spent anyway
            limiter.observe("alpaca-trading", response.headers, response.status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def limiter_under_load(setup: Setup, broker: FakeBroker, seconds: float) -> None:
    context = multiprocessing.get_context("fork")
    started = time.monotonic()
    workers = [context.Process(target=hammer, args=(setup, seconds)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    arrivals = broker.calls_since(started)
    busiest = busiest_window(arrivals, 60.0)
    print(
        f"5. 16 threads in 2 processes calling the broker uncached for {seconds:g} s: "
        f"{len(arrivals)} calls reached it, busiest 60 s window {busiest} "
        f"(goal <= 200: {verdict(busiest <= 200)})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter smoke run")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)

    def quick_or_full(quick: Size, full: Size) -> Size:
        return quick if args.quick else full

    prefix = f"friren-bench-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(args.redis_url)
    client.ping()
    with FakeHttpServer() as server:
        broker = FakeBroker(server)
        setup = Setup(args.redis_url, prefix, server.url)
        try:
            cached_read_latency(setup, reads=quick_or_full(5_000, 20_000))
            readers_across_expiries(setup, broker, windows=quick_or_full(3, 5))
            steady_polling(
                setup,
                broker,
                ttl=quick_or_full(5.0, 30.0),
                seconds=quick_or_full(20.0, 120.0),
                full=not args.quick,
            )
            outage(setup, broker, ttl=quick_or_full(2.0, 30.0), seconds=quick_or_full(10.0, 60.0))
            limiter_under_load(setup, broker, seconds=quick_or_full(5.0, 70.0))
        finally:
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)


if __name__ == "__main__":
    main()
