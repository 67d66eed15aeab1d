"""Indicators equal TA-Lib over a symbol's entire history, whatever the partition windows, and
agree with published references wherever their conventions allow (differences proved below).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from friren_pipelines.core.indicators import (
    INDICATOR_NAMES,
    WARMUP_BARS,
    WIDE_COLUMNS,
    IndicatorRule,
    compute_indicators,
    indicators_for_window,
    to_wide,
    validate_indicators,
)

DAILY_FILES = {
    "AAPL": "AAPL_1d_2004-08-19_2018-01-19_yahoo.csv",
    "GOOG": "GOOG_1d_2004-08-19_2018-01-19_yahoo.csv",
    "INTC": "INTC_1d_1995-01-03_2004-04-08_yahoo.csv",
    "NVDA": "NVDA_1d_1999-01-22_2014-12-31_yahoo.csv",
    "SPY": "SPY_1d_2007-12-31_2017-12-29_yahoo.csv",
    "YHOO": "YHOO_1d_1996-04-12_2015-12-31_yahoo.csv",
}
MINUTE_FILES = {
    "AAPL": "AAPL_1min_2021-08-23_2021-08-25_yfinance.csv",
    "MSFT": "MSFT_1min_2021-08-23_2021-08-25_yfinance.csv",
    "AMZN": "AMZN_1min_2020-12-31_2021-01-08_alpaca-format_utc.csv",
    "SPY": "SPY_1min_2011-01_ninjatrader_utc.csv",
}


def daily_bars(shared_data: Path, symbol: str) -> pd.DataFrame:
    """timestamp (UTC, New York midnight of the session) and close of a Yahoo daily file."""
    table = pd.read_csv(shared_data / "daily" / DAILY_FILES[symbol], usecols=["Date", "Close"])
    stamps = pd.to_datetime(table["Date"]).dt.tz_localize("America/New_York").dt.tz_convert("UTC")
    return pd.DataFrame({"timestamp": stamps, "close": table["Close"].astype("float64")})


def minute_bars(shared_data: Path, symbol: str) -> pd.DataFrame:
    """timestamp (UTC) and close of a 1-minute file, in file order (oldest first)."""
    path = shared_data / "intraday" / MINUTE_FILES[symbol]
    if symbol == "SPY":  # NinjaTrader export: no header, `yyyyMMdd HHmmss;o;h;l;c;v`, UTC
        table = pd.read_csv(path, sep=";", header=None, names=["t", "o", "h", "l", "close", "v"])
        stamps = pd.to_datetime(table["t"], format="%Y%m%d %H%M%S").dt.tz_localize("UTC")
    else:
        table = pd.read_csv(path).rename(columns=str.lower)
        stamps = pd.to_datetime(table["datetime" if "datetime" in table else "timestamp"], utc=True)
    return pd.DataFrame({"timestamp": stamps, "close": table["close"].astype("float64")})


def talib_reference(close: np.ndarray) -> dict[str, np.ndarray]:
    """The issue's definition, written out independently of the module's study table."""
    macd, signal, hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    upper, middle, lower = talib.BBANDS(
        close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=talib.MA_Type.SMA
    )
    return {
        "rsi_14": talib.RSI(close, 14),
        "rsi_9": talib.RSI(close, 9),
        "sma_10": talib.SMA(close, 10),
        "sma_20": talib.SMA(close, 20),
        "sma_50": talib.SMA(close, 50),
        "sma_200": talib.SMA(close, 200),
        "ema_10": talib.EMA(close, 10),
        "ema_20": talib.EMA(close, 20),
        "ema_50": talib.EMA(close, 50),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
    }


def backfill(close: np.ndarray, windows: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Run `indicators_for_window` once per (start, stop) window, in the given order, each seeing
    the stored history up to its own last bar, and stitch the results; unset values stay inf."""
    stitched = {name: np.full(len(close), np.inf) for name in INDICATOR_NAMES}
    for start, stop in windows:
        for name, values in indicators_for_window(close[:stop], start).items():
            assert len(values) == stop - start
            stitched[name][start:stop] = values
    return stitched


def windows_at(boundaries: np.ndarray, size: int) -> list[tuple[int, int]]:
    edges = [0, *sorted({int(b) for b in boundaries} - {0, size}), size]
    return list(itertools.pairwise(edges))


def assert_same_as_full_history(stitched: dict[str, np.ndarray], close: np.ndarray) -> None:
    """Bit-identical to TA-Lib over the whole series (which implies relative error ≤ 1e-9)."""
    full = talib_reference(close)
    for name in INDICATOR_NAMES:
        np.testing.assert_array_equal(stitched[name], full[name], err_msg=name, strict=True)


def test_indicator_names_and_warmup_are_the_published_periods() -> None:
    assert INDICATOR_NAMES == (
        "rsi_14", "rsi_9", "sma_10", "sma_20", "sma_50", "sma_200", "ema_10", "ema_20",
        "ema_50", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle", "bb_lower",
    )  # fmt: skip
    assert dict(WARMUP_BARS) == {
        "rsi_14": 14, "rsi_9": 9, "sma_10": 9, "sma_20": 19, "sma_50": 49, "sma_200": 199,
        "ema_10": 9, "ema_20": 19, "ema_50": 49, "macd": 33, "macd_signal": 33, "macd_hist": 33,
        "bb_upper": 19, "bb_middle": 19, "bb_lower": 19,
    }  # fmt: skip
    assert ("symbol", "timestamp", *INDICATOR_NAMES) == WIDE_COLUMNS


@pytest.mark.parametrize("symbol", sorted(DAILY_FILES))
def test_whole_history_equals_talib_with_null_warmup_then_never_null(
    shared_data: Path, symbol: str
) -> None:
    close = daily_bars(shared_data, symbol)["close"].to_numpy()
    values = compute_indicators(close)
    assert list(values) == list(INDICATOR_NAMES)
    assert_same_as_full_history(values, close)
    for name, array in values.items():
        assert array.dtype == np.float64
        assert np.isnan(array[: WARMUP_BARS[name]]).all(), name
        assert np.isfinite(array[WARMUP_BARS[name] :]).all(), name


@pytest.mark.parametrize(
    ("bars", "symbol"),
    [(daily_bars, symbol) for symbol in sorted(DAILY_FILES)]
    + [(minute_bars, symbol) for symbol in sorted(MINUTE_FILES)],
)
def test_sma_20_is_the_bollinger_middle_band_which_is_talib_sma_20_bit_for_bit(
    shared_data: Path, bars: Callable[[Path, str], pd.DataFrame], symbol: str
) -> None:
    """One BBANDS call serves both names: its SMA middle band is TA_SMA's own output."""
    close = bars(shared_data, symbol)["close"].to_numpy()
    middle = talib.BBANDS(close, 20, 2.0, 2.0, talib.MA_Type.SMA)[1]
    assert middle.tobytes() == talib.SMA(close, 20).tobytes()
    values = compute_indicators(close)
    assert values["sma_20"].tobytes() == middle.tobytes()


def _yearly(frame: pd.DataFrame) -> np.ndarray:
    years = frame["timestamp"].dt.tz_convert("America/New_York").dt.year.to_numpy()
    return np.flatnonzero(np.diff(years)) + 1


def _monthly(frame: pd.DataFrame) -> np.ndarray:
    local = frame["timestamp"].dt.tz_convert("America/New_York")
    months = (local.dt.year * 12 + local.dt.month).to_numpy()
    return np.flatnonzero(np.diff(months)) + 1


def _random(frame: pd.DataFrame) -> np.ndarray:
    rng = np.random.default_rng(len(frame))  # deterministic per series
    # Include tiny windows and windows that start inside every warm-up (bars 1..210).
    return np.concatenate([[1, 2, 9, 14, 33, 34, 199, 210], rng.integers(1, len(frame), 40)])


@pytest.mark.parametrize("order", ["forward", "reverse", "shuffled"])
@pytest.mark.parametrize(
    "chunks", [_yearly, _monthly, _random], ids=["yearly", "monthly", "random"]
)
@pytest.mark.parametrize("symbol", ["AAPL", "INTC", "YHOO"])
def test_daily_backfill_in_chunks_in_any_order_equals_full_history_at_every_boundary(
    shared_data: Path, symbol: str, chunks: Callable[[pd.DataFrame], np.ndarray], order: str
) -> None:
    frame = daily_bars(shared_data, symbol)
    close = frame["close"].to_numpy()
    windows = windows_at(chunks(frame), len(close))
    assert len(windows) > 8
    if order == "reverse":
        windows.reverse()
    elif order == "shuffled":
        windows = [windows[i] for i in np.random.default_rng(7).permutation(len(windows))]
    assert_same_as_full_history(backfill(close, windows), close)


def _sessions(frame: pd.DataFrame) -> np.ndarray:
    days = frame["timestamp"].dt.tz_convert("America/New_York").dt.date.to_numpy()
    return np.flatnonzero(days[1:] != days[:-1]) + 1


@pytest.mark.parametrize("symbol", sorted(MINUTE_FILES))
def test_minute_backfill_session_by_session_in_reverse_equals_full_history(
    shared_data: Path, symbol: str
) -> None:
    frame = minute_bars(shared_data, symbol)
    close = frame["close"].to_numpy()
    sessions = windows_at(_sessions(frame), len(close))
    assert len(sessions) >= 3
    assert_same_as_full_history(backfill(close, sessions[::-1]), close)
    hourly = windows_at(np.arange(60, len(close), 60), len(close))
    assert_same_as_full_history(backfill(close, hourly[::-1]), close)


def test_window_inside_warmup_keeps_nulls_exactly_where_the_whole_history_has_them(
    shared_data: Path,
) -> None:
    close = daily_bars(shared_data, "GOOG")["close"].to_numpy()[:60]
    window = indicators_for_window(close, 5)
    for name, values in window.items():
        positions = np.arange(5, 60)
        np.testing.assert_array_equal(np.isnan(values), positions < WARMUP_BARS[name], name)


def test_history_shorter_than_warmup_is_all_null() -> None:
    values = compute_indicators(np.array([10.0, 10.5, 10.2]))
    assert all(np.isnan(array).all() and len(array) == 3 for array in values.values())


def test_window_of_no_bars_is_empty_and_a_start_past_the_history_is_refused() -> None:
    close = np.linspace(10.0, 20.0, 50)
    assert all(len(values) == 0 for values in indicators_for_window(close, 50).values())
    with pytest.raises(ValueError, match=r"window start 51 is outside the close history of 50"):
        indicators_for_window(close, 51)
    with pytest.raises(ValueError, match=r"window start -1"):
        indicators_for_window(close, -1)


def test_a_null_close_is_refused_with_its_row_instead_of_poisoning_every_later_ema() -> None:
    close = np.linspace(10.0, 20.0, 50)
    close[17] = np.nan
    with pytest.raises(ValueError, match=r"1 non-finite values \(first at row 17: nan\)"):
        compute_indicators(close)
    with pytest.raises(ValueError, match=r"one-dimensional"):
        compute_indicators(np.ones((3, 40)))


# --- published references (../shared/data/indicators, see PROVENANCE.md) -------------------


def reference(shared_data: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(shared_data / "indicators" / name)


def test_rsi_14_matches_stockcharts_wilder_example_from_pyalgotrade(shared_data: Path) -> None:
    # pyalgotrade's copy of StockCharts' RSI table (8 decimals): same convention as TA-Lib.
    table = reference(shared_data, "pyalgotrade_rsi-14.csv")
    rsi = compute_indicators(table["Input"].to_numpy(np.float64))["rsi_14"]
    expected = table["Expected"].to_numpy(np.float64)
    np.testing.assert_array_equal(np.isnan(rsi), np.isnan(expected))
    np.testing.assert_allclose(rsi[14:], expected[14:], rtol=0, atol=5e-8)


def test_rsi_differs_from_cs_rsi_only_by_its_zero_seeded_averages(shared_data: Path) -> None:
    """cs-rsi.csv (the `ta` library's copy) starts its Avg Gain/Loss at 0 on the first bar and
    Wilder-smooths from there, so its RSI differs from StockCharts'/TA-Lib's (71.86 vs 70.53 on
    the first value). Re-seeding its own Gain/Loss columns with the simple mean of the first 14
    changes, and smoothing them the same way, reproduces TA-Lib's RSI."""
    table = reference(shared_data, "cs-rsi.csv")
    rsi = compute_indicators(table["Close"].to_numpy(np.float64))["rsi_14"]
    assert rsi[14] == pytest.approx(70.532789, abs=1e-6)
    assert table["RSI"].iloc[14] == pytest.approx(71.862114, abs=1e-6)
    gain, loss = table["Gain"].to_numpy(np.float64), table["Loss"].to_numpy(np.float64)
    average_gain, average_loss = gain[1:15].mean(), loss[1:15].mean()
    reseeded = [100 * average_gain / (average_gain + average_loss)]
    for t in range(15, len(table)):
        average_gain = (average_gain * 13 + gain[t]) / 14
        average_loss = (average_loss * 13 + loss[t]) / 14
        reseeded.append(100 * average_gain / (average_gain + average_loss))
    np.testing.assert_allclose(rsi[14:], reseeded, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("reference_file", "indicator", "printed_decimals"),
    [
        # StockCharts' EMA table is seeded with the 10-bar SMA and printed to 5 decimals.
        ("pyalgotrade_sc-ema-10.csv", "ema_10", 5),
        # StockCharts prints its SMA table rounded to 2 decimals; TA-Lib's value rounds to it.
        ("pyalgotrade_sc-sma-10.csv", "sma_10", 2),
    ],
    ids=["ema_10-sma-seeded-five-decimals", "sma_10-rounded-to-cents"],
)
def test_10_bar_average_matches_stockcharts_example_to_its_printed_decimals(
    shared_data: Path, reference_file: str, indicator: str, printed_decimals: int
) -> None:
    table = reference(shared_data, reference_file)
    average = compute_indicators(table["Input"].to_numpy(np.float64))[indicator]
    expected = table["Expected"].to_numpy(np.float64)
    np.testing.assert_array_equal(np.isnan(average), np.isnan(expected))
    np.testing.assert_array_equal(np.round(average[9:], printed_decimals), expected[9:])


def test_sma_15_matches_ninjatrader_reference(shared_data: Path) -> None:
    table = reference(shared_data, "pyalgotrade_nt-sma-15.csv")
    sma = talib.SMA(table["Input"].to_numpy(np.float64), 15)  # not one of ours: checks TA-Lib
    expected = table["Expected"].to_numpy(np.float64)
    np.testing.assert_array_equal(np.isnan(sma), np.isnan(expected))
    np.testing.assert_allclose(sma[14:], expected[14:], rtol=1e-9, atol=0)


def test_bollinger_matches_stockcharts_with_population_standard_deviation(
    shared_data: Path,
) -> None:
    table = reference(shared_data, "cs-bbands.csv")
    close = table["Close"].to_numpy(np.float64)
    values = compute_indicators(close)
    for ours, theirs in [
        ("bb_upper", "HighBand"),
        ("bb_middle", "MiddleBand"),
        ("bb_lower", "LowBand"),
    ]:
        expected = table[theirs].to_numpy(np.float64)
        np.testing.assert_array_equal(np.isnan(values[ours]), np.isnan(expected), ours)
        np.testing.assert_allclose(values[ours][19:], expected[19:], rtol=0, atol=1e-6)
    # The published deviation is the population one (÷20); the sample one (÷19) is ~2.6% larger.
    published = table["20-day Standard Deviation"].to_numpy(np.float64)[19:]
    ours = ((values["bb_upper"] - values["bb_middle"]) / 2)[19:]
    np.testing.assert_allclose(ours, published, rtol=0, atol=1e-6)
    sample = pd.Series(close).rolling(20).std(ddof=1).to_numpy()[19:]
    assert np.abs(sample - published).min() > 0.02


def test_macd_differs_from_cs_macd_only_by_ema_seeds_whose_gap_decays_at_the_ema_rate(
    shared_data: Path,
) -> None:
    """cs-macd.csv seeds its EMAs with the first close (pandas ewm(adjust=False)); TA-Lib seeds
    EMA26 with the SMA of closes 0..25 and talib.MACD's fast EMA with the SMA of closes 14..25.
    Two EMAs of the same closes with the same α differ by d_t = (1 − α)·d_{t−1}, so if seeding is
    the only difference the gaps decay exactly geometrically (to the CSV's 10 digits), and the
    signal gap obeys the EMA9 recursion driven by the MACD gap."""
    table = reference(shared_data, "cs-macd.csv")
    close = table["Close"].to_numpy(np.float64)
    values = compute_indicators(close)
    slow = talib.EMA(close, 26)
    fast = values["macd"] + slow  # the fast EMA inside talib.MACD
    slow_gap = table["long_ema"].to_numpy(np.float64) - slow
    fast_gap = table["short_ema"].to_numpy(np.float64) - fast
    macd_gap = table["MACD_line"].to_numpy(np.float64) - values["macd"]
    signal_gap = table["MACD_signal"].to_numpy(np.float64) - values["macd_signal"]
    np.testing.assert_allclose(slow_gap[26:], slow_gap[25:-1] * 25 / 27, rtol=0, atol=2e-8)
    np.testing.assert_allclose(fast_gap[34:], fast_gap[33:-1] * 11 / 13, rtol=0, atol=2e-8)
    np.testing.assert_allclose(
        signal_gap[34:], 0.8 * signal_gap[33:-1] + 0.2 * macd_gap[34:], rtol=0, atol=2e-9
    )
    assert abs(macd_gap[33]) > 0.05  # the seeds matter at first ...
    assert np.abs(macd_gap[-20:]).max() < 5e-4  # ... and fade after ~100 bars
    np.testing.assert_allclose(
        values["macd_hist"][33:], (values["macd"] - values["macd_signal"])[33:], atol=1e-12
    )


# --- frames and checks --------------------------------------------------------------------


@pytest.fixture
def aapl_window(shared_data: Path) -> Iterator[tuple[pd.DataFrame, dict[str, np.ndarray]]]:
    """The first 300 AAPL daily bars and their indicators (the warm-up lies inside)."""
    frame = daily_bars(shared_data, "AAPL").iloc[:300]
    yield frame, compute_indicators(frame["close"].to_numpy())


def test_wide_frame_has_one_row_per_bar_for_one_or_several_symbols(
    aapl_window: tuple[pd.DataFrame, dict[str, np.ndarray]],
) -> None:
    frame, values = aapl_window
    wide = to_wide("AAPL", frame["timestamp"], values)
    assert tuple(wide.columns) == WIDE_COLUMNS
    assert len(wide) == 300 and wide["timestamp"].is_unique
    assert wide["rsi_14"].isna().sum() == WARMUP_BARS["rsi_14"]
    stamps = pd.DatetimeIndex(pd.concat([frame["timestamp"]] * 2))
    both = {name: np.concatenate([array, array]) for name, array in values.items()}
    symbols = np.repeat(["AAPL", "MSFT"], 300)
    two = to_wide(symbols, stamps, both)
    assert two["symbol"].value_counts().to_dict() == {"AAPL": 300, "MSFT": 300}


def test_frames_refuse_naive_timestamps_missing_indicators_and_wrong_lengths(
    aapl_window: tuple[pd.DataFrame, dict[str, np.ndarray]],
) -> None:
    frame, values = aapl_window
    naive = frame["timestamp"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="tz-aware"):
        to_wide("AAPL", naive, values)
    partial = {name: array for name, array in values.items() if name != "macd_hist"}
    with pytest.raises(ValueError, match="lack macd_hist"):
        to_wide("AAPL", frame["timestamp"], partial)
    with pytest.raises(ValueError, match=r"one value per timestamp \(299\)"):
        to_wide("AAPL", frame["timestamp"].iloc[1:], values)
    with pytest.raises(ValueError, match="got 2 symbols for 300 timestamps"):
        to_wide(["AAPL", "MSFT"], frame["timestamp"], values)


def _window_frames(shared_data: Path, first: int, stop: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = daily_bars(shared_data, "AAPL").iloc[:stop]
    values = indicators_for_window(frame["close"].to_numpy(), first)
    bars = frame.iloc[first:].assign(symbol="AAPL")
    return to_wide("AAPL", bars["timestamp"], values), bars


def test_clean_indicators_pass_every_check_at_the_start_and_later_in_the_history(
    shared_data: Path,
) -> None:
    wide, bars = _window_frames(shared_data, 0, 260)
    assert validate_indicators(wide, bars, {"AAPL": 0}) == []
    wide, bars = _window_frames(shared_data, 240, 500)
    assert validate_indicators(wide, bars, {"AAPL": 240}) == []


def test_checks_name_symbol_timestamp_indicator_and_value_of_each_broken_rule(
    shared_data: Path,
) -> None:
    wide, bars = _window_frames(shared_data, 0, 260)
    wide.loc[100, "rsi_14"] = 101.5
    wide.loc[101, "rsi_9"] = -0.5
    wide.loc[120, "bb_lower"] = float(wide["bb_middle"].iloc[120]) + 1
    wide.loc[130, "macd"] = pd.NA
    wide.loc[3, "sma_200"] = 99.0
    wide = pd.concat([wide.drop(index=[150]), wide.iloc[[200]]], ignore_index=True)
    issues = validate_indicators(wide, bars, {"AAPL": 0})
    found = {(issue.rule, issue.indicator): issue for issue in issues}
    stamp = bars["timestamp"]
    assert set(found) == {
        (IndicatorRule.RSI_OUT_OF_RANGE, "rsi_14"),
        (IndicatorRule.RSI_OUT_OF_RANGE, "rsi_9"),
        (IndicatorRule.BANDS_OUT_OF_ORDER, "bb_lower"),
        (IndicatorRule.NULL_AFTER_WARMUP, "macd"),
        (IndicatorRule.VALUE_BEFORE_WARMUP, "sma_200"),
        (IndicatorRule.MISSING_ROW, None),
        (IndicatorRule.DUPLICATE_ROW, None),
    }
    rsi = found[(IndicatorRule.RSI_OUT_OF_RANGE, "rsi_14")]
    assert (rsi.symbol, rsi.count, rsi.timestamp, rsi.value) == ("AAPL", 1, stamp.iloc[100], 101.5)
    assert found[(IndicatorRule.NULL_AFTER_WARMUP, "macd")].timestamp == stamp.iloc[130]
    assert found[(IndicatorRule.VALUE_BEFORE_WARMUP, "sma_200")].value == 99.0
    assert found[(IndicatorRule.MISSING_ROW, None)].timestamp == stamp.iloc[150]
    assert found[(IndicatorRule.DUPLICATE_ROW, None)].timestamp == stamp.iloc[200]
    text = str(rsi)
    assert text.startswith("indicators for AAPL: 1 RSI values outside [0, 100] (first rsi_14=101.5")
    assert str(found[(IndicatorRule.NULL_AFTER_WARMUP, "macd")]).count("macd=NULL") == 1


def test_checks_place_the_window_in_the_history_and_flag_rows_without_a_bar(
    shared_data: Path,
) -> None:
    wide, bars = _window_frames(shared_data, 240, 500)
    # Told the window is the start of the history, its first values look made up.
    misplaced = validate_indicators(wide, bars, {"AAPL": 0})
    assert {issue.rule for issue in misplaced} == {IndicatorRule.VALUE_BEFORE_WARMUP}
    assert {issue.indicator for issue in misplaced} == set(INDICATOR_NAMES)
    counts = {issue.indicator: issue.count for issue in misplaced}
    assert counts["sma_200"] == 199 and counts["macd"] == 33
    extra = validate_indicators(wide, bars.iloc[:-1], {"AAPL": 240})
    assert [(issue.rule, issue.timestamp) for issue in extra] == [
        (IndicatorRule.ROW_WITHOUT_BAR, bars["timestamp"].iloc[-1])
    ]
    with pytest.raises(ValueError, match="bars_before lacks the history length of AAPL"):
        validate_indicators(wide, bars, {})
