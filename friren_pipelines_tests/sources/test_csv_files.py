"""CsvBarSource against every real export in ../shared/data/daily and ../shared/data/intraday."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.sources.base import SourceDataError, UnknownSymbolError
from friren_pipelines.sources.csv_files import CsvBarSource
from friren_pipelines_tests.conftest import SHARED_DATA

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC
ALL_FILES = sorted(
    p.relative_to(SHARED_DATA).as_posix()
    for folder in ("daily", "intraday")
    for p in (SHARED_DATA / folder).glob("*.csv")
)
# What each file holds (PROVENANCE.md); the AMZN exports are split-adjusted but do not say so,
# so the test links them under a name declaring `_split`, as an operator would.
ADJUSTMENT = {
    "daily/AAPL_1d_2004-08-19_2018-01-19_yahoo.csv": "split",
    "daily/AMZN_1d_2021_alpaca-format.csv": "split",
    "daily/CALM_1d_2022-01-03_2024-08-21_yfinance-history.csv": "split",
    "daily/EWG_1d_2022-01-03_2024-08-21_yfinance-history.csv": "split",
    "daily/F_1d_2012_talib-python-test-input.csv": "raw",
    "daily/GOOG_1d_2004-08-19_2018-01-19_yahoo.csv": "split",
    "daily/INTC_1d_1995-01-03_2004-04-08_yahoo.csv": "split",
    "daily/NVDA_1d_1999-01-22_2014-12-31_yahoo.csv": "split",
    "daily/ORCL_1d_2000_quandl-wiki_with-adjustments_newest-first.csv": "raw",
    "daily/ORCL_1d_2000_yahoo_newest-first.csv": "raw",  # pre-2017 download: raw closes
    "daily/SPY_1d_2007-12-31_2017-12-29_yahoo.csv": "split",
    "daily/SPY_1d_2020-09-01_2021-01-12_yahoo.csv": "split",
    "daily/YHOO_1d_1996-04-12_2015-12-31_yahoo.csv": "split",
    "intraday/AAPL_1min_2021-08-23_2021-08-25_yfinance.csv": "raw",
    "intraday/AMZN_1min_2020-12-31_2021-01-08_alpaca-format_utc.csv": "split",
    "intraday/MSFT_1min_2021-08-23_2021-08-25_yfinance.csv": "raw",
    "intraday/SPY_1min_2011-01_ninjatrader_utc.csv": "raw",
}
EVERYTHING = (dt.date(1990, 1, 2), dt.date(2025, 12, 31))
JANUARY_2021 = (dt.date(2021, 1, 1), dt.date(2021, 1, 31))


Row = tuple[dt.date, dt.datetime | None, tuple[float, ...]]


def _expected_rows(path: Path, intraday: bool) -> list[Row]:
    """(session, UTC bar start or None for daily, OHLCV) per row, read with the csv module."""
    rows: list[Row] = []
    with path.open(newline="") as handle:
        first = handle.readline()
        handle.seek(0)
        if ";" in first:  # NinjaTrader: no header, UTC bar END stamps
            for stamp, *fields in csv.reader(handle, delimiter=";"):
                end = dt.datetime.strptime(stamp, "%Y%m%d %H%M%S").replace(tzinfo=UTC)
                start = end - dt.timedelta(minutes=1)
                rows.append((start.astimezone(NEW_YORK).date(), start, tuple(map(float, fields))))
            return rows
        for record in csv.DictReader(handle):
            lowered = {k.lower(): v for k, v in record.items()}
            stamp = lowered.get("datetime") or lowered.get("timestamp") or lowered["date"]
            values = tuple(float(lowered[c]) for c in ("open", "high", "low", "close", "volume"))
            if not intraday:
                rows.append((dt.date.fromisoformat(stamp[:10]), None, values))
                continue
            instant = dt.datetime.fromisoformat(stamp)
            if instant.tzinfo is None:
                instant = instant.replace(tzinfo=UTC if "utc" in path.name else NEW_YORK)
            rows.append((instant.astimezone(NEW_YORK).date(), instant.astimezone(UTC), values))
    return rows


def _regular(row: Row) -> bool:
    """Daily rows, and minutes of the regular session (no early closes among the shared dates)."""
    if row[1] is None:
        return True
    local = row[1].astimezone(NEW_YORK)
    return local.weekday() < 5 and dt.time(9, 30) <= local.time() < dt.time(16, 0)


def _folder_with(tmp_path: Path, *files: str) -> Path:
    folder = tmp_path / "bars"
    folder.mkdir(exist_ok=True)
    for relative in files:
        source = SHARED_DATA / relative
        name = source.name.replace("_alpaca-format", "_alpaca-format_split")
        (folder / name).symlink_to(source)
    return folder


def _fetch_written(
    tmp_path: Path,
    name: str,
    text: str,
    timeframe: Timeframe = Timeframe.DAY1,
    sessions: tuple[dt.date, dt.date] = JANUARY_2021,
) -> pd.DataFrame:
    """Write `text` as the file `name` in tmp_path and fetch its symbol (the name up to the first
    `_` or `.csv`) for `sessions`, first and last included."""
    (tmp_path / name).write_text(text)
    symbol = name.split("_", maxsplit=1)[0].removesuffix(".csv")
    return CsvBarSource(tmp_path).fetch_bars([symbol], timeframe, *sessions)


@pytest.mark.parametrize("relative", ALL_FILES)
def test_every_shared_file_comes_through_with_its_values_sessions_and_adjustment(
    shared_data: Path, tmp_path: Path, relative: str
) -> None:
    path = shared_data / relative
    symbol = path.name.split("_")[0]
    intraday = relative.startswith("intraday/")
    timeframe = Timeframe.MIN1 if intraday else Timeframe.DAY1
    expected = _expected_rows(path, intraday)
    kept = sorted(
        filter(_regular, expected),
        key=lambda row: row[1] or row[0],
    )

    bars = CsvBarSource(_folder_with(tmp_path, relative)).fetch_bars(
        [symbol], timeframe, *EVERYTHING
    )

    assert len(bars) == len(kept)
    assert bars.attrs["excluded_extended_hours"] == len(expected) - len(kept)
    assert list(bars["session_date"]) == [row[0] for row in kept]
    if intraday:
        assert list(bars["timestamp"]) == [row[1] for row in kept]
    ohlcv = bars[["open", "high", "low", "close", "volume"]].itertuples(index=False, name=None)
    assert list(ohlcv) == [row[2] for row in kept]
    assert set(bars["adjustment"]) == {ADJUSTMENT[relative]}
    assert set(bars["source"]) == {"csv"} and set(bars["symbol"]) == {symbol}


def test_spy_2015_rows_with_low_above_open_are_kept_unchanged(shared_data: Path) -> None:
    bars = CsvBarSource(shared_data / "daily").fetch_bars(
        ["SPY"], Timeframe.DAY1, dt.date(2015, 3, 5), dt.date(2015, 3, 5)
    )
    row = bars.iloc[0]
    assert (row["open"], row["high"], row["low"], row["close"]) == (
        209.419998,
        210.800003,
        209.850006,
        210.460007,
    )
    assert row["timestamp"] == pd.Timestamp("2015-03-05 14:30", tz="UTC")  # session open


def test_newest_first_quandl_file_comes_out_oldest_first_with_raw_prices(tmp_path: Path) -> None:
    quandl = "daily/ORCL_1d_2000_quandl-wiki_with-adjustments_newest-first.csv"
    bars = CsvBarSource(_folder_with(tmp_path, quandl)).fetch_bars(
        ["ORCL"], Timeframe.DAY1, dt.date(2000, 1, 1), dt.date(2000, 1, 31)
    )
    assert bars["session_date"].is_monotonic_increasing
    first = bars.iloc[0]
    assert (first["session_date"], first["open"], first["close"]) == (
        dt.date(2000, 1, 3),
        122.7,
        118.1,
    )


def test_ninjatrader_end_stamps_become_bar_starts(shared_data: Path) -> None:
    bars = CsvBarSource(shared_data / "intraday").fetch_bars(
        ["SPY"], Timeframe.MIN1, dt.date(2011, 1, 3), dt.date(2011, 1, 3)
    )
    # File line "20110103 143100;126.71;126.72;126.69;126.7;..." ends at 09:31 New York time.
    opening = bars.iloc[0]
    assert opening["timestamp"] == pd.Timestamp("2011-01-03 14:30", tz="UTC")
    assert bars.iloc[-1]["timestamp"] == pd.Timestamp("2011-01-03 20:59", tz="UTC")
    assert len(bars) == 390


def test_five_minute_request_is_resampled_from_the_one_minute_file(shared_data: Path) -> None:
    source = CsvBarSource(shared_data / "intraday")
    minutes = source.fetch_bars(
        ["AAPL"], Timeframe.MIN1, dt.date(2021, 8, 23), dt.date(2021, 8, 23)
    )
    fives = source.fetch_bars(["AAPL"], Timeframe.MIN5, dt.date(2021, 8, 23), dt.date(2021, 8, 23))

    first_five = minutes[minutes["timestamp"] < pd.Timestamp("2021-08-23 13:35", tz="UTC")]
    assert len(first_five) == 4  # 09:32 is missing in the file
    bar = fives.iloc[0]
    assert bar["timestamp"] == pd.Timestamp("2021-08-23 13:30", tz="UTC")
    assert bar["timeframe"] == "5min"
    assert bar["open"] == first_five["open"].iloc[0]
    assert bar["high"] == first_five["high"].max()
    assert bar["low"] == first_five["low"].min()
    assert bar["close"] == first_five["close"].iloc[-1]
    assert bar["volume"] == first_five["volume"].sum()
    assert len(fives) == 78


def test_files_of_one_symbol_with_disjoint_dates_are_read_together(shared_data: Path) -> None:
    bars = CsvBarSource(shared_data / "daily").fetch_bars(
        ["SPY"], Timeframe.DAY1, dt.date(2007, 1, 1), dt.date(2021, 12, 31)
    )
    assert len(bars) == 2519 + 92


def test_two_files_holding_the_same_session_are_refused_naming_both(shared_data: Path) -> None:
    with pytest.raises(
        SourceDataError, match=r"ORCL_1d_2000_quandl.*ORCL_1d_2000_yahoo.*2000-01-03"
    ):
        CsvBarSource(shared_data / "daily").fetch_bars(
            ["ORCL"], Timeframe.DAY1, dt.date(2000, 1, 1), dt.date(2000, 1, 31)
        )


def test_symbol_without_a_file_of_the_timeframe_is_unknown(shared_data: Path) -> None:
    source = CsvBarSource(shared_data / "daily")
    with pytest.raises(UnknownSymbolError, match=r"no 1d bar file for ZZZ"):
        source.fetch_bars(["ZZZ"], Timeframe.DAY1, dt.date(2020, 1, 1), dt.date(2020, 1, 31))
    with pytest.raises(UnknownSymbolError, match=r"no 1min bar file for AAPL.*AAPL_1d_"):
        source.fetch_bars(["AAPL"], Timeframe.MIN1, dt.date(2020, 1, 1), dt.date(2020, 1, 31))


def test_range_is_inclusive_and_symbols_are_returned_together(shared_data: Path) -> None:
    bars = CsvBarSource(shared_data / "daily").fetch_bars(
        ["AAPL", "GOOG"], Timeframe.DAY1, dt.date(2018, 1, 18), dt.date(2018, 1, 19)
    )
    assert list(bars["symbol"]) == ["AAPL", "AAPL", "GOOG", "GOOG"]
    assert set(bars["session_date"]) == {dt.date(2018, 1, 18), dt.date(2018, 1, 19)}


def test_naive_intraday_stamps_are_new_york_time_unless_the_name_says_utc(tmp_path: Path) -> None:
    text = "Datetime,Open,High,Low,Close,Volume\n2021-08-23 14:30:00,1,2,0.5,1.5,100\n"
    (tmp_path / "AAPL_1min.csv").write_text(text)
    (tmp_path / "MSFT_1min_utc.csv").write_text(text)
    bars = CsvBarSource(tmp_path).fetch_bars(
        ["AAPL", "MSFT"], Timeframe.MIN1, dt.date(2021, 8, 23), dt.date(2021, 8, 23)
    )
    stamps = dict(zip(bars["symbol"], bars["timestamp"], strict=True))
    assert stamps == {
        "AAPL": pd.Timestamp("2021-08-23 18:30", tz="UTC"),
        "MSFT": pd.Timestamp("2021-08-23 14:30", tz="UTC"),
    }


def test_daily_stamps_keep_the_written_date_whatever_their_offset(tmp_path: Path) -> None:
    bars = _fetch_written(
        tmp_path,
        "X.csv",
        "timestamp,open,high,low,close,volume\n"
        "2021-01-04 00:00:00+00:00,1,2,0.5,1.5,100\n"
        "2021-01-05 05:00:00+00:00,1,2,0.5,1.5,100\n"
        "2021-01-06,1,2,0.5,1.5,100\n",
    )
    assert list(bars["session_date"]) == [dt.date(2021, 1, d) for d in (4, 5, 6)]


@pytest.mark.parametrize(
    ("text", "line", "column", "problem"),
    [
        ("Date,Open,High,Low,Volume\n2021-01-04,1,2,0.5,100\n", 1, "close", "missing"),
        (
            "Date,Open,High,Low,Close,Volume\n2021-01-04,1,2,0.5,1.5,100\n2021-01-05,1,2,x,1,9\n",
            3,
            "low",
            "'x' is not a number",
        ),
        ("Date,Open,High,Low,Close,Volume\n2021-01-04,1,2,0.5,,100\n", 2, "close", "empty value"),
        (
            "Date,Open,High,Low,Close,Volume\n2021-01-04,1,2,0.5,1.5,100\n04/01/21,1,2,0.5,1.5,9\n",
            3,
            "date",
            "'04/01/21' is not a date",
        ),
    ],
)
def test_malformed_file_names_file_line_and_column(
    tmp_path: Path, text: str, line: int, column: str, problem: str
) -> None:
    with pytest.raises(SourceDataError) as caught:
        _fetch_written(tmp_path, "BAD_1d.csv", text)
    message = str(caught.value)
    assert "BAD_1d.csv" in message and f"line {line}" in message
    assert repr(column) in message and problem in message


def test_headerless_file_that_is_not_ninjatrader_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceDataError, match=r"BAD_1min.csv .* line 1.*NinjaTrader.*found 4"):
        _fetch_written(
            tmp_path,
            "BAD_1min.csv",
            "20110103 090100;1;2;3\n",
            Timeframe.MIN1,
            (dt.date(2011, 1, 3), dt.date(2011, 1, 3)),
        )


def test_separate_date_and_time_columns_are_joined_in_new_york_time(tmp_path: Path) -> None:
    bars = _fetch_written(
        tmp_path,
        "XYZ_1min.csv",
        "Date,Time,Open,High,Low,Close,Volume\n2024-03-15,09:30,10,11,9,10.5,100\n"
        "2024-03-15,09:31,10.5,11,10,10.8,200\n",
        Timeframe.MIN1,
        (dt.date(2024, 3, 15), dt.date(2024, 3, 15)),
    )
    assert list(bars["timestamp"]) == [
        pd.Timestamp("2024-03-15 13:30", tz="UTC"),
        pd.Timestamp("2024-03-15 13:31", tz="UTC"),
    ]
    assert list(bars["close"]) == [10.5, 10.8]


def test_a_file_that_is_not_utf8_is_refused_naming_its_line_and_byte(tmp_path: Path) -> None:
    latin = "Date,Open,High,Low,Close,Volume\n2021-01-04,1,2,0.5,1.5,100\n2021-01-05,Caf\xe9\n"
    (tmp_path / "LAT_1d.csv").write_bytes(latin.encode("latin-1"))
    with pytest.raises(SourceDataError) as caught:
        CsvBarSource(tmp_path).fetch_bars(
            ["LAT"], Timeframe.DAY1, dt.date(2021, 1, 1), dt.date(2021, 1, 31)
        )
    assert str(caught.value) == (
        "csv: LAT_1d.csv (LAT) line 3: byte 0xe9 is not UTF-8; save the export as UTF-8"
    )
    (tmp_path / "LAT_1d.csv").write_bytes("D\xe4te,Open\n".encode("latin-1"))
    with pytest.raises(SourceDataError, match=r"LAT_1d.csv \(LAT\) line 1: byte 0xe4"):
        CsvBarSource(tmp_path).fetch_bars(
            ["LAT"], Timeframe.DAY1, dt.date(2021, 1, 1), dt.date(2021, 1, 31)
        )


def test_one_fetch_of_many_files_equals_the_fetches_of_each_symbol(
    shared_data: Path, tmp_path: Path
) -> None:
    """Files are converted together (one pass per column); each keeps its own dialect."""
    everyday = [p for p in ALL_FILES if p.startswith("daily/") and "ORCL_1d_2000_yahoo" not in p]
    folder = _folder_with(tmp_path, *everyday)
    (folder / "SEMI_1d.csv").write_text(
        "\ufeffDate;Open;High;Low;Close;Volume\r\n2021-01-05;1;2;0.5;1.5;100\r\n"
        "\r\n2021-01-04; 1 ;2;0.5;1.25;90\r\n"
    )
    symbols = sorted({Path(p).name.split("_")[0] for p in everyday} | {"SEMI"})
    source = CsvBarSource(folder)

    together = source.fetch_bars(symbols, Timeframe.DAY1, *EVERYTHING)
    alone = [source.fetch_bars([s], Timeframe.DAY1, *EVERYTHING) for s in symbols]

    pd.testing.assert_frame_equal(together, pd.concat(alone, ignore_index=True), check_exact=True)
    semi = together[together["symbol"] == "SEMI"]
    assert list(semi["close"]) == [1.25, 1.5] and set(semi["adjustment"]) == {"raw"}


def test_a_fetch_lists_the_folder_once(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = []
    iterdir = Path.iterdir

    def counting(self: Path) -> Iterator[Path]:
        listed.append(self)
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", counting)
    CsvBarSource(shared_data / "daily").fetch_bars(
        ["AAPL", "GOOG", "SPY", "YHOO"], Timeframe.DAY1, dt.date(2010, 1, 1), dt.date(2010, 1, 31)
    )
    assert len(listed) == 1


def test_rows_short_of_an_unused_column_are_read_and_blank_lines_keep_line_numbers(
    tmp_path: Path,
) -> None:
    bars = _fetch_written(
        tmp_path,
        "X.csv",
        "Date,Open,High,Low,Close,Volume,Stock Splits\n2021-01-04,1,2,0.5,1.5,100,0\n"
        "2021-01-05,1,2,0.5,1.5,100\n",
    )
    assert list(bars["session_date"]) == [dt.date(2021, 1, 4), dt.date(2021, 1, 5)]

    with pytest.raises(SourceDataError) as caught:
        _fetch_written(
            tmp_path,
            "X.csv",
            "Date,Open,High,Low,Close,Volume\n2021-01-04,1,2,0.5,1.5,100\n\n,,,,,\n"
            "2021-01-05,1,2,0.5,1.5,lots\n",
        )
    assert str(caught.value) == ("csv: X.csv (X) line 5, column 'volume': 'lots' is not a number")


def test_the_first_bad_file_in_request_order_is_the_one_reported(tmp_path: Path) -> None:
    header = "Date,Open,High,Low,Close,Volume\n"
    (tmp_path / "A.csv").write_text(header + "2021-01-04,1,2,x,1.5,100\n")
    (tmp_path / "B.csv").write_text(header + "2021-01-04,1,2,0.5,,100\n")
    source = CsvBarSource(tmp_path)
    with pytest.raises(SourceDataError, match=r"B.csv .*'close'"):
        source.fetch_bars(["B", "A"], Timeframe.DAY1, *JANUARY_2021)
    with pytest.raises(SourceDataError, match=r"A.csv .*'low'"):
        source.fetch_bars(["A", "ZZZ", "B"], Timeframe.DAY1, *JANUARY_2021)
    with pytest.raises(UnknownSymbolError, match="ZZZ"):
        source.fetch_bars(["ZZZ", "A"], Timeframe.DAY1, *JANUARY_2021)
