"""`LiveAccount`: the Dagster resource that answers account questions from the shared cache.

Backed by Redis when `redis_url` is set (every process shares one value, one refresh per expiry
and the counters), by a cache in the process otherwise. `resources.live_account(settings)` builds
it from the settings, with the Alpaca keys and the Redis URL as `dg.EnvVar`s, so that the Dagster
UI and the run config show the variables' names, never their values.

To serve an account without a broker (the embedded demo), subclass and override
`account_fetcher` (and `default_label`) to return a deterministic `AccountFetcher`.
"""

from __future__ import annotations

import threading
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field, PrivateAttr

from friren_pipelines.account.cache import (
    AccountCache,
    AccountStore,
    AccountUnavailableError,
    MemoryAccountStore,
    RedisAccountStore,
    RedisOrMemoryStore,
)
from friren_pipelines.account.health import AccountHealth, is_account_healthy
from friren_pipelines.account.redis_namespace import connect
from friren_pipelines.account.snapshot import AccountFetcher, AccountSnapshot
from friren_pipelines.account.stats import CacheStatistics
from friren_pipelines.config import DEFAULT_REDIS_PREFIX, ConfigError

if TYPE_CHECKING:
    from friren_pipelines.account.rate_limit import RateLimiter

# Without Redis, every LiveAccount of a process with the same label shares one store.
_process_stores: dict[str, MemoryAccountStore] = {}
_process_stores_lock = threading.Lock()


def _process_store(label: str) -> MemoryAccountStore:
    with _process_stores_lock:
        return _process_stores.setdefault(label, MemoryAccountStore())


class LiveAccount(dg.ConfigurableResource):
    """Broker account values (USD, Decimal) at most `ttl_seconds` old, or flagged stale."""

    ttl_seconds: float = Field(default=30.0, description="Seconds a broker answer stays fresh.")
    max_stale_seconds: float = Field(
        default=300.0,
        description="Oldest value (seconds) served while the broker fails; older raises.",
    )
    wait_timeout_seconds: float = Field(
        default=1.0, description="Longest wait (seconds) for another reader's refresh."
    )
    broker_timeout_seconds: float = Field(
        default=5.0, description="Timeout (seconds) of one broker call."
    )
    retry_backoff_seconds: float = Field(
        default=5.0, description="Seconds without broker calls after a failed refresh."
    )
    equity_floor: str = Field(
        default="25000", description="Equity (USD) under which the account is unhealthy."
    )
    health_max_age_seconds: float = Field(
        default=60.0, description="Snapshot age (seconds) above which the account is unhealthy."
    )
    account_label: str | None = Field(
        default=None,
        description="Names the account in Redis keys; default alpaca-paper or alpaca-live.",
    )
    alpaca_key_id: str | None = Field(default=None, repr=False, description="ALPACA_API_KEY_ID")
    alpaca_secret_key: str | None = Field(
        default=None, repr=False, description="ALPACA_API_SECRET_KEY"
    )
    alpaca_paper: bool = Field(default=True, description="Paper (true) or live trading endpoint.")
    alpaca_url_override: str | None = Field(
        default=None, description="Base URL of the Alpaca trading API (tests: a local fake)."
    )
    redis_url: str | None = Field(
        default=None, repr=False, description="FRIREN_REDIS_URL; none: a cache in the process."
    )
    redis_prefix: str = Field(
        default=DEFAULT_REDIS_PREFIX, description="Prefix of every Redis key."
    )

    _cache: AccountCache | None = PrivateAttr(default=None)
    _cache_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def default_label(self) -> str:
        return "alpaca-paper" if self.alpaca_paper else "alpaca-live"

    def rate_limiter(self) -> RateLimiter:
        """The project's broker rate limiter: in Redis when `redis_url` is set, else in-process."""
        # requests (its transport) is imported on first use: loading the definitions needs none.
        from friren_pipelines.account.rate_limit import broker_rate_limiter

        return broker_rate_limiter(self.redis_url, self.redis_prefix)

    def account_fetcher(self) -> AccountFetcher:
        """The broker call; override for a demo account."""
        if not (self.alpaca_key_id and self.alpaca_secret_key):
            raise ConfigError(
                "LiveAccount needs ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY to reach the broker"
            )
        # alpaca-py is imported on first use: loading the definitions must not need it.
        from friren_pipelines.account.broker import AlpacaAccountFetcher, AlpacaConnection

        return AlpacaAccountFetcher(
            AlpacaConnection(
                self.alpaca_key_id,
                self.alpaca_secret_key,
                paper=self.alpaca_paper,
                url_override=self.alpaca_url_override,
            ),
            limiter=self.rate_limiter(),
            timeout_seconds=self.broker_timeout_seconds,
            max_rate_wait_seconds=min(self.wait_timeout_seconds, self.broker_timeout_seconds),
        )

    def _account_cache(self) -> AccountCache:
        with self._cache_lock:
            if self._cache is None:
                label = self.account_label or self.default_label()
                store: AccountStore
                if self.redis_url:
                    client = connect(self.redis_url)
                    shared = RedisAccountStore(client, prefix=self.redis_prefix, label=label)
                    store = RedisOrMemoryStore(shared, client)
                else:
                    store = _process_store(label)
                fetcher = self.account_fetcher()
                limiter = self.rate_limiter() if self.redis_url else None
                self._cache = AccountCache(
                    fetcher,
                    store,
                    label=label,
                    ttl_seconds=self.ttl_seconds,
                    max_stale_seconds=self.max_stale_seconds,
                    wait_timeout_seconds=self.wait_timeout_seconds,
                    broker_timeout_seconds=self.broker_timeout_seconds,
                    retry_backoff_seconds=self.retry_backoff_seconds,
                    also_degraded=(lambda: limiter.degraded) if limiter else None,
                )
            return self._cache

    def snapshot(self) -> AccountSnapshot:
        """Raises `AccountUnavailableError` when no value is younger than `max_stale_seconds`."""
        return self._account_cache().snapshot()

    def portfolio_value(self) -> Decimal:
        return self.snapshot().portfolio_value

    def cash(self) -> Decimal:
        return self.snapshot().cash

    def buying_power(self) -> Decimal:
        return self.snapshot().buying_power

    def equity(self) -> Decimal:
        return self.snapshot().equity

    def daytrading_buying_power(self) -> Decimal:
        return self.snapshot().daytrading_buying_power

    def last_equity(self) -> Decimal:
        return self.snapshot().last_equity

    def day_pl(self) -> Decimal:
        return self.snapshot().day_pl

    def day_pl_pct(self) -> Decimal | None:
        return self.snapshot().day_pl_pct

    def is_account_healthy(self) -> AccountHealth:
        """Never raises for missing data or an outage: an unavailable account is unhealthy, with
        the reason; a degraded one (Redis unreachable) is judged on its values, with a warning.
        Only a wrong configuration (`ConfigError`) raises."""
        try:
            floor = Decimal(self.equity_floor)
        except InvalidOperation:
            raise ConfigError(
                f"LiveAccount equity_floor={self.equity_floor!r} is not a number of USD"
            ) from None
        try:
            snapshot = self.snapshot()
        except AccountUnavailableError as error:
            return AccountHealth(healthy=False, reasons=(str(error),))
        except ConfigError:
            raise
        except Exception as error:
            return AccountHealth(
                healthy=False, reasons=(f"account check failed: {type(error).__name__}",)
            )
        return is_account_healthy(
            snapshot, equity_floor=floor, max_age_seconds=self.health_max_age_seconds
        )

    def statistics(self) -> CacheStatistics:
        """Cache counters; `statistics().as_metadata()` is ready for asset metadata."""
        return self._account_cache().statistics()
