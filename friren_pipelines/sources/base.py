"""The one interface every market-data source implements, and the errors they raise."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Protocol

import pandas as pd

from friren_pipelines.core.bars import Timeframe, empty_bars, outside_session


class SourceError(RuntimeError):
    """A source could not deliver bars; the message names the source, symbol and range."""


class UnknownSymbolError(SourceError):
    """The source does not know the symbol (no file, 404, empty chart with an error body)."""


class SourceUnavailableError(SourceError):
    """Timeouts, connection failures, HTTP 5xx / 429 after retries: worth retrying later."""


class SourceDataError(SourceError):
    """The source answered with something that is not bars (malformed body, bad CSV)."""


class BarSource(Protocol):
    """Delivers bars for many symbols at once, so a backfill reads the source in bulk.

    `fetch_bars` returns one frame in the `core.bars` layout (see `core.bars.conform`) holding
    the regular-session bars of every symbol whose session date lies in [start, end] (both
    inclusive, New York dates). Extended-hours bars are excluded and counted in
    `excluded_extended_hours` of the returned frame's `attrs`. A symbol with no bars in the
    range is simply absent from the frame (the caller decides whether that is an error).
    """

    name: str

    def fetch_bars(
        self, symbols: Sequence[str], timeframe: Timeframe, start: dt.date, end: dt.date
    ) -> pd.DataFrame: ...


def in_regular_session(
    frames: Iterable[pd.DataFrame], timeframe: Timeframe, start: dt.date, end: dt.date
) -> pd.DataFrame:
    """Conformed bars of many symbols cut to the `BarSource` contract.

    Keeps the bars whose session date lies in [start, end]; of intraday bars keeps those that
    start inside the regular session (open inclusive, close exclusive, early closes honoured) and
    counts the others, extended hours and non-session days alike, in
    `attrs["excluded_extended_hours"]`. Sorted by (symbol, timestamp).
    """
    parts = [frame for frame in frames if len(frame)]
    bars = pd.concat(parts, ignore_index=True) if parts else empty_bars()
    bars = bars[(bars["session_date"] >= start) & (bars["session_date"] <= end)]
    excluded = 0
    if timeframe.is_intraday and len(bars):
        outside = outside_session(bars, timeframe)
        excluded = int(outside.sum())
        bars = bars[~outside]
    bars = bars.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)
    bars.attrs["excluded_extended_hours"] = excluded
    return bars
