"""The one interface every market-data source implements, and the errors they raise."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

import pandas as pd

from friren_pipelines.core.bars import Timeframe


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
