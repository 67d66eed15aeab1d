"""TA-Lib over each written symbol's history, gathered into the run's one wide frame."""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.core.indicators import INDICATOR_NAMES, indicators_for_window, to_wide
from friren_pipelines.market_data.indicators.history import SymbolHistory
from friren_pipelines.market_data.indicators.repair import IndicatorWrite


@dataclass
class ComputedIndicators:
    """The wide values of every written partition, concatenated in `writes` order."""

    writes: list[IndicatorWrite]
    wide: pd.DataFrame
    offsets: list[int]  # start row of each write in `wide`
    compute_seconds: float
    frame_seconds: float

    def rows_of(self, index: int) -> slice:
        return slice(self.offsets[index], self.offsets[index + 1])


def compute_writes(
    timeframe: Timeframe, writes: Sequence[IndicatorWrite], histories: Mapping[str, SymbolHistory]
) -> ComputedIndicators:
    """One `indicators_for_window` call per symbol, over its history up to the last written bar,
    whose written rows are copied into the run's columns before the next symbol's call.

    Copying at once frees each call's TA-Lib outputs for the next call to reuse, still in cache,
    as when calling TA-Lib alone; keeping every symbol's outputs to the end costs a fresh page
    (a page fault) for each, up to TA-Lib's own time again on minute histories.
    `compute_seconds` times the calls alone; `frame_seconds` the copies and the wide frame."""
    by_symbol: dict[str, list[IndicatorWrite]] = {}
    for write in writes:
        by_symbol.setdefault(write.partition.symbol, []).append(write)
    ordered = [write for chosen in by_symbol.values() for write in chosen]
    sizes = [write.rows[1] - write.rows[0] for write in ordered]
    offsets = np.cumsum([0, *sizes]).tolist()
    closes = {symbol: histories[symbol].close for symbol in by_symbol}
    columns = {name: np.empty(offsets[-1]) for name in INDICATOR_NAMES}
    stamps = []
    compute_seconds = 0.0
    started = time.perf_counter()
    row = 0
    for symbol, chosen in by_symbol.items():
        first = min(w.rows[0] for w in chosen)
        last = max(w.rows[1] for w in chosen)
        called = time.perf_counter()
        values = indicators_for_window(closes[symbol][:last], first)
        compute_seconds += time.perf_counter() - called
        all_stamps = histories[symbol].bars.column("timestamp").to_numpy()
        for write in chosen:
            start, end = write.rows
            for name in INDICATOR_NAMES:
                columns[name][row : row + end - start] = values[name][start - first : end - first]
            stamps.append(all_stamps[start:end])
            row += end - start
        del values  # before the next call, which can then reuse its memory
    code = {symbol: i for i, symbol in enumerate(by_symbol)}
    wide = to_wide(
        pd.Categorical.from_codes(
            np.repeat([code[w.partition.symbol] for w in ordered], sizes),
            categories=pd.Index(list(by_symbol)),
        ),
        pd.DatetimeIndex(
            np.concatenate(stamps) if stamps else np.empty(0, "datetime64[us]")
        ).tz_localize("UTC"),
        columns,
    )
    return ComputedIndicators(
        ordered,
        wide,
        offsets,
        compute_seconds=compute_seconds,
        frame_seconds=time.perf_counter() - started - compute_seconds,
    )
