"""The live account through outages: Redis unreachable (a closed port, a proxy that goes away)
and a broker that fails or hangs (stale-while-revalidate: answers at once, one refresh in flight).
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import redis
from click.testing import CliRunner

from friren_pipelines.account.broker import AlpacaAccountFetcher, AlpacaConnection
from friren_pipelines.account.cache import (
    AccountCache,
    AccountDataTooOldError,
    RedisAccountStore,
    RedisOrMemoryStore,
)
from friren_pipelines.account.cli import account
from friren_pipelines.account.rate_limit import (
    RateLimit,
    RateLimitedError,
    RateLimiter,
    broker_rate_limiter,
)
from friren_pipelines.account.redis_namespace import connect
from friren_pipelines.core.bars import Timeframe
from friren_pipelines.sources.alpaca_bars import AlpacaBarSource
from friren_pipelines_tests.account.conftest import ACCOUNT_PATH, BrokerKeys
from friren_pipelines_tests.account.test_cache import ACCOUNT, prime_then_expire
from friren_pipelines_tests.account.test_resource import live, point_at_fake_broker
from friren_pipelines_tests.account.workers import run_to_completion
from friren_pipelines_tests.fakes.alpaca import install_alpaca_routes
from friren_pipelines_tests.fakes.http import FakeHttpServer, Reply, Request
from friren_pipelines_tests.fakes.tcp_proxy import TcpProxy

MakeCache = Callable[..., AccountCache]
AT_ONCE = 0.05  # seconds: what "answered at once" means on a loaded CI machine


@dataclass
class RedisDown:
    """A Redis URL on a 127.0.0.1 port where nothing listens; `restore()` puts the test's real
    Redis behind that port (a TCP proxy), as a Redis coming back would."""

    url: str
    port: int
    real: tuple[str, int]
    proxy: TcpProxy | None = None

    def restore(self) -> None:
        self.proxy = TcpProxy(*self.real, listen_port=self.port)


@pytest.fixture
def redis_down(redis_url: str) -> Iterator[RedisDown]:
    with socket.socket() as probe:  # a free port, closed again: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    real = urlsplit(redis_url)
    down = RedisDown(
        f"redis://127.0.0.1:{port}{real.path}", port, (real.hostname or "", real.port or 6379)
    )
    yield down
    if down.proxy is not None:
        down.proxy.close()


@pytest.fixture
def account_without_redis(
    friren_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    alpaca: FakeHttpServer,
    broker_keys: BrokerKeys,
    redis_down: RedisDown,
) -> RedisDown:
    """The deployment's settings pointed at the fake broker and at the closed Redis port."""
    point_at_fake_broker(monkeypatch, alpaca, broker_keys, redis_down.url)
    return redis_down


@pytest.fixture
def label() -> str:
    return f"outage-{time.monotonic_ns()}"


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_redis_down_serves_the_account_from_the_process_flagged_degraded(
    account_without_redis: RedisDown, alpaca: FakeHttpServer, label: str
) -> None:
    redis_down = account_without_redis
    live_account = live(account_label=label)
    snapshot = live_account.snapshot()
    assert snapshot.equity == Decimal("103820.56") and not snapshot.stale
    assert snapshot.degraded is not None
    assert f"Redis at 127.0.0.1:{redis_down.port} unreachable" in snapshot.degraded
    assert "answering from this process's cache" in snapshot.degraded
    assert live_account.snapshot().fetched_at == snapshot.fetched_at  # cached in the process
    assert len(alpaca.calls(ACCOUNT_PATH)) == 1

    health = live_account.is_account_healthy()  # judged on the values; the outage is a warning
    assert health.healthy and "unreachable" in health.reason and health.warnings

    stats = live_account.statistics()
    assert stats.degraded is not None and "25% of each broker budget" in stats.degraded
    assert (stats.requests, stats.hits, stats.broker_calls) == (3, 2, 1)
    metadata = stats.as_metadata()
    assert metadata["redis_degraded"] == 1 and "unreachable" in str(metadata["degraded_reason"])


def test_account_recovers_when_redis_returns_and_writes_back_what_it_learnt(
    account_without_redis: RedisDown, alpaca: FakeHttpServer, redis_prefix: str, label: str
) -> None:
    redis_down = account_without_redis
    live_account = live(account_label=label)
    during = live_account.snapshot()
    assert during.degraded
    redis_down.restore()
    # Reads never wait for the re-check: it runs in the background with a growing back-off.
    assert wait_until(lambda: live_account.snapshot().degraded is None, 5.0)
    assert wait_until(lambda: live_account.statistics().degraded is None, 5.0)
    client = redis.Redis.from_url(f"redis://{redis_down.real[0]}:{redis_down.real[1]}")
    stored = client.hget(f"{redis_prefix}account:{label}:value", "fetched_at")
    assert stored is not None
    assert float(stored) == pytest.approx(during.fetched_at.timestamp(), abs=1e-5)
    stats = live_account.statistics()  # counted during the outage, then added to Redis
    assert stats.broker_calls == 1 and stats.requests >= 2
    assert len(alpaca.calls(ACCOUNT_PATH)) == 1


def test_redis_going_away_mid_run_keeps_serving_the_last_value(
    make_cache: MakeCache, redis_url: str, redis_prefix: str, alpaca: FakeHttpServer
) -> None:
    real = urlsplit(redis_url)
    proxy = TcpProxy(real.hostname or "", real.port or 6379)
    client = connect(f"redis://127.0.0.1:{proxy.port}{real.path}")
    store = RedisOrMemoryStore(RedisAccountStore(client, prefix=redis_prefix, label="t"), client)
    fetcher = AlpacaAccountFetcher(
        AlpacaConnection("PKTEST", "secret", url_override=alpaca.url),
        limiter=RateLimiter.in_process(),
    )
    cache = AccountCache(fetcher, store, label="t", ttl_seconds=60)
    primed = cache.snapshot()
    assert primed.degraded is None
    proxy.close()
    started = time.monotonic()
    after = [cache.snapshot() for _ in range(20)]
    assert time.monotonic() - started < 1.0
    assert {s.fetched_at for s in after} == {primed.fetched_at}
    assert all(s.degraded and "unreachable" in s.degraded for s in after)
    assert len(alpaca.calls(ACCOUNT_PATH)) == 1


def test_cli_with_redis_down_exits_0_with_the_degradation_in_one_line(
    friren_env: dict[str, str],
    alpaca: FakeHttpServer,
    broker_keys: BrokerKeys,
    redis_down: RedisDown,
) -> None:
    env = {
        "ALPACA_API_KEY_ID": broker_keys.key_id,
        "ALPACA_API_SECRET_KEY": broker_keys.secret_key,
        "ALPACA_URL_OVERRIDE": alpaca.url,
        "FRIREN_REDIS_URL": redis_down.url,
    }
    result = CliRunner().invoke(account, env=env)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and result.exception is None
    mentions = [line for line in result.output.splitlines() if "unreachable" in line]
    assert len(mentions) == 1 and mentions[0].startswith("DEGRADED")
    assert "portfolio value                 103820.56 USD" in result.output
    assert "health                   ok" in result.output
    assert "redis_degraded           1" in result.output
    assert not broker_keys.appear_in(result.output)


def test_rate_limiter_with_redis_down_limits_each_process_to_a_quarter(
    redis_down: RedisDown, redis_prefix: str, alpaca: FakeHttpServer
) -> None:
    limiter = RateLimiter.in_redis(
        connect(redis_down.url), redis_prefix, {"alpaca-trading": RateLimit(8, 60.0)}
    )
    for _ in range(2):  # 8 x 25 %
        with limiter.acquire("alpaca-trading", max_wait_seconds=0):
            pass
    with pytest.raises(RateLimitedError, match="sliding window is full"):
        limiter.acquire("alpaca-trading", max_wait_seconds=0)
    assert limiter.degraded is not None and "unreachable" in limiter.degraded


def test_alpaca_bar_backfill_runs_with_redis_down(
    shared_data: object, redis_down: RedisDown, redis_prefix: str
) -> None:
    with FakeHttpServer() as server:
        install_alpaca_routes(server)
        source = AlpacaBarSource(
            "PKTESTKEY",
            "test-secret",
            url_override=server.url,
            limiter=broker_rate_limiter(redis_down.url, redis_prefix),
        )
        bars = source.fetch_bars(
            ["AAPL", "TSLA"], Timeframe.DAY1, dt.date(2022, 2, 1), dt.date(2022, 3, 9)
        )
    assert set(bars["symbol"]) == {"AAPL", "TSLA"}


class SlowFailingBroker:
    """Answers 503 after `delay` seconds while `down`; counts the calls in flight at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.down = True
        self._lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    def __call__(self, request: Request) -> Reply:
        if not self.down:
            return Reply(body=ACCOUNT)
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay)  # answered within the client's timeout: the count stays exact
        with self._lock:
            self.in_flight -= 1
        return Reply(503, {"code": 50300000, "message": "service unavailable"})


def read_timed(caches: list[AccountCache], threads: int, reads: int) -> list[tuple[float, bool]]:
    """`threads` readers (spread over `caches`), `reads` each every 10 ms: (seconds, stale)."""
    results: list[tuple[float, bool]] = []
    lock = threading.Lock()

    def reader(cache: AccountCache) -> None:
        for _ in range(reads):
            started = time.perf_counter()
            stale = cache.snapshot().stale
            with lock:
                results.append((time.perf_counter() - started, stale))
            time.sleep(0.01)

    run_to_completion(
        [threading.Thread(target=reader, args=(caches[i % len(caches)],)) for i in range(threads)]
    )
    return results


def test_broker_outage_answers_at_once_with_one_refresh_in_flight_then_recovers(
    make_cache: MakeCache, alpaca: FakeHttpServer, store_kind: str
) -> None:
    options = {
        "ttl_seconds": 0.2,
        "max_stale_seconds": 30.0,
        "broker_timeout_seconds": 1.0,
        "wait_timeout_seconds": 0.5,
        "retry_backoff_seconds": 0.1,
    }
    # With Redis, two caches on one label stand for two processes: one lock for both.
    caches = [make_cache(store_kind, **options) for _ in range(2 if store_kind == "redis" else 1)]
    broker = SlowFailingBroker(delay=0.3)
    primed = prime_then_expire(caches[0], alpaca, broker)
    first = caches[0].snapshot()  # finds the broker failing: waits for that one attempt
    assert first.stale and first.fetched_at == primed.fetched_at

    reads = read_timed(caches, threads=8, reads=40)  # ~0.5 s of crisis
    assert all(stale for _, stale in reads)
    slowest = max(seconds for seconds, _ in reads)
    assert slowest < AT_ONCE, f"slowest read during the outage took {slowest * 1000:.1f} ms"
    assert broker.most_in_flight == 1
    attempts = len(alpaca.calls(ACCOUNT_PATH)) - 2  # minus the priming and the first attempt
    assert attempts >= 1  # the background refresh kept retrying...
    assert attempts <= 0.8 / (0.3 + 0.1) + 1  # ...one at a time, with its back-off

    broker.down = False
    assert wait_until(lambda: not caches[-1].snapshot().stale, 2.0)
    refreshed = caches[0].snapshot()
    assert refreshed.fetched_at > primed.fetched_at and not refreshed.stale
    stats = caches[0].statistics()
    assert stats.errors >= 2 and stats.stale_answers >= len(reads)


def test_crisis_read_past_max_stale_still_raises_naming_age_and_cause(
    make_cache: MakeCache, alpaca: FakeHttpServer, store_kind: str
) -> None:
    cache = make_cache(store_kind, ttl_seconds=0.1, max_stale_seconds=0.3, retry_backoff_seconds=5)
    prime_then_expire(cache, alpaca, Reply(503, {"message": "maintenance"}))
    assert cache.snapshot().stale  # the failed refresh starts the crisis
    time.sleep(0.3)
    started = time.monotonic()
    with pytest.raises(AccountDataTooOldError, match=r"is 0\.[3-9]\d* s old .*HTTP 503"):
        cache.snapshot()
    assert time.monotonic() - started < AT_ONCE  # within the back-off: no broker call waited
