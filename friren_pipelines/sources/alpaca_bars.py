"""Bars from Alpaca's market-data API via alpaca-py (`StockHistoricalDataClient.get_stock_bars`).

One `StockBarsRequest` per call covers every symbol (Alpaca answers multi-symbol requests in
pages; alpaca-py follows `next_page_token` until it is null). The window is New York midnight of
`start` to one second before New York midnight after `end`, so it holds the whole extended day;
extended-hours bars are then dropped and counted.

Prices and `adjustment`
    The request states the adjustment explicitly: `adjustment="split"` (default) asks Alpaca for
    `Adjustment.SPLIT` and labels bars `split`; `adjustment="raw"` asks for `Adjustment.RAW`
    (prices as traded) and labels them `raw`. Volume is shares; `vwap` and `trade_count` come
    from Alpaca (`vw`, `n`). Daily bars, stamped by Alpaca at New York midnight, are re-stamped
    at the session open by `core.bars.conform`. `feed` is Alpaca's data feed (iex, sip, ...).

Errors, retries and time-outs
    alpaca-py retries the statuses in `RETRY_STATUSES` `retry_attempts` times,
    `retry_wait_seconds` apart (its defaults are 3 times, 3 s, 429/504 only); after that, and on
    time-outs and connection failures, `SourceUnavailableError`. alpaca-py sets no time-out of its
    own: `timeout` (seconds) is applied to every request by the client's HTTP adapter. A 4xx
    naming a symbol → `UnknownSymbolError`; other 4xx (bad keys, no subscription for the feed) →
    `SourceError`; a body that is not bars → `SourceDataError`. Keys never appear in messages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.models.bars import BarSet
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from friren_pipelines.account.rate_limit import RateLimiter, broker_rate_limiter, limit_session
from friren_pipelines.config import redact
from friren_pipelines.core import calendar
from friren_pipelines.core.bars import Timeframe, conform, normalize_symbol
from friren_pipelines.sources.base import (
    SourceDataError,
    SourceError,
    SourceUnavailableError,
    UnknownSymbolError,
    in_regular_session,
)

SOURCE = "alpaca"
ADJUSTMENTS = {"raw": Adjustment.RAW, "split": Adjustment.SPLIT}
RETRY_STATUSES = [429, 500, 502, 503, 504]
TIMEFRAMES = {
    Timeframe.MIN1: TimeFrame(1, TimeFrameUnit.Minute),
    Timeframe.MIN5: TimeFrame(5, TimeFrameUnit.Minute),
    Timeframe.DAY1: TimeFrame(1, TimeFrameUnit.Day),
}


def configure_client(
    client: Any,
    timeout: float,
    retry_attempts: int,
    retry_wait_seconds: float,
    limiter: RateLimiter | None = None,
) -> None:
    """Rate limit, time-out, retry count, wait and retried statuses of an alpaca-py REST client.

    alpaca-py's constructors take none of these (and refuse 0 retries or 0 s waits), so they are
    set on the client's documented-in-source attributes `_session`, `_retry`, `_retry_wait`,
    `_retry_codes`. Shared with the trading clients.
    """
    # Every request is paced by the project's one broker rate limiter and gets the time-out.
    limiter = limiter or broker_rate_limiter()
    limit_session(client._session, limiter, "alpaca-data", timeout_seconds=timeout)
    client._retry = retry_attempts
    client._retry_wait = retry_wait_seconds
    client._retry_codes = list(RETRY_STATUSES)


class AlpacaBarSource:
    """`BarSource` over Alpaca market data (conventions in the module docstring)."""

    name = SOURCE

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        feed: str = "iex",
        url_override: str | None = None,
        timeout: float = 10.0,
        *,
        adjustment: str = "split",
        retry_attempts: int = 3,
        retry_wait_seconds: float = 3.0,
        limiter: RateLimiter | None = None,  # default: this process's broker limiter
    ):
        if adjustment not in ADJUSTMENTS:
            raise ValueError(f"adjustment {adjustment!r} is not one of {sorted(ADJUSTMENTS)}")
        self.feed = DataFeed(feed)
        self.adjustment = adjustment
        self._client = StockHistoricalDataClient(key_id, secret_key, url_override=url_override)
        self._keys = (key_id, secret_key)
        configure_client(self._client, timeout, retry_attempts, retry_wait_seconds, limiter)

    def fetch_bars(
        self, symbols: Sequence[str], timeframe: Timeframe, start: dt.date, end: dt.date
    ) -> pd.DataFrame:
        wanted = sorted({normalize_symbol(s) for s in symbols})
        if not wanted or end < start:
            return in_regular_session([], timeframe, start, end)
        where = (
            f"{SOURCE}: {timeframe.value} bars for {', '.join(wanted)} {start}..{end} "
            f"(feed {self.feed.value})"
        )
        request = StockBarsRequest(
            symbol_or_symbols=wanted,
            timeframe=TIMEFRAMES[timeframe],
            start=_new_york_midnight(start),
            end=_new_york_midnight(end + dt.timedelta(days=1)) - dt.timedelta(seconds=1),
            adjustment=ADJUSTMENTS[self.adjustment],
            feed=self.feed,
        )
        try:
            bar_set = self._client.get_stock_bars(request)
            if not isinstance(bar_set, BarSet):
                raise TypeError(f"expected a BarSet, got {type(bar_set).__name__}")
            frames = [
                self._conform(symbol, bars, timeframe)
                for symbol, bars in bar_set.data.items()
                if symbol in wanted
            ]
        except APIError as error:
            raise _api_error(where, error, self._keys) from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            # ValueError first: requests' JSONDecodeError is also an OSError.
            raise SourceDataError(f"{where}: Alpaca's reply is not bars ({error})") from None
        except OSError as error:
            raise SourceUnavailableError(f"{where}: {type(error).__name__}: {error}") from None
        return in_regular_session(frames, timeframe, start, end)

    def _conform(self, symbol: str, bars: list[Any], timeframe: Timeframe) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "timestamp": [bar.timestamp for bar in bars],
                "open": [bar.open for bar in bars],
                "high": [bar.high for bar in bars],
                "low": [bar.low for bar in bars],
                "close": [bar.close for bar in bars],
                "volume": [bar.volume for bar in bars],
                "vwap": [bar.vwap for bar in bars],
                "trade_count": [bar.trade_count for bar in bars],
            }
        )
        return conform(
            frame, symbol=symbol, timeframe=timeframe, adjustment=self.adjustment, source=SOURCE
        )


def _new_york_midnight(day: dt.date) -> dt.datetime:
    return pd.Timestamp(day).tz_localize(calendar.NEW_YORK).to_pydatetime()


def _api_error(where: str, error: APIError, keys: tuple[str, str]) -> SourceError:
    status = error.status_code
    try:
        message = str(error.message)
    except (ValueError, KeyError, TypeError):
        message = str(error)[:200]
    message = redact(message, *keys)  # the broker's words may echo the key it was sent
    text = f"{where}: Alpaca answered HTTP {status} ({message})"
    if status is None or status == 429 or status >= 500:
        return SourceUnavailableError(text)
    if status in (400, 404, 422) and "symbol" in message.lower():
        return UnknownSymbolError(text)
    return SourceError(text)
