"""SyntheticBarSource keeps the promises of its module docstring."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import (
    BAR_COLUMNS,
    BAR_SCHEMA,
    Severity,
    Timeframe,
    empty_bars,
    resample_to_5min,
    to_arrow,
    validate_bars,
)
from friren_pipelines.sources import synthetic

SOURCE = synthetic.SyntheticBarSource()
THANKSGIVING_WEEK = (dt.date(2024, 11, 25), dt.date(2024, 11, 29))  # closes at 13:00 on Friday


def _fetch(symbols: list[str], timeframe: Timeframe, start: dt.date, end: dt.date) -> pd.DataFrame:
    return SOURCE.fetch_bars(symbols, timeframe, start, end)


def _same(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    return to_arrow(left.reset_index(drop=True)).equals(to_arrow(right.reset_index(drop=True)))


def test_daily_bars_do_not_depend_on_the_range_chunking_or_symbols_requested() -> None:
    december, january = dt.date(2023, 12, 1), dt.date(2024, 1, 1)  # noise is drawn per year
    whole = _fetch(["MSFT", "AAPL", "SPY"], Timeframe.DAY1, december, dt.date(2024, 2, 9))
    chunks = [
        _fetch(["AAPL", "SPY", "MSFT"], Timeframe.DAY1, december, dt.date(2023, 12, 31)),
        _fetch(["SPY", "AAPL", "MSFT"], Timeframe.DAY1, january, dt.date(2024, 2, 9)),
    ]
    assert _same(whole, pd.concat(chunks).sort_values(["symbol", "timestamp"], kind="stable"))
    friday = dt.date(2024, 1, 5)
    alone = _fetch(["SPY"], Timeframe.DAY1, friday, friday)
    assert _same(alone, whole[(whole["symbol"] == "SPY") & (whole["session_date"] == friday)])


def test_bars_do_not_depend_on_how_far_the_calendar_reaches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    today = _fetch(["AAPL"], Timeframe.MIN1, *THANKSGIVING_WEEK)
    with monkeypatch.context() as patch:  # as if run a year earlier: the calendar ends sooner
        patch.setattr(calendar, "calendar_end", lambda: dt.date(2026, 12, 31))
        synthetic._sessions.cache_clear()
        synthetic._path_weights.cache_clear()
        earlier = _fetch(["AAPL"], Timeframe.MIN1, *THANKSGIVING_WEEK)
    synthetic._sessions.cache_clear()
    synthetic._path_weights.cache_clear()
    assert _same(today, earlier)


@pytest.mark.parametrize("timeframe", [Timeframe.MIN1, Timeframe.MIN5])
def test_intraday_bars_of_a_session_are_the_same_however_they_are_requested(
    timeframe: Timeframe,
) -> None:
    week = _fetch(["QQQ", "AAPL"], timeframe, *THANKSGIVING_WEEK)
    friday = _fetch(["AAPL"], timeframe, THANKSGIVING_WEEK[1], THANKSGIVING_WEEK[1])
    expected = week[(week["symbol"] == "AAPL") & (week["session_date"] == THANKSGIVING_WEEK[1])]
    assert len(friday) and _same(friday, expected)


def test_frames_have_the_bar_columns_and_types_sorted_by_symbol_and_time() -> None:
    for timeframe in Timeframe:
        bars = _fetch(["MSFT", "AAPL"], timeframe, dt.date(2024, 3, 4), dt.date(2024, 3, 5))
        assert tuple(bars.columns) == BAR_COLUMNS
        assert to_arrow(bars).schema.equals(BAR_SCHEMA)
        assert bars.equals(bars.sort_values(["symbol", "timestamp"], kind="stable"))
        assert set(bars["timeframe"]) == {timeframe.value} and set(bars["adjustment"]) == {"raw"}
        assert bars.attrs["excluded_extended_hours"] == 0


def test_a_range_without_sessions_gives_no_bars() -> None:
    weekend = _fetch(["AAPL"], Timeframe.MIN1, dt.date(2024, 3, 9), dt.date(2024, 3, 10))
    assert weekend.empty and weekend.dtypes.equals(empty_bars().dtypes)


@pytest.mark.parametrize("timeframe", list(Timeframe))
def test_bars_are_valid_whole_cents_and_shares_inside_sessions(timeframe: Timeframe) -> None:
    bars = _fetch(["AAPL", "BRK.B", "SPY"], timeframe, *THANKSGIVING_WEEK)
    issues = validate_bars(bars, timeframe)
    assert [i for i in issues if i.severity == Severity.ERROR or "outside" in i.rule] == []
    prices = bars[["open", "high", "low", "close"]].to_numpy()
    assert np.array_equal(np.round(prices, 2), prices) and (prices > 0).all()
    assert (bars["volume"] == np.floor(bars["volume"])).all()
    assert set(bars["session_date"]) == set(calendar.sessions(*THANKSGIVING_WEEK))


def test_minute_bars_cover_each_session_early_closes_included() -> None:
    bars = _fetch(["AAPL"], Timeframe.MIN1, *THANKSGIVING_WEEK)
    per_session = bars.groupby("session_date").size()
    assert per_session.to_dict() == {
        dt.date(2024, 11, 25): 390,
        dt.date(2024, 11, 26): 390,
        dt.date(2024, 11, 27): 390,
        dt.date(2024, 11, 29): 210,  # 09:30-13:00
    }
    friday = bars[bars["session_date"] == dt.date(2024, 11, 29)]
    assert friday["timestamp"].iloc[-1] == pd.Timestamp("2024-11-29 17:59", tz="UTC")


def test_minute_paths_run_from_the_days_open_to_its_close_inside_its_range() -> None:
    keys = ["symbol", "session_date"]
    days = _fetch(["AAPL", "TSLA"], Timeframe.DAY1, *THANKSGIVING_WEEK).set_index(keys)
    minutes = _fetch(["AAPL", "TSLA"], Timeframe.MIN1, *THANKSGIVING_WEEK).groupby(keys)
    assert (minutes["open"].first() == days["open"]).all()
    assert (minutes["close"].last() == days["close"]).all()
    assert (minutes["high"].max() <= days["high"]).all()
    assert (minutes["low"].min() >= days["low"]).all()
    assert (minutes["volume"].sum() <= days["volume"]).all()


def test_intraday_volume_is_u_shaped() -> None:
    bars = _fetch(["AAPL", "MSFT", "SPY"], Timeframe.MIN1, dt.date(2024, 3, 4), dt.date(2024, 3, 8))
    minute = bars.groupby(["symbol", "session_date"]).cumcount()
    share = bars["volume"] / bars.groupby(["symbol", "session_date"])["volume"].transform("sum")
    by_minute = share.groupby(minute).mean()
    lunch = by_minute.loc[165:225].mean()
    assert by_minute.loc[:29].mean() > 2 * lunch and by_minute.loc[360:].mean() > 2 * lunch


def test_five_minute_bars_aggregate_the_minute_bars() -> None:
    minutes = _fetch(["AAPL"], Timeframe.MIN1, *THANKSGIVING_WEEK)
    fives = _fetch(["AAPL"], Timeframe.MIN5, *THANKSGIVING_WEEK)
    expected = resample_to_5min(minutes).assign(vwap=lambda f: f["vwap"].round(4))
    assert _same(fives, expected)


def test_splits_drop_the_raw_price_at_the_open() -> None:
    symbols = [f"S{i:03d}" for i in range(40)]
    bars = _fetch(symbols, Timeframe.DAY1, calendar.CALENDAR_START, dt.date(2025, 12, 31))
    previous_close = bars.groupby("symbol")["close"].shift(1)
    ratio = previous_close / bars["open"]
    splits = ratio[ratio > 1.6]
    symbol_years = len(bars) / 252
    assert 1 / 25 < len(splits) / symbol_years < 1 / 6  # about one per symbol per 13 years
    assert splits.round().isin([2, 3, 4]).all()
