"""A deterministic, offline source of realistic bars: the embedded default.

Every number is a pure function of (symbol, session): each symbol's daily path is drawn from a
generator seeded by the symbol and always walked from the calendar's first session, so any range,
chunking or order of requests yields the same bars. Properties a consumer can rely on:
- bars only inside XNYS sessions, early closes included (fewer minute bars that day);
- OHLC consistent (low ≤ open, close ≤ high), prices in cents, volume in whole shares;
- intraday volume is U-shaped; minute paths run from the day's open to its close and stay inside
  the day's range; 5-minute bars are aggregates of the 1-minute bars;
- occasional splits (2:1, 3:1 or 4:1, about one per symbol per eight years): prices are **raw**,
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


def _seed(*parts: object) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


@lru_cache(maxsize=1)
def _all_sessions() -> pd.DatetimeIndex:
    table = calendar.session_table(calendar.CALENDAR_START, calendar.calendar_end())
    return pd.DatetimeIndex(table.index)


@lru_cache(maxsize=4096)
def _daily_path(symbol: str) -> pd.DataFrame:
    """The symbol's whole daily history (raw prices), indexed by session."""
    sessions = _all_sessions()
    n = len(sessions)
    rng = np.random.default_rng(_seed("daily", symbol))
    level = float(rng.uniform(20, 300))
    volatility = float(rng.uniform(0.01, 0.025))
    base_volume = float(rng.uniform(2e5, 5e7))
    split_ratio = int(rng.choice(SPLIT_RATIOS))
    shocks = rng.normal(0, volatility, n)
    gaps = rng.normal(0, volatility / 3, n)
    wicks = np.abs(rng.normal(0, volatility / 2, (2, n)))
    volume_noise = rng.lognormal(0, 0.25, n)

    # Log price: an AR(1) around a rising trend, x_t = phi * x_(t-1) + u_t, in closed form.
    phi = 1 - REVERSION_PER_SESSION
    t = np.arange(n)
    trend = np.log(level) + TREND_PER_SESSION * t
    innovations = REVERSION_PER_SESSION * trend + shocks
    innovations[0] = 0.0
    deviation_free = phi**t * (np.log(level) + np.cumsum(innovations * phi ** (-t.astype(float))))
    adjusted_close = np.exp(deviation_free)
    # Splits never reverse: count them from the running maximum of the adjusted price.
    peak = np.maximum.accumulate(adjusted_close)
    threshold = SPLIT_AT_MULTIPLE * level
    splits = np.maximum(0, np.floor(np.log(peak / threshold) / np.log(split_ratio)) + 1)
    cumulative_split = float(split_ratio) ** splits
    close = adjusted_close / cumulative_split
    # The open gaps from yesterday's close, on today's share count (the split day drops at the open).
    previous_close = np.concatenate([[level], adjusted_close[:-1]]) / cumulative_split
    open_ = np.maximum(np.round(previous_close * np.exp(gaps), 2), 0.01)
    close = np.maximum(np.round(close, 2), 0.01)
    high = np.round(np.maximum(open_, close) * np.exp(wicks[0]), 2)
    low = np.maximum(np.round(np.minimum(open_, close) * np.exp(-wicks[1]), 2), 0.01)
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))
    volume = np.round(base_volume * cumulative_split * volume_noise)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=sessions,
    )


def _daily_bars(symbols: Sequence[str], start: dt.date, end: dt.date) -> pd.DataFrame:
    """Daily bars of many symbols, assembled from the cached paths with numpy slices."""
    sessions = _all_sessions()
    first, last = (
        sessions.searchsorted(pd.Timestamp(start)),
        sessions.searchsorted(pd.Timestamp(end), side="right"),
    )
    chosen = sessions[first:last]
    columns: dict[str, list[np.ndarray]] = {
        c: [] for c in ("open", "high", "low", "close", "volume")
    }
    for symbol in symbols:
        path = _daily_path(symbol)
        for column, parts in columns.items():
            parts.append(path[column].to_numpy()[first:last])
    raw = pd.DataFrame({column: np.concatenate(parts) for column, parts in columns.items()})
    raw["symbol"] = np.repeat(np.asarray(symbols, dtype=object), len(chosen))
    midnights = chosen.tz_localize(calendar.NEW_YORK).as_unit("us").asi8
    raw["timestamp"] = pd.to_datetime(np.tile(midnights, len(symbols)), unit="us", utc=True)
    raw["vwap"] = np.round((raw["high"] + raw["low"] + raw["close"]) / 3, 4)
    raw["trade_count"] = np.maximum(np.round(raw["volume"] / 120), 1).astype("int64")
    return raw


def _minute_bars(symbol: str, session: pd.Timestamp, day: pd.Series) -> pd.DataFrame:
    """One session's 1-minute bars: a bridge from the day's open to its close inside its range."""
    starts = calendar.bar_starts(session.date(), 1)
    n = len(starts)
    rng = np.random.default_rng(_seed("minute", symbol, session.date().isoformat()))
    steps = rng.normal(0, 1, n)
    walk = np.concatenate([[0.0], np.cumsum(steps)])
    bridge = walk - np.linspace(0, walk[-1], n + 1)
    line = np.linspace(day["open"], day["close"], n + 1)
    room_up = day["high"] - line
    room_down = line - day["low"]
    scale = min(
        float(np.min(np.where(bridge > 0, room_up / np.maximum(bridge, 1e-12), np.inf))),
        float(np.min(np.where(bridge < 0, room_down / np.maximum(-bridge, 1e-12), np.inf))),
    )
    path = np.round(line + bridge * min(scale, day["close"] * 0.002 * np.sqrt(n)) * 0.95, 2)
    path = np.clip(path, day["low"], day["high"])
    path[0], path[-1] = day["open"], day["close"]
    opens, closes = path[:-1], path[1:]
    wick = np.abs(rng.normal(0, day["close"] * 0.0004, (2, n)))
    highs = np.minimum(np.round(np.maximum(opens, closes) + wick[0], 2), day["high"])
    lows = np.maximum(np.round(np.minimum(opens, closes) - wick[1], 2), day["low"])
    position = np.linspace(-1, 1, n)
    shape = 1 + 2.5 * position**2  # U-shaped: busy open and close, quiet lunch
    weights = shape * rng.lognormal(0, 0.2, n)
    volume = np.floor(day["volume"] * weights / weights.sum())
    typical = (highs + lows + closes) / 3
    return pd.DataFrame(
        {
            "timestamp": starts,
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "volume": volume,
            "vwap": np.round(typical, 4),
            "trade_count": np.maximum(np.round(volume / 120), 1).astype("int64"),
        }
    )


class SyntheticBarSource:
    name = "synthetic"

    def fetch_bars(
        self, symbols: Sequence[str], timeframe: Timeframe, start: dt.date, end: dt.date
    ) -> pd.DataFrame:
        if timeframe == Timeframe.DAY1:
            raw = _daily_bars(symbols, start, end)
            bars = (
                empty_bars()
                if raw.empty
                else conform(raw, timeframe=timeframe, adjustment="raw", source=self.name)
            )
        else:
            frames = []
            for symbol in symbols:
                daily = _daily_path(symbol).loc[pd.Timestamp(start) : pd.Timestamp(end)]
                sessions = [
                    _minute_bars(symbol, ts, daily.iloc[i])
                    for i, ts in enumerate(pd.DatetimeIndex(daily.index))
                ]
                if not sessions:
                    continue
                minutes = conform(
                    pd.concat(sessions, ignore_index=True),
                    symbol=symbol,
                    timeframe=Timeframe.MIN1,
                    adjustment="raw",
                    source=self.name,
                )
                if timeframe == Timeframe.MIN5:
                    minutes = resample_to_5min(minutes)
                    minutes["vwap"] = minutes["vwap"].round(4)
                frames.append(minutes)
            bars = pd.concat(frames, ignore_index=True) if frames else empty_bars()
        bars.attrs["excluded_extended_hours"] = 0
        return bars
