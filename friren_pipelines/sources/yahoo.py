"""Bars from Yahoo Finance through the yfinance library (`Ticker.history`, one symbol at a time).

Requests: `history(start, end + 1 day, interval, auto_adjust=<explicit>, prepost=False,
actions=False, repair=False)`; dates are New York dates, the end is exclusive in yfinance.

Prices and `adjustment`
    Yahoo's chart OHLC are split-adjusted as of the request. Daily bars with
    `auto_adjust=False` are therefore `split`; with `auto_adjust=True` yfinance scales them by
    Adj Close / Close and they are `split_dividend`. Intraday charts carry no Adj Close, so
    intraday bars are `split` either way. Volume is yfinance's integer volume; Yahoo gives no vwap
    or trade count.

Reach of intraday bars (Yahoo's limits, checked before any request)
    1-minute bars only for sessions in the last 30 days, at most 7 days per request (longer ranges
    are split); 5-minute bars only in the last 60 days. An older range raises `SourceError`.

Errors
    Yahoo's HTTP status is read on the chart reply itself (a response check installed on the
    session), because yfinance turns error replies into empty frames: 404 → `UnknownSymbolError`,
    429 or 5xx → `SourceUnavailableError`, as are timeouts and connection failures (yfinance does
    not retry them by default). A reply that is not a chart → `SourceDataError`. An empty chart
    (a weekend, a range before listing) means no bars. yfinance's own exceptions are switched on
    for the duration of a request (`yf.config.debug.hide_exceptions = False`).

Sessions and caches
    Without a session, a curl_cffi session impersonating Chrome (yfinance's default; Yahoo blocks
    plain clients) is used. A given `requests.Session` gets the response check added to its hooks.
    yfinance is process-global: its last session is shared by all tickers, it caches ticker time
    zones and cookies on disk (`yf.set_tz_cache_location`) and replies for past ranges in memory.
    `timeout` (seconds) applies to chart requests; yfinance's cookie, crumb and time-zone
    look-ups use their own fixed timeouts.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import requests
import yfinance as yf
from curl_cffi import requests as curl_requests
from yfinance.config import YfConfig
from yfinance.exceptions import (
    YFException,
    YFPricesMissingError,
    YFRateLimitError,
    YFTzMissingError,
)

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import Timeframe, conform, normalize_symbol
from friren_pipelines.sources.base import (
    SourceDataError,
    SourceError,
    SourceUnavailableError,
    UnknownSymbolError,
    in_regular_session,
)

SOURCE = "yfinance"
INTERVALS = {Timeframe.MIN1: "1m", Timeframe.MIN5: "5m", Timeframe.DAY1: "1d"}


# How far back (calendar days) Yahoo serves an intraday timeframe, and how many days one request
# may span (Yahoo refuses more than 8 days of 1-minute bars per request).
LOOKBACK_DAYS = {Timeframe.MIN1: 30, Timeframe.MIN5: 60}
DAYS_PER_REQUEST = {Timeframe.MIN1: 7, Timeframe.MIN5: 60}


def request_windows(
    timeframe: Timeframe, start: dt.date, end: dt.date, today: dt.date
) -> list[tuple[dt.date, dt.date]]:
    """The [first, last] date windows (inclusive) to request, or `SourceError` if out of reach."""
    if end < start:
        return []
    if not timeframe.is_intraday:
        return [(start, end)]
    earliest = today - dt.timedelta(days=LOOKBACK_DAYS[timeframe])
    if start < earliest:
        raise SourceError(
            f"{SOURCE}: {timeframe.value} bars for {start}..{end} are out of reach: Yahoo serves "
            f"{timeframe.value} bars only for the last {LOOKBACK_DAYS[timeframe]} "
            f"days (from {earliest})"
        )
    span = dt.timedelta(days=DAYS_PER_REQUEST[timeframe] - 1)
    windows = []
    first = start
    while first <= end:
        last = min(first + span, end)
        windows.append((first, last))
        first = last + dt.timedelta(days=1)
    return windows


class _ChartStatusError(Exception):
    """A chart reply whose status says something yfinance would hide (404, 429, 5xx)."""

    def __init__(self, status: int, text: str):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.text = text[:200]


def check_chart_reply(response: Any, *args: object, **kwargs: object) -> None:
    """Response check (a `requests` hook): raise `_ChartStatusError` for chart 404, 429 and 5xx."""
    status = int(response.status_code)
    if "/v8/finance/chart/" in str(response.url) and (status in (404, 429) or status >= 500):
        raise _ChartStatusError(status, response.text)


class _CheckedCurlSession(curl_requests.Session):
    """yfinance's default curl_cffi session, with `check_chart_reply` on every reply."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().request(*args, **kwargs)
        check_chart_reply(response)
        return response


def _checked(session: requests.Session | None) -> requests.Session | _CheckedCurlSession:
    if session is None:
        return _CheckedCurlSession(impersonate="chrome")
    if check_chart_reply not in session.hooks["response"]:
        session.hooks["response"].append(check_chart_reply)
    return session


@contextmanager
def _yfinance_raises() -> Iterator[None]:
    """yfinance raises instead of logging and returning an empty frame; pandas noise is muted."""
    hidden = YfConfig.debug.hide_exceptions
    YfConfig.debug.hide_exceptions = False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"yfinance\.")
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"yfinance\.")
            yield
    finally:
        YfConfig.debug.hide_exceptions = hidden


class YahooBarSource:
    """`BarSource` over Yahoo Finance via yfinance (conventions in the module docstring)."""

    name = SOURCE

    def __init__(
        self, auto_adjust: bool, session: requests.Session | None = None, timeout: float = 10.0
    ):
        self.auto_adjust = auto_adjust
        self.timeout = timeout
        self._session = _checked(session)

    def adjustment(self, timeframe: Timeframe) -> str:
        return "split_dividend" if self.auto_adjust and not timeframe.is_intraday else "split"

    def fetch_bars(
        self, symbols: Sequence[str], timeframe: Timeframe, start: dt.date, end: dt.date
    ) -> pd.DataFrame:
        today = pd.Timestamp.now(tz=calendar.NEW_YORK).date()
        windows = request_windows(timeframe, start, end, today)
        frames = [
            self._history(normalize_symbol(symbol), timeframe, first, last)
            for symbol in symbols
            for first, last in windows
        ]
        return in_regular_session(frames, timeframe, start, end)

    def _history(
        self, symbol: str, timeframe: Timeframe, first: dt.date, last: dt.date
    ) -> pd.DataFrame:
        where = f"{SOURCE}: {timeframe.value} bars for {symbol} {first}..{last}"
        try:
            with _yfinance_raises():
                history = yf.Ticker(symbol, session=self._session).history(
                    start=first.isoformat(),
                    end=(last + dt.timedelta(days=1)).isoformat(),
                    interval=INTERVALS[timeframe],
                    auto_adjust=self.auto_adjust,
                    prepost=False,
                    actions=False,
                    repair=False,
                    timeout=self.timeout,
                )
            return bars_from_history(history, symbol, timeframe, self.adjustment(timeframe))
        except _ChartStatusError as reply:
            if reply.status == 404:
                raise UnknownSymbolError(f"{where}: Yahoo does not know the symbol") from None
            raise SourceUnavailableError(
                f"{where}: Yahoo answered HTTP {reply.status} ({reply.text!r})"
            ) from None
        except YFRateLimitError:
            raise SourceUnavailableError(f"{where}: Yahoo rate limit (HTTP 429)") from None
        except YFTzMissingError:
            raise UnknownSymbolError(f"{where}: Yahoo has no time zone for the symbol") from None
        except YFPricesMissingError:
            return pd.DataFrame()  # Yahoo has no bars in this window (weekend, before listing)
        except (YFException, ValueError, KeyError, TypeError, IndexError) as error:
            # ValueError first: requests' JSONDecodeError is also an OSError.
            raise SourceDataError(f"{where}: Yahoo's reply is not a chart ({error!r})") from None
        except OSError as error:
            raise SourceUnavailableError(f"{where}: {type(error).__name__}: {error}") from None


def bars_from_history(
    history: pd.DataFrame, symbol: str, timeframe: Timeframe, adjustment: str
) -> pd.DataFrame:
    """yfinance's `history()` frame (tz-aware index, Open..Volume) as conformed bars."""
    if history.empty:
        return pd.DataFrame()
    missing = [c for c in ("Open", "High", "Low", "Close", "Volume") if c not in history.columns]
    if missing:
        raise KeyError(f"history frame without {', '.join(missing)}")
    frame = pd.DataFrame(
        {
            "timestamp": history.index,
            "open": history["Open"].to_numpy(),
            "high": history["High"].to_numpy(),
            "low": history["Low"].to_numpy(),
            "close": history["Close"].to_numpy(),
            "volume": history["Volume"].to_numpy(),
        }
    )
    return conform(frame, symbol=symbol, timeframe=timeframe, adjustment=adjustment, source=SOURCE)
