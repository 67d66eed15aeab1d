"""A deterministic, offline source of realistic bars: the embedded default.

Every number is a pure function of (symbol, session), so any range, chunking or order of
requests yields the same bars:
- a symbol's close walks from the calendar's first session on shocks drawn from a generator
  seeded by the symbol; a session's close depends only on the shocks up to it;
- the rest of a daily bar (opening gap, wicks, volume) is drawn from a generator seeded by
  (symbol, year) and the minute bars from one seeded by (symbol, session), so a request draws
  only for the years and sessions it returns.
Properties a consumer can rely on:
- bars only inside XNYS sessions, early closes included (fewer minute bars that day);
- OHLC consistent (low ≤ open, close ≤ high), prices in cents, volume in whole shares;
- intraday volume is U-shaped; minute paths run from the day's open to its close and stay inside
  the day's range; 5-minute bars are aggregates of the 1-minute bars;
- occasional splits (2:1, 3:1 or 4:1, about one per symbol per 13 years): prices are **raw**,
  so a split shows as a drop of 1/ratio at the open (adjustment = "raw").
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import Timeframe, conform, empty_bars, resample_to_5min

SPLIT_RATIOS = (2, 3, 4)
TREND_PER_SESSION = 0.08 / 252  # the adjusted price level grows about 8% a year
REVERSION_PER_SESSION = 0.001  # log price reverts to its trend (stationary spread ~ 35%)
SPLIT_AT_MULTIPLE = 2.5  # a split happens when the raw price first reaches 2.5x its start level
MICROS_PER_MINUTE = 60_000_000


def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded by the SHA-256 of `parts`: the same parts always draw the same numbers."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(np.frombuffer(digest, dtype=np.uint32))


@lru_cache(maxsize=1)
def _sessions() -> pd.DataFrame:
    """Every session of the calendar, with its `open` and `close` in µs since the epoch (UTC)."""
    table = calendar.session_table(calendar.CALENDAR_START, calendar.calendar_end())
    return pd.DataFrame(
        {c: pd.DatetimeIndex(table[c]).as_unit("us").asi8 for c in ("open", "close")},
        index=pd.DatetimeIndex(table.index),
    )


@lru_cache(maxsize=1)
def _path_weights() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trend, phi^t and phi^-t of the log price for every session t of the calendar (t = 0 at its
    first session), phi = 1 - REVERSION_PER_SESSION; shared by every symbol (`**` is slow)."""
    t = np.arange(len(_sessions()), dtype=float)
    phi = 1 - REVERSION_PER_SESSION
    return TREND_PER_SESSION * t, phi**t, phi**-t


def _daily(symbols: Sequence[str], first: int, last: int) -> dict[str, np.ndarray]:
    """Raw daily open/high/low/close/volume with one row per symbol and one column per session
    of first..last-1 (positions in `_sessions()`)."""
    k, m = len(symbols), last - first
    volatility, base_volume = np.empty((k, 1)), np.empty((k, 1))
    log_close = np.empty((k, m + 1))  # adjusted, from the close before the first session
    split_factor = np.empty((k, m))
    trend, decay, growth = (weights[:last] for weights in _path_weights())
    for row, symbol in enumerate(symbols):
        rng = _rng("daily", symbol)
        level = rng.uniform(20, 300)
        volatility[row] = rng.uniform(0.01, 0.025)
        base_volume[row] = rng.uniform(2e5, 5e7)
        ratio = SPLIT_RATIOS[rng.integers(len(SPLIT_RATIOS))]
        # Log price over the start level: trend + an AR(1) deviation d_t = phi * d_(t-1) + u_t,
        # in closed form d_t = phi^t * sum(u_s / phi^s for s <= t), computed in place.
        path = rng.standard_normal(last)  # the first `last` draws of an endless stream
        path[0] = 0.0  # the first session closes at the start level
        path *= growth
        np.cumsum(path, out=path)
        path *= decay
        path *= volatility[row]
        path += trend
        # Splits never reverse: count them from the running maximum of the price.
        peak = np.maximum.accumulate(path)[first:]
        splits = np.floor((peak - np.log(SPLIT_AT_MULTIPLE)) / np.log(ratio)) + 1
        split_factor[row] = float(ratio) ** np.maximum(splits, 0)
        log_close[row] = np.log(level) + np.concatenate([path[:1], path])[first:]
    adjusted = np.exp(log_close)
    # The open gaps from yesterday's close, on today's share count (the split day drops at the open).
    previous_close, close = adjusted[:, :-1] / split_factor, adjusted[:, 1:] / split_factor
    gaps, up, down, volume_noise = _session_noise(symbols, first, last)
    open_ = np.maximum(np.round(previous_close * np.exp(gaps * volatility / 3), 2), 0.01)
    close = np.maximum(np.round(close, 2), 0.01)
    high = np.round(np.maximum(open_, close) * np.exp(np.abs(up) * volatility / 2), 2)
    low = np.round(np.minimum(open_, close) * np.exp(-np.abs(down) * volatility / 2), 2)
    return {
        "open": open_,
        "high": np.maximum(high, np.maximum(open_, close)),
        "low": np.minimum(np.maximum(low, 0.01), np.minimum(open_, close)),
        "close": close,
        "volume": np.round(base_volume * split_factor * np.exp(0.25 * volume_noise)),
    }


def _session_noise(symbols: Sequence[str], first: int, last: int) -> np.ndarray:
    """Standard normals (gap, upper wick, lower wick, volume) x symbols x sessions first..last-1.

    Drawn a calendar year at a time from a generator seeded by (symbol, year), so that a
    session's draws depend on its place in its year, never on the range requested.
    """
    years = pd.DatetimeIndex(_sessions().index).year.to_numpy()
    noise = np.empty((4, len(symbols), last - first))
    for year in np.unique(years[first:last]):
        year_first, year_last = np.searchsorted(years, [year, year + 1])
        lo, hi = max(first, year_first), min(last, year_last)
        for row, symbol in enumerate(symbols):
            draws = _rng("session", symbol, year).standard_normal((4, year_last - year_first))
            noise[:, row, lo - first : hi - first] = draws[:, lo - year_first : hi - year_first]
    return noise


def _session_minutes(
    symbols: Sequence[str], session: dt.date, n: int, day: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """One session's n 1-minute bars of each symbol (rows): a bridge from the day's open to its
    close inside its range. `day` holds each symbol's daily bar of the session."""
    noise = np.empty((len(symbols), 4, n))
    for row, symbol in enumerate(symbols):
        _rng("minute", symbol, session.isoformat()).standard_normal(out=noise[row])
    day_open, day_high, day_low, day_close, day_volume = (
        day[c][:, None] for c in ("open", "high", "low", "close", "volume")
    )
    fraction = np.arange(n + 1) / n
    walk = np.concatenate([np.zeros((len(symbols), 1)), np.cumsum(noise[:, 0], axis=1)], axis=1)
    bridge = walk - walk[:, -1:] * fraction
    line = day_open + (day_close - day_open) * fraction
    # The widest bridge that keeps the path inside [low, high], capped near a typical day's range.
    up = np.where(bridge > 0, (day_high - line) / np.maximum(bridge, 1e-12), np.inf)
    down = np.where(bridge < 0, (line - day_low) / np.maximum(-bridge, 1e-12), np.inf)
    room = np.minimum(up.min(axis=1), down.min(axis=1))[:, None]
    amplitude = np.minimum(room, day_close * 0.002 * np.sqrt(n)) * 0.95
    path = np.clip(np.round(line + bridge * amplitude, 2), day_low, day_high)
    path[:, 0], path[:, -1] = day["open"], day["close"]
    opens, closes = path[:, :-1], path[:, 1:]
    wick = day_close * 0.0004
    highs = np.round(np.maximum(opens, closes) + np.abs(noise[:, 1]) * wick, 2)
    lows = np.round(np.minimum(opens, closes) - np.abs(noise[:, 2]) * wick, 2)
    shape = 1 + 2.5 * np.linspace(-1, 1, n) ** 2  # U-shaped: busy open and close, quiet lunch
    weights = shape * np.exp(0.2 * noise[:, 3])
    return {
        "open": opens,
        "high": np.minimum(highs, day_high),
        "low": np.maximum(lows, day_low),
        "close": closes,
        "volume": np.floor(day_volume * weights / weights.sum(axis=1, keepdims=True)),
    }


def _intraday(symbols: Sequence[str], first: int, last: int) -> dict[str, np.ndarray]:
    """1-minute bars and their starts (µs, UTC) with one row per symbol, sessions first..last-1
    one after the other along each row."""
    sessions = _sessions().iloc[first:last]
    day = _daily(symbols, first, last)
    parts = []
    for column, (label, open_, close) in enumerate(sessions.itertuples()):
        n = (close - open_) // MICROS_PER_MINUTE  # early closes have fewer minutes
        bars = _session_minutes(symbols, label.date(), n, {c: v[:, column] for c, v in day.items()})
        starts = open_ + MICROS_PER_MINUTE * np.arange(n)
        parts.append({**bars, "timestamp": np.broadcast_to(starts, (len(symbols), n))})
    return {c: np.concatenate([part[c] for part in parts], axis=1) for c in parts[0]}


def _raw_bars(symbols: Sequence[str], columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """One frame from arrays with one row per symbol (in time order along each row), with the
    bars' vwap (typical price) and trade count."""
    k, per_symbol = columns["open"].shape
    frame = pd.DataFrame({c: v.ravel() for c, v in columns.items()})
    frame["symbol"] = pd.array(symbols, dtype="str").take(np.repeat(np.arange(k), per_symbol))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="us", utc=True)
    frame["vwap"] = np.round((frame["high"] + frame["low"] + frame["close"]) / 3, 4)
    frame["trade_count"] = np.maximum(np.round(frame["volume"] / 120), 1).astype("int64")
    return frame


class SyntheticBarSource:
    name = "synthetic"

    def fetch_bars(
        self, symbols: Sequence[str], timeframe: Timeframe, start: dt.date, end: dt.date
    ) -> pd.DataFrame:
        symbols = sorted(symbols)  # generated in the bars' order, so conform need not re-sort
        sessions = _sessions()
        first = int(sessions.index.searchsorted(pd.Timestamp(start)))
        last = int(sessions.index.searchsorted(pd.Timestamp(end), side="right"))
        if not symbols or first >= last:
            bars = empty_bars()
        elif timeframe == Timeframe.DAY1:
            columns = _daily(symbols, first, last)
            opens = sessions["open"].to_numpy()[first:last]
            columns["timestamp"] = np.broadcast_to(opens, (len(symbols), last - first))
            raw = _raw_bars(symbols, columns)
            bars = conform(raw, timeframe=timeframe, adjustment="raw", source=self.name)
        else:
            raw = _raw_bars(symbols, _intraday(symbols, first, last))
            bars = conform(raw, timeframe=Timeframe.MIN1, adjustment="raw", source=self.name)
            if timeframe == Timeframe.MIN5:
                bars = resample_to_5min(bars)
                bars["vwap"] = bars["vwap"].round(4)
        bars.attrs["excluded_extended_hours"] = 0
        return bars
