"""Fixtures for the account tests: a fake Alpaca trading API, broker keys that must never leak,
and caches wired to real Redis (the per-test prefix) or to the process."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from friren_pipelines.account.broker import AlpacaAccountFetcher, AlpacaConnection
from friren_pipelines.account.cache import (
    AccountCache,
    AccountStore,
    MemoryAccountStore,
    RedisAccountStore,
)
from friren_pipelines.account.rate_limit import RateLimiter
from friren_pipelines_tests.fakes.http import FakeHttpServer, Reply, recorded

ACCOUNT_PATH = "/v2/account"


@dataclass(frozen=True)
class BrokerKeys:
    key_id: str
    secret_key: str

    def appear_in(self, text: str) -> bool:
        return self.key_id in text or self.secret_key in text


@pytest.fixture
def broker_keys() -> BrokerKeys:
    return BrokerKeys(f"PKTEST{uuid.uuid4().hex[:14].upper()}", f"secret-{uuid.uuid4().hex}")


@pytest.fixture
def alpaca() -> Iterator[FakeHttpServer]:
    """The fake trading API, answering GET /v2/account with the recorded account."""
    with FakeHttpServer() as server:
        server.route("GET", ACCOUNT_PATH, Reply(body=recorded("alpaca/trading_v2_account.json")))
        yield server


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_prefix(redis_url: str) -> str:
    return os.environ["FRIREN_REDIS_PREFIX"]


@pytest.fixture
def redis_limiter(redis_client: redis.Redis, redis_prefix: str) -> RateLimiter:
    return RateLimiter.in_redis(redis_client, redis_prefix)


@pytest.fixture
def fetcher_for(
    alpaca: FakeHttpServer, broker_keys: BrokerKeys
) -> Callable[..., AlpacaAccountFetcher]:
    def build(limiter: RateLimiter, **options: Any) -> AlpacaAccountFetcher:
        return AlpacaAccountFetcher(
            AlpacaConnection(
                broker_keys.key_id, broker_keys.secret_key, paper=True, url_override=alpaca.url
            ),
            limiter=limiter,
            **options,
        )

    return build


@pytest.fixture(params=["redis", "process"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_cache(
    request: pytest.FixtureRequest, fetcher_for: Callable[..., AlpacaAccountFetcher]
) -> Callable[..., AccountCache]:
    """Builds an AccountCache on the fake broker; store 'redis' (test prefix) or 'process'."""

    def build(store: str = "redis", **options: Any) -> AccountCache:
        fetch_options = {"timeout_seconds": options.get("broker_timeout_seconds", 2.0)}
        account_store: AccountStore
        if store == "redis":
            client = request.getfixturevalue("redis_client")
            prefix = request.getfixturevalue("redis_prefix")
            account_store = RedisAccountStore(client, prefix=prefix, label="test")
            limiter = RateLimiter.in_redis(client, prefix)
        else:
            account_store = MemoryAccountStore()
            limiter = RateLimiter.in_process()
        options.setdefault("broker_timeout_seconds", 2.0)
        return AccountCache(
            fetcher_for(limiter, **fetch_options), account_store, label="test", **options
        )

    return build


@pytest.fixture
def every_log_record(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every record of every logger at DEBUG (urllib3 included)."""
    caplog.set_level(logging.DEBUG)
    return caplog
