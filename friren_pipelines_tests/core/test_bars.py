import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from friren_pipelines.core.bars import (
    BAR_COLUMNS,
    PRICE_COLUMNS,
    BarValidationError,
    Severity,
    Timeframe,
    conform,
    last_finished_bar,
    normalize_symbol,
    raise_on_errors,
    validate_bars,
)


def _daily(rows: list[tuple[str, float, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).dt.tz_localize("America/New_York")
    frame["volume"] = 1000.0
    return conform(frame, symbol="XYZ", timeframe=Timeframe.DAY1, adjustment="raw", source="csv")


def test_conform_labels_daily_bars_by_session_and_stamps_them_at_the_open() -> None:
    bars = _daily([("2024-03-15", 10, 11, 9, 10.5)])
    assert tuple(bars.columns) == BAR_COLUMNS
    assert bars.loc[0, "session_date"] == dt.date(2024, 3, 15)
    assert bars.loc[0, "timestamp"] == pd.Timestamp("2024-03-15 13:30", tz="UTC")


def test_spy_low_above_open_quirks_are_reported_not_dropped(shared_data: Path) -> None:
    raw = pd.read_csv(shared_data / "daily" / "SPY_1d_2007-12-31_2017-12-29_yahoo.csv")
    raw = raw.rename(columns={"Date": "timestamp"}).rename(columns=str.lower)
    raw["timestamp"] = pd.to_datetime(raw["timestamp"]).dt.tz_localize("America/New_York")
    bars = conform(raw, symbol="SPY", timeframe=Timeframe.DAY1, adjustment="split", source="csv")
    issues = validate_bars(bars, Timeframe.DAY1)
    quirk = next(i for i in issues if "outside [low, high]" in i.rule)
    assert quirk.severity == Severity.WARNING
    assert quirk.count == 2 and quirk.session == dt.date(2015, 3, 5)
    assert raise_on_errors(issues)  # warnings only: nothing raises
    assert len(bars) == 2519


def test_high_below_low_is_an_error_naming_symbol_date_and_first_row() -> None:
    bars = _daily([("2024-03-14", 10, 11, 9, 10), ("2024-03-15", 10, 9, 11, 10)])
    with pytest.raises(BarValidationError) as error:
        raise_on_errors(validate_bars(bars, Timeframe.DAY1))
    message = str(error.value)
    assert "XYZ 2024-03-15" in message and "high < low" in message and "2024-03-15 09:30" in message


@pytest.mark.parametrize(
    ("rows", "rule"),
    [
        ([("2024-03-15", 10, 11, 9, 10), ("2024-03-15", 10, 11, 9, 10)], "duplicate timestamps"),
        ([("2024-03-16", 10, 11, 9, 10)], "outside the trading session"),  # a Saturday
        ([("2024-03-15", -1, 11, -2, 10)], "non-positive price"),
        ([("2024-03-15", float("nan"), 11, 9, 10)], "null price"),
        ([("2024-03-15", 10, float("inf"), 9, 10)], "infinite price"),
    ],
)
def test_unusable_bars_are_errors(
    rows: list[tuple[str, float, float, float, float]], rule: str
) -> None:
    issues = validate_bars(_daily(rows), Timeframe.DAY1)
    assert any(rule in i.rule and i.severity == Severity.ERROR for i in issues)


def _bars(symbol: str, rows: list[tuple[str, float, float, float, float, float]]) -> pd.DataFrame:
    """Conformed 1-minute bars of one symbol from (New York time, open, high, low, close, volume)."""
    frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).dt.tz_localize("America/New_York")
    return conform(frame, symbol=symbol, timeframe=Timeframe.MIN1, adjustment="raw", source="csv")


def test_issues_are_per_symbol_and_name_the_earliest_bar_whatever_the_row_order() -> None:
    bad, good = (10, 9, 11, 10, 100), (10, 11, 9, 10, 100)
    bars = pd.concat(
        [
            _bars("BBB", [("2024-03-15 10:00", *bad), ("2024-03-15 10:01", *bad)]),
            _bars("AAA", [(f"2024-03-15 10:0{m}", *(bad if m else good)) for m in range(3)]),
        ]
    )
    shuffled = bars.sample(frac=1.0, random_state=3)
    issues = [i for i in validate_bars(shuffled, Timeframe.MIN1) if "high < low" in i.rule]
    assert [(i.symbol, i.count, i.first_row[:16]) for i in issues] == [
        ("AAA", 2, "2024-03-15 10:01"),
        ("BBB", 2, "2024-03-15 10:00"),
    ]
    assert validate_bars(shuffled, Timeframe.MIN1) == validate_bars(bars, Timeframe.MIN1)


def test_jumps_spikes_and_duplicates_are_measured_within_a_symbol_only() -> None:
    # The same minutes in two symbols, AAA at 10 and BBB at 100 with ten times the volume.
    minutes = ["2024-03-15 10:00", "2024-03-15 10:01"]
    bars = pd.concat(
        [
            _bars("AAA", [(m, 10, 10, 10, 10, 100) for m in minutes]),
            _bars("BBB", [(m, 100, 100, 100, 100, 1000) for m in minutes]),
        ],
        ignore_index=True,
    )
    assert validate_bars(bars, Timeframe.MIN1) == []
    bars.loc[3, [*PRICE_COLUMNS, "volume"]] = [200, 200, 200, 200, 4000]  # BBB doubles on 4x volume
    issues = validate_bars(bars, Timeframe.MIN1)
    assert [(i.rule, i.symbol, i.count) for i in issues] == [
        ("price jumps over 50%", "BBB", 1),
        ("volume spikes over 3x", "BBB", 1),
    ]


def test_intraday_bars_before_the_open_or_from_the_early_close_on_are_outside_the_session() -> None:
    day = "2024-11-29"  # the day after Thanksgiving closes at 13:00
    bars = _bars(
        "XYZ", [(f"{day} {t}", 10, 11, 9, 10, 100) for t in ("09:29", "09:30", "12:59", "13:00")]
    )
    (issue,) = validate_bars(bars, Timeframe.MIN1)
    assert issue.rule == "bars outside the trading session" and issue.severity == Severity.ERROR
    assert issue.count == 2 and issue.first_row.startswith(f"{day} 09:29 EST")


def test_bars_without_a_symbol_are_not_reported() -> None:
    bars = _daily([("2024-03-15", 10, 9, 11, 10)])
    bars["symbol"] = None
    assert validate_bars(bars, Timeframe.DAY1) == []


def test_missing_columns_are_named() -> None:
    bars = _daily([("2024-03-15", 10, 11, 9, 10)]).drop(columns=["low"])
    (issue,) = validate_bars(bars, Timeframe.DAY1)
    assert issue.severity == Severity.ERROR and "low" in issue.rule


@pytest.mark.parametrize("text", ["../x", "A;DROP TABLE", "a|b", "", "TOOLONGSYMBOL1"])
def test_symbols_that_are_not_tickers_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid symbol"):
        normalize_symbol(text)


def test_tickers_with_class_suffixes_are_accepted() -> None:
    assert normalize_symbol(" brk.b ") == "BRK.B"
    assert normalize_symbol("BF-B") == "BF-B"


@pytest.mark.parametrize("volume", [-5.0, float("nan"), float("inf")])
def test_a_negative_missing_or_infinite_volume_is_an_error(volume: float) -> None:
    bars = _daily([("2024-03-15", 10, 11, 9, 10)])
    bars["volume"] = volume
    issues = validate_bars(bars, Timeframe.DAY1)
    assert any("volume" in i.rule and i.severity == Severity.ERROR for i in issues)


def test_the_last_finished_bar_excludes_the_bar_still_forming() -> None:
    ten_am = pd.Timestamp("2024-03-08 15:00:30", tz="UTC")  # 10:00:30 New York
    assert last_finished_bar(Timeframe.MIN1, ten_am) == pd.Timestamp("2024-03-08 14:59", tz="UTC")
    assert last_finished_bar(Timeframe.MIN5, ten_am) == pd.Timestamp("2024-03-08 14:55", tz="UTC")
    # Today's daily bar is not finished before the close: the last one is yesterday's.
    assert last_finished_bar(Timeframe.DAY1, ten_am) == pd.Timestamp("2024-03-07 14:30", tz="UTC")
