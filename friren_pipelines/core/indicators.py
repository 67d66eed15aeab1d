"""Technical indicators of one symbol's closes: the one definition of their names, parameters,
warm-up, conventions and look-back, computed with TA-Lib.

Conventions are TA-Lib's (default compatibility mode, no unstable period):

- ``rsi_14``, ``rsi_9``: Wilder's RSI in points (0-100). The first average gain and loss are the
  simple means of the first n close-to-close changes; afterwards avg_t = (avg_{t-1}·(n-1) + x_t)/n.
- ``sma_10`` .. ``sma_200``: arithmetic mean of the last n closes, in price units.
- ``ema_10`` .. ``ema_50``: exponential average with α = 2/(n+1), seeded with the SMA of the first
  n closes (not with the first close, as Metastock and pandas ``ewm(adjust=False)`` do).
- ``macd``, ``macd_signal``, ``macd_hist``: ``talib.MACD(12, 26, 9)``, in price units. This is
  not EMA12 − EMA26 from the first bar: TA-Lib starts both EMAs at bar 25, so the fast EMA is
  seeded with the SMA of closes 14..25; the signal is the EMA9 of the MACD line seeded with the
  SMA of its first 9 values, and all three start at bar 33.
- ``bb_upper``, ``bb_middle``, ``bb_lower``: Bollinger(20, 2): middle = SMA20, upper/lower =
  middle ± 2 × the population standard deviation (divide by n, not n − 1) of the same 20 closes.

Published references (tested in friren_pipelines_tests/core/test_indicators.py): StockCharts'
RSI(14) table agrees within 5e-8, its EMA(10) to all 5 printed decimals, its SMA(10) to the
cents it prints, its Bollinger bands within 1e-6 (population deviation; the sample one is ~2.6%
wider). The `ta` library's worked sheets use other seeds: cs-rsi starts the Wilder averages at 0
on the first bar (first RSI 71.86 instead of 70.53) and cs-macd seeds its EMAs with the first
close; their gap to TA-Lib decays by (1 − α) per bar (cs-macd: < 5e-4 after 100 bars).

Warm-up: ``WARMUP_BARS[name]`` is TA-Lib's lookback, the number of leading bars of a symbol's
history that have no value. Those are NaN in arrays and NULL (``<NA>``) in frames, never a made-up
number; every later bar has a value. Warm-up rows are kept, not omitted: the wide frame has one
row per bar (and the long SQL view one per bar and indicator), so a missing row always means a bug.

Look-back policy: every value is TA-Lib run over the symbol's stored history from its first bar.
EMA, RSI and MACD remember their seed, so a value depends on every earlier close; SMA and
Bollinger depend on the start only through the rounding of TA-Lib's running sums. TA-Lib is causal: the
value at bar t reads closes 0..t and comes from the same floating-point operations whatever
follows. So `indicators_for_window` runs TA-Lib over the history up to the window's last bar and
keeps the window's rows, which is bit-identical to running it over the entire history, at every
window boundary, whatever the chunking or order of a backfill. The alternatives were rejected:
carrying state between partitions needs re-implementing the recursions (TA-Lib takes no seed
state); truncating the look-back to a convergence horizon (≈570 bars for EMA50 at 1e-10) keeps
prices within tolerance but not ``macd_hist`` near its zero crossings, where relative error is
unbounded.

Cost (measured in CPU time, best of 30 interleaved passes on the 2-CPU dev box): the 15 outputs
from 11 ``talib.*`` calls take 27.5 ms for 500 symbols × 502 daily closes (per-call overhead
dominates such short series) and 20 ms for 50 symbols × 8,790 minute closes; `compute_indicators`
over the same arrays takes 22 ms (0.8×) and 19.4 ms (0.97×). It makes 10 calls (``sma_20`` is
BBANDS' middle band) to the Cython functions under talib's pandas adaptor; the same 11 calls
without the adaptor take 18.4 and 19 ms, so the core's own overhead is 1.2× and 1.02× of that
floor. Whoever calls it for many symbols should copy out what it keeps and drop the rest before
the next call: holding every symbol's outputs doubled the minute case (a fresh page, hence a page
fault, for each). A window costs as much as its whole history prefix: one 390-bar session over
two years of minute history (196,560 closes) takes 21 ms per symbol, mostly page faults on 15
fresh 1.5 MB outputs. So a run covering several partitions should make one call whose window
spans them all; materializing k partitions one by one costs about k/2 passes. Building frames
costs more than computing: call `to_wide` once for all symbols of a run (per-bar symbols, best
as a categorical) rather than once per symbol (≈1 ms each).
"""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import talib
from talib import abstract

from friren_pipelines.core import calendar


@dataclass(frozen=True)
class _Study:
    """One TA-Lib call: its function name, parameters and the column names of its outputs."""

    function: str
    parameters: Mapping[str, Any]
    outputs: tuple[str, ...]


_STUDIES: tuple[_Study, ...] = (
    _Study("RSI", {"timeperiod": 14}, ("rsi_14",)),
    _Study("RSI", {"timeperiod": 9}, ("rsi_9",)),
    _Study("SMA", {"timeperiod": 10}, ("sma_10",)),
    _Study("SMA", {"timeperiod": 20}, ("sma_20",)),
    _Study("SMA", {"timeperiod": 50}, ("sma_50",)),
    _Study("SMA", {"timeperiod": 200}, ("sma_200",)),
    _Study("EMA", {"timeperiod": 10}, ("ema_10",)),
    _Study("EMA", {"timeperiod": 20}, ("ema_20",)),
    _Study("EMA", {"timeperiod": 50}, ("ema_50",)),
    _Study(
        "MACD",
        {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9},
        ("macd", "macd_signal", "macd_hist"),
    ),
    _Study(
        "BBANDS",
        {"timeperiod": 20, "nbdevup": 2.0, "nbdevdn": 2.0, "matype": talib.MA_Type.SMA},
        ("bb_upper", "bb_middle", "bb_lower"),
    ),
)

INDICATOR_NAMES: tuple[str, ...] = tuple(name for study in _STUDIES for name in study.outputs)

# Leading bars of a symbol's history without a value (TA-Lib's lookback), per indicator.
# (talib's abstract.pyi stub omits the documented `Function` factory.)
WARMUP_BARS: Mapping[str, int] = {
    name: abstract.Function(study.function, **study.parameters).lookback  # type: ignore[attr-defined]
    for study in _STUDIES
    for name in study.outputs
}

RSI_NAMES = ("rsi_14", "rsi_9")
BOLLINGER_NAMES = ("bb_lower", "bb_middle", "bb_upper")  # must be non-decreasing in this order
WIDE_COLUMNS = ("symbol", "timestamp", *INDICATOR_NAMES)

# TA-Lib's BBANDS with an SMA middle band returns TA_SMA's own output as that band, bit for bit
# (tested on every reference series): one call serves both names.
_SAME_VALUES: Mapping[str, str] = {"sma_20": "bb_middle"}


def _bare(function: Any) -> Any:
    """The Cython function under talib's pandas/polars adaptor, which passes ndarrays through
    unchanged but costs ~1.3 µs per call: a third of TA-Lib's time on 500 daily closes."""
    return getattr(function, "__wrapped__", function)


# The studies that need a call of their own, as ready-made positional calls (function, arguments,
# whether it has one output): this loop runs once per symbol and partition, where a microsecond
# is 2% of TA-Lib's time on daily histories.
_CALLED = tuple(study for study in _STUDIES if not set(study.outputs) <= _SAME_VALUES.keys())
_CALLS = tuple(
    (
        _bare(getattr(talib, study.function)),
        tuple(study.parameters.values()),
        len(study.outputs) == 1,
    )
    for study in _CALLED
)
# Picks `INDICATOR_NAMES`, in order, from the calls' outputs listed in call order.
_CALL_OUTPUTS = tuple(name for study in _CALLED for name in study.outputs)
_IN_NAME_ORDER = operator.itemgetter(
    *(_CALL_OUTPUTS.index(_SAME_VALUES.get(name, name)) for name in INDICATOR_NAMES)
)


def _as_closes(close: np.ndarray) -> np.ndarray:
    closes = np.ascontiguousarray(close, dtype=np.float64)
    if closes.ndim != 1:
        raise ValueError(f"closes must be one-dimensional, got shape {closes.shape}")
    # A NaN or infinity anywhere makes the sum non-finite: one cheap pass in the common case.
    if math.isfinite(closes.sum()):
        return closes
    finite = np.isfinite(closes)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"closes hold {bad.size} non-finite values (first at row {bad[0]}: {closes[bad[0]]}); "
            "bars with a null price must be rejected before indicators are computed"
        )
    return closes


def compute_indicators(close: np.ndarray) -> dict[str, np.ndarray]:
    """Every indicator of `INDICATOR_NAMES` over a whole close history (oldest first).

    Returns float64 arrays as long as `close`, NaN for the first `WARMUP_BARS[name]` bars (all
    NaN when the history is shorter); ``sma_20`` and ``bb_middle`` are one array. Raises
    ValueError for a non-finite close or a 2-D input.
    """
    closes = _as_closes(close)
    outputs: list[np.ndarray] = []
    for function, arguments, single in _CALLS:
        if single:
            outputs.append(function(closes, *arguments))
        else:
            outputs.extend(function(closes, *arguments))
    return dict(zip(INDICATOR_NAMES, _IN_NAME_ORDER(outputs), strict=True))


def indicators_for_window(history_close: np.ndarray, first_index: int) -> dict[str, np.ndarray]:
    """Indicator values for the bars ``history_close[first_index:]`` of one symbol.

    `history_close` is the symbol's stored closes from its first bar up to the window's last bar;
    `first_index` is the position of the window's first bar in it. The result (arrays of length
    ``len(history_close) - first_index``, views into the whole-history ones: copy what you keep)
    is bit-identical to `compute_indicators` over the entire history, later bars included: see
    the look-back policy in the module docstring.
    """
    size = len(history_close)
    if not 0 <= first_index <= size:
        raise ValueError(
            f"window start {first_index} is outside the close history of {size} bars "
            f"(expected 0..{size})"
        )
    values = compute_indicators(history_close)
    if first_index == 0:
        return values
    return {name: array[first_index:] for name, array in values.items()}


def _utc_timestamps(timestamps: pd.DatetimeIndex | pd.Series | np.ndarray) -> pd.DatetimeIndex:
    stamps = pd.DatetimeIndex(timestamps)
    if stamps.tz is None:
        raise ValueError("indicator timestamps must be tz-aware bar starts (UTC), got naive ones")
    return stamps.tz_convert("UTC").as_unit("us")


def _checked_values(values: Mapping[str, np.ndarray], rows: int) -> list[np.ndarray]:
    missing = [name for name in INDICATOR_NAMES if name not in values]
    if missing:
        raise ValueError(f"indicator values lack {', '.join(missing)}")
    arrays = [np.asarray(values[name], dtype=np.float64) for name in INDICATOR_NAMES]
    wrong = [
        f"{n}: {a.shape}"
        for n, a in zip(INDICATOR_NAMES, arrays, strict=True)
        if a.shape != (rows,)
    ]
    if wrong:
        raise ValueError(f"indicator values must have one value per timestamp ({rows}): {wrong}")
    return arrays


Symbols: TypeAlias = "str | Sequence[str] | np.ndarray | pd.Series | pd.Categorical[str]"
"""A ticker for every row, or one ticker per bar (several symbols in one frame); a categorical
is used as it is, which spares factorizing one string per bar."""


def _symbol_codes(symbol: Symbols, bars: int) -> pd.Categorical[str]:
    """The symbol column for `bars` bars as a categorical (cheap for many rows of few symbols)."""
    if isinstance(symbol, str):
        return pd.Categorical.from_codes(
            np.zeros(bars, dtype=np.int8), categories=pd.Index([symbol])
        )
    given = symbol.array if isinstance(symbol, pd.Series) else symbol
    per_bar: pd.Categorical[str] = (
        given
        if isinstance(given, pd.Categorical)
        else pd.Categorical(np.asarray(given, dtype=object))
    )
    if len(per_bar) != bars:
        raise ValueError(f"got {len(per_bar)} symbols for {bars} timestamps; expected one per bar")
    return per_bar


def to_wide(
    symbol: Symbols,
    timestamps: pd.DatetimeIndex | pd.Series | np.ndarray,
    values: Mapping[str, np.ndarray],
) -> pd.DataFrame:
    """One row per bar: symbol, timestamp (UTC bar start, µs), then `INDICATOR_NAMES`.

    Indicator columns are nullable ``Float64``: warm-up NaN becomes ``<NA>``, which Arrow,
    Parquet, DuckDB and Postgres writers store as NULL. ``symbol`` is categorical. Building one
    frame for many symbols (per-bar `symbol`, concatenated values) costs far less than one frame
    per symbol when histories are short (≈1 ms of pandas overhead per frame).
    """
    stamps = _utc_timestamps(timestamps)
    arrays = _checked_values(values, len(stamps))
    columns: dict[str, Any] = {"symbol": _symbol_codes(symbol, len(stamps)), "timestamp": stamps}
    for name, array in zip(INDICATOR_NAMES, arrays, strict=True):
        columns[name] = pd.array(array, dtype="Float64")
    return pd.DataFrame(columns, copy=False)  # every column is already the frame's own


class IndicatorRule(enum.StrEnum):
    """What the indicator checks refuse; values read as "indicators for X: 3 <rule>"."""

    RSI_OUT_OF_RANGE = "RSI values outside [0, 100]"
    BANDS_OUT_OF_ORDER = "Bollinger bands out of order (bb_lower <= bb_middle <= bb_upper)"
    NULL_AFTER_WARMUP = "NULL values after warm-up"
    VALUE_BEFORE_WARMUP = "values before warm-up"
    MISSING_ROW = "bars without an indicator row"
    ROW_WITHOUT_BAR = "indicator rows without a bar"
    DUPLICATE_ROW = "duplicate indicator rows"


@dataclass(frozen=True)
class IndicatorIssue:
    """One rule broken by some indicator rows of one symbol: how often, and the first one."""

    rule: IndicatorRule
    symbol: str
    count: int
    timestamp: pd.Timestamp
    indicator: str | None
    value: float | None

    def __str__(self) -> str:
        when = self.timestamp.tz_convert(calendar.NEW_YORK).strftime("%Y-%m-%d %H:%M %Z")
        what = ""
        if self.indicator is not None:
            shown = "NULL" if self.value is None else f"{self.value:g}"
            what = f"{self.indicator}={shown} "
        return f"indicators for {self.symbol}: {self.count} {self.rule} (first {what}at {when})"


def _first_issues(
    rule: IndicatorRule, frame: pd.DataFrame, hits: np.ndarray, indicator: str | None
) -> list[IndicatorIssue]:
    """One issue per symbol among `frame` rows where `hits` (frame sorted by symbol, timestamp)."""
    if not hits.any():
        return []
    chosen = frame[hits]
    issues = []
    for symbol, rows in chosen.groupby("symbol", sort=True):
        first = rows.iloc[0]
        value = None if indicator is None or pd.isna(first[indicator]) else float(first[indicator])
        issues.append(
            IndicatorIssue(rule, str(symbol), len(rows), first["timestamp"], indicator, value)
        )
    return issues


def validate_indicators(
    wide: pd.DataFrame, bars: pd.DataFrame, bars_before: Mapping[str, int]
) -> list[IndicatorIssue]:
    """Every `IndicatorRule` broken by a wide indicator frame, per symbol and indicator.

    `wide` has `WIDE_COLUMNS` (one or several symbols); `bars` has the symbol and timestamp of
    the bars it should cover, one row each; ``bars_before[symbol]`` is how many stored bars of
    that symbol precede them, which places each bar against `WARMUP_BARS`.
    """
    unknown = sorted(set(bars["symbol"]) - set(bars_before))
    if unknown:
        raise ValueError(f"bars_before lacks the history length of {', '.join(unknown)}")
    keys = ["symbol", "timestamp"]
    ordered_bars = bars.loc[:, keys].sort_values(keys, kind="stable").reset_index(drop=True)
    ordered_bars["bar_number"] = ordered_bars.groupby("symbol").cumcount() + ordered_bars[
        "symbol"
    ].map(bars_before)
    rows = (
        wide.loc[:, list(WIDE_COLUMNS)]
        .sort_values(keys, kind="stable")
        .reset_index(drop=True)
        .merge(ordered_bars, on=keys, how="outer", indicator="_side", sort=True)
    )
    issues: list[IndicatorIssue] = []
    side = rows["_side"].to_numpy()
    issues += _first_issues(IndicatorRule.MISSING_ROW, rows, side == "right_only", None)
    issues += _first_issues(IndicatorRule.ROW_WITHOUT_BAR, rows, side == "left_only", None)
    duplicated = rows.duplicated(keys, keep="first").to_numpy() & (side != "right_only")
    issues += _first_issues(IndicatorRule.DUPLICATE_ROW, rows, duplicated, None)

    matched = rows[side == "both"].reset_index(drop=True)
    numbers = matched["bar_number"].to_numpy()
    value = {
        name: matched[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in INDICATOR_NAMES
    }
    for name in RSI_NAMES:
        issues += _first_issues(
            IndicatorRule.RSI_OUT_OF_RANGE, matched, (value[name] < 0) | (value[name] > 100), name
        )
    lower, middle, upper = (value[name] for name in BOLLINGER_NAMES)
    issues += _first_issues(IndicatorRule.BANDS_OUT_OF_ORDER, matched, lower > middle, "bb_lower")
    issues += _first_issues(IndicatorRule.BANDS_OUT_OF_ORDER, matched, middle > upper, "bb_upper")
    for name in INDICATOR_NAMES:
        null = np.isnan(value[name])
        after_warmup = numbers >= WARMUP_BARS[name]
        issues += _first_issues(IndicatorRule.NULL_AFTER_WARMUP, matched, null & after_warmup, name)
        issues += _first_issues(
            IndicatorRule.VALUE_BEFORE_WARMUP, matched, ~null & ~after_warmup, name
        )
    return issues
