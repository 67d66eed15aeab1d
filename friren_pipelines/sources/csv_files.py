"""Bars from a folder of per-symbol CSV files, as brokers and data vendors export them.

Which file serves a request
    A file belongs to a symbol when its name (without `.csv`/`.txt`, any case) is the symbol or
    starts with the symbol and `_`: `AAPL.csv`, `aapl_1d_2004_yahoo.csv`, `BRK.B_1min.csv`.
    The rest of the name, split on `_ - . space`, gives the bar length: a part `1min`, `1m`,
    `minute` or `1minute` marks 1-minute bars, `5min`, `5m` or `5minute` 5-minute bars, anything
    else daily bars. A part `utc` says naive intraday stamps are UTC. Several files of one symbol
    and bar length are read together (e.g. two date ranges); if two of them hold bars of the same
    session in the requested range they contradict each other and `SourceDataError` names both.
    A 5-minute request with no 5-minute file is served by resampling the 1-minute file: open of
    the first minute, highest high, lowest low, close of the last minute, summed volume and trade
    count, volume-weighted vwap; buckets start at :00, :05, ... (New York opens at 09:30).
    A symbol with no file of the requested bar length raises `UnknownSymbolError`.

Layouts read
    A header row with a date column named `Date`, `Datetime`, `Timestamp` or `Time` (any case)
    and `Open, High, Low, Close, Volume`; optional `vwap`, `trade_count`; `Adj Close`,
    `Dividends`, `Stock Splits`, `Capital Gains` and the Quandl WIKI `Adj. *`, `Ex-Dividend`,
    `Split Ratio` columns are only used to tell the adjustment. Comma, semicolon or tab separated;
    rows oldest-first or newest-first. A file without a header row is a NinjaTrader export:
    `yyyyMMdd HHmmss;open;high;low;close;volume` whose intraday stamps mark the bar END (one bar
    length is subtracted to get the bar start).

Time stamps (ISO 8601, or NinjaTrader's compact form)
    Daily rows: the session is the calendar date written in the stamp; its time and offset are
    ignored, because vendors stamp daily bars at New York midnight (yfinance), at New York midnight
    written in UTC (Alpaca, `05:00+00:00`) or at UTC midnight. Intraday rows: a stamp with an
    offset is that instant; a naive stamp is New York time, or UTC when the file name says `utc`.

Prices and `adjustment`
    Prices and volumes are kept exactly as written: nothing is adjusted, repaired or dropped (a
    bar with low > open stays for validation to report). The `adjustment` column states what the
    file holds, judged from its columns, first rule that applies:
    1. Quandl WIKI (`Adj. Close` and `Split Ratio`): Open..Close are as traded → `raw`.
    2. `Adj Close` present (Yahoo downloads, yfinance `auto_adjust=False`): Yahoo's Close is
       split-adjusted → `split`; but if Close/Adj Close jumps by a split-sized factor (≥ 1.4x)
       from one row to the next, the closes are as traded (pre-2017 Yahoo downloads) → `raw`.
    3. `Dividends`/`Stock Splits` without `Adj Close` (yfinance `auto_adjust=True`) →
       `split_dividend`.
    4. A name part `raw`, `split` or `adjusted` → `raw`, `split`, `split_dividend`.
    5. Otherwise (plain OHLCV exports: Alpaca, NinjaTrader, platforms) → `raw`. Such a file does
       not say whether someone split-adjusted it before export; name it `..._split.csv` if so.

A file that is not bars (missing column, a value that is not a number, a date that does not
parse) raises `SourceDataError` naming the file, the line number (1 = first line) and the column.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import (
    Timeframe,
    conform,
    normalize_symbol,
    resample_to_5min,
)
from friren_pipelines.sources.base import SourceDataError, UnknownSymbolError, in_regular_session

SOURCE = "csv"
EXTENSIONS = (".csv", ".txt")
_NAME_PARTS = re.compile(r"[_\-. ]+")
_TIMEFRAME_PARTS = {
    Timeframe.MIN1: {"1min", "1m", "minute", "1minute"},
    Timeframe.MIN5: {"5min", "5m", "5minute"},
}
_ADJUSTMENT_PARTS = {"raw": "raw", "split": "split", "adjusted": "split_dividend"}
_DATE_COLUMNS = ("datetime", "timestamp", "date", "time")
_REQUIRED = ("open", "high", "low", "close", "volume")
_OPTIONAL = ("vwap", "trade_count")
_NINJATRADER_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"
# Close/Adj Close moving by more than this between two rows means a split sits in raw closes;
# dividends move it by a few percent at most.
SPLIT_SIZED_JUMP = 1.4


@dataclass(frozen=True)
class BarFile:
    """One CSV file of one symbol: its bar length and how to read its naive stamps."""

    path: Path
    symbol: str
    timeframe: Timeframe
    naive_is_utc: bool

    @classmethod
    def from_path(cls, path: Path, symbol: str) -> BarFile:
        rest = path.stem[len(symbol) :].lower()
        parts = set(_NAME_PARTS.split(rest))
        timeframe = next(
            (tf for tf, names in _TIMEFRAME_PARTS.items() if parts & names), Timeframe.DAY1
        )
        return cls(path=path, symbol=symbol, timeframe=timeframe, naive_is_utc="utc" in parts)

    def read(self) -> pd.DataFrame:
        """All bars of the file, conformed (`core.bars.conform`), prices as written."""
        return _read_bar_file(self)


def bar_files(directory: Path, symbol: str) -> list[BarFile]:
    """The files of `symbol` in `directory` (see the module docstring for the naming rule)."""
    symbol = normalize_symbol(symbol)
    found = []
    for path in sorted(directory.iterdir()):
        stem = path.stem.upper()
        if path.suffix.lower() in EXTENSIONS and (stem == symbol or stem.startswith(f"{symbol}_")):
            found.append(BarFile.from_path(path, symbol))
    return found


class CsvBarSource:
    """`BarSource` over a folder of per-symbol CSV exports (rules in the module docstring)."""

    name = SOURCE

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def fetch_bars(
        self, symbols: Sequence[str], timeframe: Timeframe, start: dt.date, end: dt.date
    ) -> pd.DataFrame:
        if not self.directory.is_dir():
            raise SourceDataError(f"csv: bar folder {self.directory} does not exist")
        frames = [self._symbol_bars(symbol, timeframe, start, end) for symbol in symbols]
        return in_regular_session(frames, timeframe, start, end)

    def _symbol_bars(
        self, symbol: str, timeframe: Timeframe, start: dt.date, end: dt.date
    ) -> pd.DataFrame:
        files = bar_files(self.directory, symbol)
        chosen = [f for f in files if f.timeframe == timeframe]
        resample = False
        if not chosen and timeframe == Timeframe.MIN5:
            chosen = [f for f in files if f.timeframe == Timeframe.MIN1]
            resample = True
        if not chosen:
            names = ", ".join(f.path.name for f in files) or "none"
            raise UnknownSymbolError(
                f"csv: no {timeframe.value} bar file for {symbol} in {self.directory} "
                f"(files of {symbol}: {names})"
            )
        per_file = []
        for bar_file in chosen:
            bars = bar_file.read()
            if resample:
                bars = resample_to_5min(bars)
            in_range = (bars["session_date"] >= start) & (bars["session_date"] <= end)
            per_file.append((bar_file, bars[in_range]))
        _refuse_overlaps(per_file, timeframe, start, end)
        return pd.concat([bars for _, bars in per_file], ignore_index=True)


def _refuse_overlaps(
    per_file: list[tuple[BarFile, pd.DataFrame]], timeframe: Timeframe, start: dt.date, end: dt.date
) -> None:
    seen: dict[dt.date, Path] = {}
    for bar_file, bars in per_file:
        for session in sorted(set(bars["session_date"])):
            if session in seen:
                raise SourceDataError(
                    f"csv: {bar_file.symbol} {timeframe.value} {start}..{end}: files "
                    f"{seen[session].name} and {bar_file.path.name} both hold bars of {session}; "
                    "keep one of them in the folder"
                )
        seen.update(dict.fromkeys(set(bars["session_date"]), bar_file.path))


def _fail(bar_file: BarFile, line: int, column: str, problem: str) -> SourceDataError:
    return SourceDataError(
        f"csv: {bar_file.path.name} ({bar_file.symbol}) line {line}, column {column!r}: {problem}"
    )


def _not_utf8(bar_file: BarFile) -> SourceDataError:
    """Where a file stops being UTF-8: its line and the offending byte (found in the whole file:
    a reader's decode error counts from the start of its buffer, not of the file)."""
    raw = bar_file.path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line, byte = raw.count(b"\n", 0, error.start) + 1, raw[error.start]
    else:
        raise AssertionError(f"{bar_file.path} decodes as UTF-8")
    return SourceDataError(
        f"csv: {bar_file.path.name} ({bar_file.symbol}) line {line}: byte 0x{byte:02x} is not"
        " UTF-8; save the export as UTF-8"
    )


def _first_line(mask: pd.Series) -> int:
    """The line number (the table's index) of the first True of `mask`."""
    return int(mask.index.to_numpy()[mask.to_numpy().argmax()])


def _first_text_line(path: Path) -> str:
    with path.open(encoding="utf-8-sig") as handle:
        for line in handle:
            if line.strip():
                return line
    return ""


def _read_bar_file(bar_file: BarFile) -> pd.DataFrame:
    path = bar_file.path
    try:
        first = _first_text_line(path)
    except UnicodeDecodeError:
        raise _not_utf8(bar_file) from None
    if not first:
        raise SourceDataError(f"csv: {path.name} ({bar_file.symbol}) is empty")
    separator = max(",;\t", key=first.count)
    has_header = re.search("[A-Za-z]", first) is not None
    try:
        table = pd.read_csv(
            path,
            sep=separator,
            header=0 if has_header else None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except UnicodeDecodeError:
        raise _not_utf8(bar_file) from None
    except pd.errors.ParserError as error:
        raise SourceDataError(f"csv: {path.name} ({bar_file.symbol}) is not CSV: {error}") from None
    first_data_line = 2 if has_header else 1
    table.index = pd.RangeIndex(first_data_line, first_data_line + len(table))  # = line numbers
    table = table[(table != "").any(axis=1)]
    if has_header:
        table.columns = [str(c).strip().lower() for c in table.columns]
        stamp_column = next((c for c in _DATE_COLUMNS if c in table.columns), None)
        missing = [c for c in _REQUIRED if c not in table.columns]
        if stamp_column is None or missing:
            absent = ([] if stamp_column else ["a date column"]) + missing
            raise _fail(bar_file, 1, ", ".join(absent), "missing from the header")
        text = table[stamp_column].str.strip()
        if stamp_column == "date" and "time" in table.columns:
            # Vendor exports that split the stamp: Date,Time,Open,... (e.g. 2024-03-15,09:30).
            text = text + " " + table["time"].str.strip()
            stamp_column = "date and time"
        stamps = _parse_stamps(bar_file, text, stamp_column)
    else:
        if table.shape[1] != len(_NINJATRADER_COLUMNS):
            raise _fail(
                bar_file,
                first_data_line,
                "*",
                f"a file without header must be a NinjaTrader export with 6 fields "
                f"(yyyyMMdd HHmmss;open;high;low;close;volume), found {table.shape[1]}",
            )
        table.columns = list(_NINJATRADER_COLUMNS)
        stamps = _parse_ninjatrader_stamps(bar_file, table["timestamp"].str.strip())
    frame = pd.DataFrame({"timestamp": stamps}, index=table.index)
    for column in _REQUIRED:
        frame[column] = _parse_numbers(bar_file, table[column], column, required=True)
    for column in _OPTIONAL:
        if column in table.columns:
            frame[column] = _parse_numbers(bar_file, table[column], column, required=False)
    adjustment = _adjustment(bar_file, table, frame)
    return conform(
        frame,
        symbol=bar_file.symbol,
        timeframe=bar_file.timeframe,
        adjustment=adjustment,
        source=SOURCE,
    )


def _parse_numbers(bar_file: BarFile, raw: pd.Series, column: str, required: bool) -> pd.Series:
    text = raw.str.strip()
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & ((text != "") | required)
    if bad.any():
        line = _first_line(bad)
        shown = text[line] or "an empty value"
        raise _fail(bar_file, line, column, f"{shown!r} is not a number")
    return values.astype("float64")


def _first_bad_stamp(bar_file: BarFile, text: pd.Series, parsed: pd.Series, column: str) -> None:
    bad = parsed.isna()
    if bad.any():
        line = _first_line(bad)
        raise _fail(bar_file, line, column, f"{text[line]!r} is not a date/time this source reads")


def _parse_stamps(bar_file: BarFile, text: pd.Series, column: str) -> pd.Series:
    """UTC bar starts (intraday) or New York midnights of the written dates (daily)."""
    has_offset = text.str.contains(_OFFSET, regex=True)
    if not bar_file.timeframe.is_intraday:
        written = pd.to_datetime(
            text.str.replace(_OFFSET, "", regex=True), format="ISO8601", errors="coerce"
        )
        _first_bad_stamp(bar_file, text, written, column)
        return written.dt.normalize().dt.tz_localize(calendar.NEW_YORK)
    if has_offset.any() and not has_offset.all():
        line = _first_line(has_offset != has_offset.iloc[0])
        raise _fail(bar_file, line, column, f"{text[line]!r} mixes naive and offset time stamps")
    if has_offset.all():
        instants = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        _first_bad_stamp(bar_file, text, instants, column)
        return instants
    naive = pd.to_datetime(text, format="ISO8601", errors="coerce")
    _first_bad_stamp(bar_file, text, naive, column)
    return _localize(bar_file, naive, text, column)


def _localize(bar_file: BarFile, naive: pd.Series, text: pd.Series, column: str) -> pd.Series:
    zone = "UTC" if bar_file.naive_is_utc else calendar.NEW_YORK
    local = naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    if local.isna().any():
        line = _first_line(local.isna())
        raise _fail(
            bar_file, line, column, f"{text[line]!r} is ambiguous or skipped in {zone} (DST change)"
        )
    return local.dt.tz_convert("UTC")


def _parse_ninjatrader_stamps(bar_file: BarFile, text: pd.Series) -> pd.Series:
    """NinjaTrader stamps: `yyyyMMdd` (daily) or `yyyyMMdd HHmmss` marking the bar END."""
    if not bar_file.timeframe.is_intraday:
        dates = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
        _first_bad_stamp(bar_file, text, dates, "timestamp")
        return dates.dt.tz_localize(calendar.NEW_YORK)
    ends = pd.to_datetime(text, format="%Y%m%d %H%M%S", errors="coerce")
    _first_bad_stamp(bar_file, text, ends, "timestamp")
    starts = ends - pd.Timedelta(minutes=bar_file.timeframe.minutes or 0)
    return _localize(bar_file, starts, text, "timestamp")


def _adjustment(bar_file: BarFile, table: pd.DataFrame, frame: pd.DataFrame) -> str:
    columns = set(table.columns)
    if {"adj. close", "split ratio"} <= columns:
        return "raw"
    if "adj close" in columns:
        adjusted = pd.to_numeric(table["adj close"].str.strip(), errors="coerce")
        ratio = (frame["close"] / adjusted).loc[frame["timestamp"].sort_values().index]
        step = ratio / ratio.shift(1)
        split_in_closes = ((step > SPLIT_SIZED_JUMP) | (step < 1 / SPLIT_SIZED_JUMP)).any()
        return "raw" if split_in_closes else "split"
    if columns & {"dividends", "stock splits"}:
        return "split_dividend"
    parts = set(_NAME_PARTS.split(bar_file.path.stem[len(bar_file.symbol) :].lower()))
    declared = [_ADJUSTMENT_PARTS[p] for p in sorted(parts & _ADJUSTMENT_PARTS.keys())]
    return declared[0] if declared else "raw"
