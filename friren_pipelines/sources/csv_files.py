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
A file that is not UTF-8 is refused naming the line and the first byte that is not.

Speed
    A fetch lists the folder once and reads all its files in parallel with pyarrow's CSV reader
    (every field as text; the reader releases the GIL); the text of all files is then converted
    column by column in one pass (numbers with Arrow's correctly rounded parser, the same doubles
    as Python's `float`), so the cost per file is little more than the read.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import itertools
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

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
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_TEXT_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Close/Adj Close moving by more than this between two rows means a split sits in raw closes;
# dividends move it by a few percent at most.
SPLIT_SIZED_JUMP = 1.4
# The dates pandas reads at microsecond resolution, 0001-01-01..9999-12-31, in days since 1970.
_DAYS_PANDAS_READS = (-719_162, 2_932_896)


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


class BarFolder:
    """The bar files of a folder, listed once: finding a symbol's files is a look-up."""

    def __init__(self, directory: Path):
        self._paths: dict[str, list[Path]] = {}
        for path in sorted(directory.iterdir()):
            if path.suffix.lower() not in EXTENSIONS:
                continue
            stem = path.stem.upper()
            # The symbols the file may belong to: its whole stem, and each part before a `_`.
            owners = {stem} | {stem[:i] for i, char in enumerate(stem) if char == "_"}
            for owner in owners:
                self._paths.setdefault(owner, []).append(path)

    def files(self, symbol: str) -> list[BarFile]:
        """The files of `symbol` (naming rule in the module docstring), in name order."""
        symbol = normalize_symbol(symbol)
        return [BarFile.from_path(path, symbol) for path in self._paths.get(symbol, [])]


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
        folder = BarFolder(self.directory)
        # Errors are raised in the order a symbol-by-symbol read would meet them: a symbol that
        # cannot be served only after the files of the symbols before it proved readable.
        plan: list[list[BarFile]] = []
        unserved: Exception | None = None
        for symbol in symbols:
            try:
                plan.append(self._chosen_files(folder, symbol, timeframe))
            except (ValueError, UnknownSymbolError) as error:
                unserved = error
                break
        read = _read_bar_files(list(dict.fromkeys(f for files in plan for f in files)))
        # Files are conformed together per adjustment; 1-minute files serving a 5-minute request
        # are resampled one by one (a symbol asked twice gives its bars twice, as it always did).
        groups: dict[tuple[str, Timeframe, int], list[tuple[_FileBars, np.ndarray]]] = {}
        for files in plan:
            in_range = []
            for bar_file in files:
                bars = read[bar_file]
                if isinstance(bars, Exception):
                    raise bars
                in_range.append((bars, bars.in_range(start, end)))
            _refuse_overlaps(in_range, timeframe, start, end)
            for bars, rows in in_range:
                resampled = bars.bar_file.timeframe != timeframe
                key = (bars.adjustment, bars.bar_file.timeframe, len(groups) if resampled else -1)
                groups.setdefault(key, []).append((bars, rows))
        if unserved is not None:
            raise unserved
        frames = []
        for (adjustment, file_timeframe, _), parts in groups.items():
            frame = conform(
                _frame(parts), timeframe=file_timeframe, adjustment=adjustment, source=SOURCE
            )
            frames.append(resample_to_5min(frame) if file_timeframe != timeframe else frame)
        return in_regular_session(frames, timeframe, start, end)

    def _chosen_files(self, folder: BarFolder, symbol: str, timeframe: Timeframe) -> list[BarFile]:
        """The files serving `symbol` at `timeframe` (1-minute files for a 5-minute request
        without 5-minute files: they are resampled)."""
        files = folder.files(symbol)
        chosen = [f for f in files if f.timeframe == timeframe]
        if not chosen and timeframe == Timeframe.MIN5:
            chosen = [f for f in files if f.timeframe == Timeframe.MIN1]
        if not chosen:
            symbol = normalize_symbol(symbol)
            names = ", ".join(f.path.name for f in files) or "none"
            raise UnknownSymbolError(
                f"csv: no {timeframe.value} bar file for {symbol} in {self.directory} "
                f"(files of {symbol}: {names})"
            )
        return chosen


@dataclass(frozen=True)
class _FileBars:
    """The bars of one file, converted: UTC bar starts, New York session dates, numbers."""

    bar_file: BarFile
    starts: np.ndarray  # naive UTC datetime64 (daily bars: New York midnight of the date)
    sessions: np.ndarray  # datetime64[D]
    numbers: dict[str, np.ndarray]  # float64: the required columns and the optional ones present
    adjustment: str

    def in_range(self, start: dt.date, end: dt.date) -> np.ndarray:
        """Positions of the rows whose session lies in [start, end]."""
        first, last = np.datetime64(start, "D"), np.datetime64(end, "D")
        return np.flatnonzero((self.sessions >= first) & (self.sessions <= last))


def _frame(parts: list[tuple[_FileBars, np.ndarray]]) -> pd.DataFrame:
    """The chosen rows of many files as one frame for `core.bars.conform`; an optional column a
    file lacks is NaN in its rows, as `conform` fills it for a frame without that column."""
    lengths = [len(rows) for _, rows in parts]
    symbols = np.array([bars.bar_file.symbol for bars, _ in parts], dtype=object)
    columns: dict[str, object] = {
        "symbol": np.repeat(symbols, lengths),
        "timestamp": pd.DatetimeIndex(
            np.concatenate([bars.starts[rows] for bars, rows in parts])
        ).tz_localize("UTC"),
    }
    for column in (*_REQUIRED, *_OPTIONAL):
        if any(column in bars.numbers for bars, _ in parts):
            columns[column] = np.concatenate(
                [
                    bars.numbers[column][rows]
                    if column in bars.numbers
                    else np.full(len(rows), np.nan)
                    for bars, rows in parts
                ]
            )
        else:
            columns[column] = np.full(sum(lengths), np.nan)
    return pd.DataFrame(columns)


def _refuse_overlaps(
    per_file: list[tuple[_FileBars, np.ndarray]],
    timeframe: Timeframe,
    start: dt.date,
    end: dt.date,
) -> None:
    if len(per_file) < 2:
        return
    seen: dict[dt.date, Path] = {}
    for bars, rows in per_file:
        sessions = [day.item() for day in np.unique(bars.sessions[rows])]
        for session in sessions:
            if session in seen:
                raise SourceDataError(
                    f"csv: {bars.bar_file.symbol} {timeframe.value} {start}..{end}: files "
                    f"{seen[session].name} and {bars.bar_file.path.name} both hold bars of "
                    f"{session}; keep one of them in the folder"
                )
        seen.update(dict.fromkeys(sessions, bars.bar_file.path))


@dataclass
class _FileText:
    """One file's fields as written, rows in file order; rows of empty fields are dropped."""

    bar_file: BarFile
    raw: bytes
    header_line: int | None  # the header's line number, None for a headerless file
    columns: set[str]  # lower-cased names (NinjaTrader's for a headerless file)
    stamp_column: str  # as errors name it: a column, or "date and time"
    stamps: pa.Array  # text as written (trimmed and joined for separate date and time)
    numbers: dict[str, pa.Array]  # the required and optional number columns present, as written
    adj_close: pa.Array | None
    kept: np.ndarray | None = None  # the reader's row of each kept row, when rows were dropped

    def fail(self, row: int, column: str, problem: str) -> SourceDataError:
        return _fail(self.bar_file, self.line(row), column, problem)

    def line(self, row: int) -> int:
        """The line number (1 = first line) of row `row`."""
        return self._data_lines[int(self.kept[row]) if self.kept is not None else row]

    @cached_property
    def _data_lines(self) -> list[int]:
        # The reader skips empty lines; a header, when present, is the first one it reads.
        lines = _LINE_BREAK.split(self.raw.removeprefix(b"\xef\xbb\xbf"))
        written = [number for number, line in enumerate(lines, start=1) if line]
        return written[1:] if self.header_line is not None else written


def _fail(bar_file: BarFile, line: int, column: str, problem: str) -> SourceDataError:
    return SourceDataError(
        f"csv: {bar_file.path.name} ({bar_file.symbol}) line {line}, column {column!r}: {problem}"
    )


def _not_utf8(bar_file: BarFile, raw: bytes) -> SourceDataError:
    """Where a file stops being UTF-8: its line and the offending byte."""
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


def _first_text_line(text: str) -> tuple[int, str]:
    """The first line that is not blank, and its number; (0, "") for a blank file."""
    number, start = 1, 0
    while start < len(text):
        match = _TEXT_LINE_BREAK.search(text, start)
        end = match.end() if match else len(text)
        if text[start:end].strip():
            return number, text[start:end].rstrip("\r\n")
        number, start = number + 1, end
    return 0, ""


def _trim(text: pa.Array) -> pa.Array:
    """`str.strip` of every value (the ASCII kernel, ~30x faster, when all text is ASCII)."""
    if pc.all(pc.string_is_ascii(text)).as_py() is not False:
        return pc.ascii_trim_whitespace(text)
    return pc.utf8_trim_whitespace(text)


@dataclass(frozen=True)
class _Read:
    """A file as the reader left it: bytes, text, where its first line is, its table of text."""

    bar_file: BarFile
    raw: bytes
    first_line: int
    has_header: bool
    table: pa.Table


def _read_table(bar_file: BarFile) -> _Read | Exception:
    """Read one file (in a worker thread: little Python, so the threads do not queue for the
    GIL), or the error that stops it."""
    try:
        return _read(bar_file)
    except Exception as error:  # raised by the caller in file order
        return error


def _read(bar_file: BarFile) -> _Read:
    path = bar_file.path
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _not_utf8(bar_file, raw) from None
    first_line, first = _first_text_line(text)
    if not first:
        raise SourceDataError(f"csv: {path.name} ({bar_file.symbol}) is empty")
    separator = max(",;\t", key=first.count)
    has_header = re.search("[A-Za-z]", first) is not None
    names = next(csv.reader([first], delimiter=separator))
    if has_header:
        read_options = pa_csv.ReadOptions(use_threads=False)
    elif len(names) != len(_NINJATRADER_COLUMNS):
        raise _fail(
            bar_file,
            first_line,
            "*",
            f"a file without header must be a NinjaTrader export with 6 fields "
            f"(yyyyMMdd HHmmss;open;high;low;close;volume), found {len(names)}",
        )
    else:
        names = list(_NINJATRADER_COLUMNS)
        read_options = pa_csv.ReadOptions(use_threads=False, column_names=names)
    try:
        table = _text_table(raw, separator, names, read_options)
    except pa.ArrowInvalid as error:
        raise SourceDataError(f"csv: {path.name} ({bar_file.symbol}) is not CSV: {error}") from None
    if table is None:  # rows with fewer fields than the header: the missing ones are empty
        table = _padded_table(text, separator, has_header)
    return _Read(bar_file, raw, first_line, has_header, table)


def _file_text(read: _Read) -> _FileText:
    """The file's columns by lower-cased name, its layout checked."""
    bar_file, first_line, has_header = read.bar_file, read.first_line, read.has_header
    table = read.table.combine_chunks()
    kept = None
    if table.num_rows and pc.any(pc.equal(table.column(0), "")).as_py():
        empty = (
            functools.reduce(pc.and_, [pc.equal(column, "") for column in table.columns])
            if table.num_columns > 1
            else pc.equal(table.column(0), "")
        )
        kept = np.flatnonzero(~empty.to_numpy(zero_copy_only=False))
        table = table.take(kept)
    columns: dict[str, pa.Array] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        text_column = column if column.type == pa.string() else column.cast(pa.string())
        columns.setdefault(name.strip().lower(), text_column.combine_chunks())
    if has_header:
        stamp_column = next((c for c in _DATE_COLUMNS if c in columns), None)
        missing = [c for c in _REQUIRED if c not in columns]
        if stamp_column is None or missing:
            absent = ([] if stamp_column else ["a date column"]) + missing
            raise _fail(bar_file, first_line, ", ".join(absent), "missing from the header")
        stamps = columns[stamp_column]
        if stamp_column == "date" and "time" in columns:
            # Vendor exports that split the stamp: Date,Time,Open,... (e.g. 2024-03-15,09:30).
            stamps = pc.binary_join_element_wise(_trim(stamps), _trim(columns["time"]), " ")
            stamp_column = "date and time"
    else:
        stamp_column, stamps = "timestamp", columns["timestamp"]
    return _FileText(
        bar_file=bar_file,
        raw=read.raw,
        header_line=first_line if has_header else None,
        columns=set(columns),
        stamp_column=stamp_column,
        stamps=stamps,
        numbers={c: columns[c] for c in (*_REQUIRED, *_OPTIONAL) if c in columns},
        adj_close=columns.get("adj close"),
        kept=kept,
    )


def _text_table(
    raw: bytes, separator: str, names: list[str], read_options: pa_csv.ReadOptions
) -> pa.Table | None:
    """Every field as text (empty lines skipped), or None if a row has fewer fields than the
    header; a row with more fields raises `ArrowInvalid`."""
    short_rows: list[int | None] = []

    def invalid_row(row: pa_csv.InvalidRow) -> str:
        if row.actual_columns > row.expected_columns:
            return "error"
        short_rows.append(row.number)
        return "skip"

    table = pa_csv.read_csv(
        pa.BufferReader(raw),
        read_options=read_options,
        parse_options=pa_csv.ParseOptions(delimiter=separator, invalid_row_handler=invalid_row),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return None if short_rows else table


def _padded_table(text: str, separator: str, has_header: bool) -> pa.Table:
    """The slow path of a ragged file: Python's csv reader, short rows padded with empty fields."""
    rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=separator) if row]
    names = rows.pop(0) if has_header else list(_NINJATRADER_COLUMNS)
    fields = [row + [""] * (len(names) - len(row)) for row in rows]
    columns = (
        [pa.array(column, pa.string()) for column in zip(*fields, strict=True)]
        if fields
        else [pa.array([], pa.string())] * len(names)
    )
    return pa.Table.from_arrays(columns, names=names)


def _file_text_or_error(read: _Read | Exception) -> _FileText | Exception:
    if isinstance(read, Exception):
        return read
    try:
        return _file_text(read)
    except Exception as error:  # raised by the caller in file order
        return error


def _read_bar_files(files: list[BarFile]) -> dict[BarFile, _FileBars | Exception]:
    """Every file's bars, or the first error the file holds, in the order a reader of that file
    alone meets them: its layout, its stamps, then its number columns left to right."""
    with ThreadPoolExecutor() as pool:
        # Each table is taken apart here as it arrives, while the threads read the next ones.
        read = {
            f: _file_text_or_error(table)
            for f, table in zip(files, pool.map(_read_table, files), strict=True)
        }
    texts = [text for text in read.values() if isinstance(text, _FileText)]
    starts = _all_starts(texts)
    numbers: dict[BarFile, dict[str, np.ndarray]] = {t.bar_file: {} for t in texts}
    number_errors: dict[BarFile, SourceDataError] = {}
    for column in (*_REQUIRED, *_OPTIONAL):
        having = [t for t in texts if column in t.numbers]
        parsed = _all_numbers(having, column, required=column in _REQUIRED)
        for text, parsed_column in zip(having, parsed, strict=True):
            if isinstance(parsed_column, SourceDataError):
                number_errors.setdefault(text.bar_file, parsed_column)
            else:
                numbers[text.bar_file][column] = parsed_column
    adjusted = [t for t in texts if t.adj_close is not None]
    adj_closes = dict(zip([t.bar_file for t in adjusted], _all_coerced(adjusted), strict=True))
    bars: dict[BarFile, _FileBars | Exception] = {}
    for bar_file, file_text in read.items():
        if isinstance(file_text, Exception):
            bars[bar_file] = file_text
            continue
        found = starts[bar_file]
        if isinstance(found, Exception):
            bars[bar_file] = found
        elif bar_file in number_errors:
            bars[bar_file] = number_errors[bar_file]
        else:
            utc, sessions = found
            values = numbers[bar_file]
            bars[bar_file] = _FileBars(
                bar_file=bar_file,
                starts=utc,
                sessions=sessions,
                numbers=values,
                adjustment=_adjustment(file_text, values["close"], utc, adj_closes.get(bar_file)),
            )
    return bars


def _bounds(arrays: Sequence[pa.Array] | Sequence[np.ndarray]) -> np.ndarray:
    """Start offsets of each array in their concatenation, and its length last."""
    return np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)


def _split(values: np.ndarray, bounds: np.ndarray) -> Sequence[np.ndarray]:
    """`values` cut back into the arrays `bounds` came from."""
    return [values[a:b] for a, b in itertools.pairwise(bounds)]


def _all_numbers(
    texts: list[_FileText], column: str, required: bool
) -> list[np.ndarray | SourceDataError]:
    """The column of every file as float64, parsed in one pass; per file only on a bad value."""
    if not texts:
        return []
    arrays = [t.numbers[column] for t in texts]
    bounds = _bounds(arrays)
    text = _trim(pa.concat_arrays(arrays))
    try:
        written = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        values = pc.cast(written, pa.float64())
    except pa.ArrowInvalid:
        values = None
    if values is not None:
        array = values.to_numpy(zero_copy_only=False)
        # NaN is either an empty field or a written "nan", which is no price either.
        bad = np.isnan(array)
        if not required:
            bad &= ~pc.is_null(values).to_numpy(zero_copy_only=False)
        if not bad.any():
            return list(_split(array, bounds))
    return [_file_numbers(t, column, required) for t in texts]


def _file_numbers(text: _FileText, column: str, required: bool) -> np.ndarray | SourceDataError:
    """One file's column as float64, or the error naming its first value that is not a number."""
    written = pd.Series(text.numbers[column].to_numpy(zero_copy_only=False), dtype=object)
    written = written.str.strip()
    values = pd.to_numeric(written, errors="coerce")
    bad = values.isna() & ((written != "") | required)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        shown = written[row] or "an empty value"
        return text.fail(row, column, f"{shown!r} is not a number")
    return values.to_numpy(dtype="float64")


def _all_starts(texts: list[_FileText]) -> dict[BarFile, tuple[np.ndarray, np.ndarray] | Exception]:
    """(naive UTC bar starts, session dates) of every file, or the error of its first bad stamp.

    Daily files with a header are parsed together; the others (intraday, NinjaTrader) per file.
    """
    found: dict[BarFile, tuple[np.ndarray, np.ndarray] | Exception] = {}
    daily = [t for t in texts if not t.bar_file.timeframe.is_intraday and t.header_line]
    good: list[tuple[BarFile, np.ndarray]] = []
    for text, days in zip(daily, _written_days(daily), strict=True):
        if isinstance(days, Exception):
            found[text.bar_file] = days
        else:
            good.append((text.bar_file, days))
    if good:
        days = np.concatenate([days for _, days in good])
        # New York midnights as UTC instants: one time-zone conversion for all daily files.
        midnights = pd.DatetimeIndex(days.astype("datetime64[s]")).tz_localize(calendar.NEW_YORK)
        utc = _split(midnights.tz_convert(None).to_numpy(), _bounds([d for _, d in good]))
        for (bar_file, file_days), file_utc in zip(good, utc, strict=True):
            found[bar_file] = (file_utc, file_days)
    for text in texts:
        if text.bar_file in found:
            continue
        try:
            stamps = _file_stamps(text)
        except Exception as error:  # raised by the caller in file order
            found[text.bar_file] = error
            continue
        utc = stamps.dt.tz_convert(None).to_numpy()
        local = stamps.dt.tz_convert(calendar.NEW_YORK).dt.tz_localize(None).dt.normalize()
        found[text.bar_file] = (utc, local.to_numpy().astype("datetime64[D]"))
    return found


def _written_days(texts: list[_FileText]) -> list[np.ndarray | Exception]:
    """The date written in each daily stamp (time and offset ignored), as datetime64[D].

    All files in one pass: plain `yyyy-mm-dd` through Arrow's date parser, anything else through
    pandas' ISO 8601 parser; a file with a stamp neither reads is parsed alone for its error.
    """
    if not texts:
        return []
    arrays = [t.stamps for t in texts]
    bounds = _bounds(arrays)
    stamps = _trim(pa.concat_arrays(arrays))
    days = None
    lengths = pc.min_max(pc.binary_length(stamps)).as_py()
    if lengths == {"min": 10, "max": 10}:
        try:
            dates = pc.cast(stamps, pa.date32())
        except pa.ArrowInvalid:
            dates = None
        if dates is not None:
            numbers = dates.cast(pa.int32()).to_numpy()
            if numbers.min() >= _DAYS_PANDAS_READS[0] and numbers.max() <= _DAYS_PANDAS_READS[1]:
                days = numbers.astype("datetime64[D]")
    if days is None:
        without_offset = pc.replace_substring_regex(stamps, pattern=_OFFSET, replacement="")
        try:
            parsed = pd.to_datetime(
                without_offset.to_numpy(zero_copy_only=False), format="ISO8601", errors="coerce"
            )
        except (ValueError, TypeError):
            parsed = None
        if parsed is not None and parsed.tz is None and not parsed.isna().any():
            days = parsed.normalize().to_numpy().astype("datetime64[D]")
    if days is None:
        return [_file_written_days(t) for t in texts]
    return list(_split(days, bounds))


def _file_written_days(text: _FileText) -> np.ndarray | Exception:
    try:
        stamps = _stamp_series(text)
        written = pd.to_datetime(
            stamps.str.replace(_OFFSET, "", regex=True), format="ISO8601", errors="coerce"
        )
        _first_bad_stamp(text, stamps, written, text.stamp_column)
        local = written.dt.normalize().dt.tz_localize(calendar.NEW_YORK).dt.tz_localize(None)
    except Exception as error:  # raised by the caller in file order
        return error
    return local.to_numpy().astype("datetime64[D]")


def _stamp_series(text: _FileText) -> pd.Series:
    return pd.Series(text.stamps.to_numpy(zero_copy_only=False), dtype=object).str.strip()


def _first_bad_stamp(text: _FileText, stamps: pd.Series, parsed: pd.Series, column: str) -> None:
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(bad.argmax())
        raise text.fail(row, column, f"{stamps[row]!r} is not a date/time this source reads")


def _file_stamps(text: _FileText) -> pd.Series:
    """Tz-aware bar starts of an intraday or NinjaTrader file."""
    stamps = _stamp_series(text)
    if text.header_line is None:
        return _parse_ninjatrader_stamps(text, stamps)
    column = text.stamp_column
    has_offset = stamps.str.contains(_OFFSET, regex=True)
    if has_offset.any() and not has_offset.all():
        row = int((has_offset != has_offset.iloc[0]).to_numpy().argmax())
        raise text.fail(row, column, f"{stamps[row]!r} mixes naive and offset time stamps")
    if has_offset.all():
        instants = pd.to_datetime(stamps, format="ISO8601", utc=True, errors="coerce")
        _first_bad_stamp(text, stamps, instants, column)
        return instants
    naive = pd.to_datetime(stamps, format="ISO8601", errors="coerce")
    _first_bad_stamp(text, stamps, naive, column)
    return _localize(text, naive, stamps, column)


def _localize(text: _FileText, naive: pd.Series, stamps: pd.Series, column: str) -> pd.Series:
    zone = "UTC" if text.bar_file.naive_is_utc else calendar.NEW_YORK
    local = naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    if local.isna().any():
        row = int(local.isna().to_numpy().argmax())
        raise text.fail(
            row, column, f"{stamps[row]!r} is ambiguous or skipped in {zone} (DST change)"
        )
    return local.dt.tz_convert("UTC")


def _parse_ninjatrader_stamps(text: _FileText, stamps: pd.Series) -> pd.Series:
    """NinjaTrader stamps: `yyyyMMdd` (daily) or `yyyyMMdd HHmmss` marking the bar END."""
    timeframe = text.bar_file.timeframe
    if not timeframe.is_intraday:
        dates = pd.to_datetime(stamps, format="%Y%m%d", errors="coerce")
        _first_bad_stamp(text, stamps, dates, "timestamp")
        return dates.dt.tz_localize(calendar.NEW_YORK)
    ends = pd.to_datetime(stamps, format="%Y%m%d %H%M%S", errors="coerce")
    _first_bad_stamp(text, stamps, ends, "timestamp")
    starts = ends - pd.Timedelta(minutes=timeframe.minutes or 0)
    return _localize(text, starts, stamps, "timestamp")


def _all_coerced(texts: list[_FileText]) -> list[np.ndarray]:
    """Every file's `Adj Close` as float64, NaN where a value is not a number (the column is
    only compared, never stored), parsed in one pass."""
    if not texts:
        return []
    arrays = [t.adj_close for t in texts]
    text = _trim(pa.concat_arrays(arrays))
    try:
        written = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        values = pc.cast(written, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return [_coerced(column) for column in arrays]
    return list(_split(values, _bounds(arrays)))


def _coerced(column: pa.Array) -> np.ndarray:
    """`pd.to_numeric(errors="coerce")` of the stripped text, as float64."""
    written = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object).str.strip()
    return pd.to_numeric(written, errors="coerce").to_numpy(dtype="float64")


def _adjustment(
    text: _FileText, close: np.ndarray, starts: np.ndarray, adj_close: np.ndarray | None
) -> str:
    columns = text.columns
    if {"adj. close", "split ratio"} <= columns:
        return "raw"
    if adj_close is not None:
        # Rows in time order as `Series.sort_values` gives them (the default quicksort).
        order = np.argsort(starts.view(np.int64), kind="quicksort")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (close / adj_close)[order]
            step = ratio[1:] / ratio[:-1]
        split_in_closes = bool(((step > SPLIT_SIZED_JUMP) | (step < 1 / SPLIT_SIZED_JUMP)).any())
        return "raw" if split_in_closes else "split"
    if columns & {"dividends", "stock splits"}:
        return "split_dividend"
    bar_file = text.bar_file
    parts = set(_NAME_PARTS.split(bar_file.path.stem[len(bar_file.symbol) :].lower()))
    declared = [_ADJUSTMENT_PARTS[p] for p in sorted(parts & _ADJUSTMENT_PARTS.keys())]
    return declared[0] if declared else "raw"
