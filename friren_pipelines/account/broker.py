"""The Alpaca account fetch: alpaca-py's `TradingClient.get_account()` behind the shared limiter.

alpaca-py retries 429 and 504 three times with 3 s sleeps and sets no timeout; here its retries
are off (the cache serves the previous value and the limiter honours Retry-After instead) and
every request gets `timeout_seconds`. Failures become `BrokerFetchError` with a message that
names what went wrong; keys never appear in it (exceptions are raised `from None` so that the
request, which carries the key headers, is not chained either).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from decimal import Decimal, InvalidOperation

import pydantic
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.models import TradeAccount

from friren_pipelines.account.rate_limit import RateLimitedError, RateLimiter, limit_session
from friren_pipelines.account.snapshot import MONEY_FIELDS, BrokerAccount, BrokerFetchError

TRADING_BUCKET = "alpaca-trading"


def broker_account_from_alpaca(account: TradeAccount) -> BrokerAccount:
    """Map alpaca-py's model (money as strings) to `BrokerAccount` (money as Decimal)."""
    money: dict[str, Decimal] = {}
    for name in MONEY_FIELDS:
        raw = getattr(account, name)
        if raw is None:
            raise BrokerFetchError(f"Alpaca account has no {name!r}")
        try:
            money[name] = Decimal(str(raw))
        except InvalidOperation:
            raise BrokerFetchError(f"Alpaca account {name}={raw!r} is not a number") from None
    return BrokerAccount(
        **money,
        status=str(getattr(account.status, "value", account.status)),
        account_blocked=bool(account.account_blocked),
        trading_blocked=bool(account.trading_blocked),
        pattern_day_trader=bool(account.pattern_day_trader),
    )


@dataclass(frozen=True)
class AlpacaConnection:
    """Which Alpaca trading account to reach and with which keys (kept out of the repr)."""

    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    _: KW_ONLY
    paper: bool = True
    url_override: str | None = None

    def trading_client(
        self,
        limiter: RateLimiter,
        *,
        timeout_seconds: float,
        max_rate_wait_seconds: float | None = None,
    ) -> TradingClient:
        """alpaca-py's client with its retries off (one HTTP request per call: the limiter
        honours Retry-After instead) and every request paced by `limiter`, bounded by
        `timeout_seconds` and waiting at most `max_rate_wait_seconds` for a slot (None: no bound)."""
        client = TradingClient(
            self.key_id, self.secret_key, paper=self.paper, url_override=self.url_override
        )
        client._retry = 0
        limit_session(
            client._session,
            limiter,
            TRADING_BUCKET,
            timeout_seconds=timeout_seconds,
            max_wait_seconds=max_rate_wait_seconds,
        )
        return client


class AlpacaAccountFetcher:
    """`AccountFetcher` for an Alpaca trading account (paper or live)."""

    def __init__(
        self,
        connection: AlpacaConnection,
        *,
        limiter: RateLimiter,
        timeout_seconds: float = 5.0,
        max_rate_wait_seconds: float = 0.5,
    ) -> None:
        self._client = connection.trading_client(
            limiter, timeout_seconds=timeout_seconds, max_rate_wait_seconds=max_rate_wait_seconds
        )
        self._timeout = timeout_seconds

    def __repr__(self) -> str:
        return f"AlpacaAccountFetcher(base_url={self._client._base_url!s})"

    def __call__(self) -> BrokerAccount:
        what = "Alpaca GET /v2/account"
        try:
            account = self._client.get_account()
        except RateLimitedError as error:
            raise BrokerFetchError(f"{what} not sent: {error}") from None
        except APIError as error:
            body = str(error)[:200]
            raise BrokerFetchError(f"{what} answered HTTP {error.status_code}: {body}") from None
        except requests.Timeout:
            raise BrokerFetchError(f"{what} timed out after {self._timeout:g} s") from None
        except requests.JSONDecodeError:
            raise BrokerFetchError(f"{what} answered a body that is not JSON") from None
        except requests.RequestException as error:
            raise BrokerFetchError(f"{what} failed: {type(error).__name__}") from None
        except pydantic.ValidationError as error:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in error.errors()[:5])
            raise BrokerFetchError(f"{what} answered a malformed account ({fields})") from None
        except (TypeError, AttributeError):
            raise BrokerFetchError(f"{what} answered a body that is not an account") from None
        if not isinstance(account, TradeAccount):
            raise BrokerFetchError(f"{what} answered a body that is not an account")
        return broker_account_from_alpaca(account)
