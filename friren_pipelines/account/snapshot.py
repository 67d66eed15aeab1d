"""What the broker says about the account, and the snapshot a reader gets from the cache.

Money values are `Decimal` in the account currency (USD for Alpaca), parsed from the broker's
strings without going through float. Times are UTC.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any, Protocol

MONEY_FIELDS = (
    "portfolio_value",
    "cash",
    "buying_power",
    "equity",
    "daytrading_buying_power",
    "last_equity",
    "long_market_value",
    "short_market_value",
)


class BrokerFetchError(RuntimeError):
    """The broker did not deliver the account: the message says why (never a key)."""


@dataclass(frozen=True)
class BrokerAccount:
    """The account as the broker reported it.

    `equity` is cash plus the market value of positions; `last_equity` is the equity at the
    previous session's close (16:00 New York), the base of the day P&L. `status` is the broker's
    account status (`ACTIVE` when the account can trade).
    """

    portfolio_value: Decimal
    cash: Decimal
    buying_power: Decimal
    equity: Decimal
    daytrading_buying_power: Decimal
    last_equity: Decimal
    long_market_value: Decimal
    short_market_value: Decimal  # negative or zero: the value of short positions
    status: str
    account_blocked: bool
    trading_blocked: bool
    pattern_day_trader: bool

    def to_json(self) -> str:
        """Decimals as strings, so the round trip through Redis is exact."""
        return json.dumps(
            {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(self).items()}
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> BrokerAccount:
        raw: dict[str, Any] = json.loads(text)
        parsed: dict[str, Any] = {k: Decimal(v) if k in MONEY_FIELDS else v for k, v in raw.items()}
        return cls(**parsed)


class AccountFetcher(Protocol):
    """Asks the broker for the account; raises `BrokerFetchError` when it cannot.

    The cache calls it at most once per expiry across all processes; implementations must not
    retry on their own for longer than the cache's broker timeout.
    """

    def __call__(self) -> BrokerAccount: ...


@dataclass(frozen=True)
class AccountSnapshot(BrokerAccount):
    """The account as a reader sees it: the broker's values plus when they were fetched.

    `age_seconds` is the time between `fetched_at` and the read. `stale` is True when the value
    is older than the cache's TTL: the refresh failed, was rate limited or did not finish in time,
    and the previous value is served instead (never older than the cache's maximum stale age).
    `degraded` says why the shared cache (Redis) is not in use, when it is not: the value then
    comes from this process's cache and its broker calls from a local rate limiter.
    """

    fetched_at: dt.datetime
    age_seconds: float
    stale: bool
    degraded: str | None = None

    @property
    def day_pl(self) -> Decimal:
        """Profit and loss since the previous close: `equity - last_equity`, in USD."""
        return self.equity - self.last_equity

    @property
    def day_pl_pct(self) -> Decimal | None:
        """Day P&L in percent of `last_equity` (1.5 means +1.5 %); None when `last_equity` is 0."""
        if self.last_equity == 0:
            return None
        return (self.day_pl / self.last_equity * 100).quantize(Decimal("0.0001"))

    @classmethod
    def of(
        cls,
        account: BrokerAccount,
        fetched_at: float,
        now: float,
        ttl_seconds: float,
        degraded: str | None = None,
    ) -> AccountSnapshot:
        """`fetched_at` and `now` are Unix epoch seconds."""
        age = max(0.0, now - fetched_at)
        return cls(
            **{f.name: getattr(account, f.name) for f in fields(BrokerAccount)},
            fetched_at=dt.datetime.fromtimestamp(fetched_at, dt.UTC),
            age_seconds=age,
            stale=age > ttl_seconds,
            degraded=degraded,
        )
