"""The Alpaca account fetch: alpaca-py's `TradingClient.get_account()` behind the shared limiter.

alpaca-py retries 429 and 504 three times with 3 s sleeps and sets no timeout; here its retries
are off (the cache serves the previous value and the limiter honours Retry-After instead) and
every request gets `timeout_seconds`. Failures become `BrokerFetchError` with a message that
names what went wrong; keys never appear in it (exceptions are raised `from None` so that the
request, which carries the key headers, is not chained either).
"""

from __future__ import annotations

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


class AlpacaAccountFetcher:
    """`AccountFetcher` for an Alpaca trading account (paper or live)."""

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        *,
        paper: bool = True,
        url_override: str | None = None,
        limiter: RateLimiter,
        timeout_seconds: float = 5.0,
        max_rate_wait_seconds: float = 0.5,
    ) -> None:
        self._client = TradingClient(key_id, secret_key, paper=paper, url_override=url_override)
        self._client._retry = 0  # one HTTP request per call; see the module docstring
        limit_session(
            self._client._session,
            limiter,
            TRADING_BUCKET,
            timeout_seconds=timeout_seconds,
            max_wait_seconds=max_rate_wait_seconds,
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
