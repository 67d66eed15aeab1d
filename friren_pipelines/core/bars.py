"""OHLCV bars: the one definition of their columns, timeframes and validation rules.

A bars frame is a pandas DataFrame with exactly `BAR_COLUMNS`, sorted by (symbol, timestamp).
`timestamp` is the bar start in UTC; `session_date` is the XNYS session the bar belongs to
(New York date). Daily bars start at the session open. `adjustment` states whether prices
are as traded (`raw`), split-adjusted (`split`) or split- and dividend-adjusted (`split_dividend`).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from friren_pipelines.core import calendar


class Timeframe(enum.StrEnum):
    MIN1 = "1min"
    MIN5 = "5min"
    DAY1 = "1d"

    @property
    def minutes(self) -> int | None:
        """Bar length in minutes for intraday timeframes, None for daily bars."""
        return {"1min": 1, "5min": 5}.get(self.value)

    @property
    def is_intraday(self) -> bool:
        return self.minutes is not None

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        aliases = {"1m": "1min", "5m": "5min", "1day": "1d", "1D": "1d", "day": "1d"}
        value = aliases.get(text.strip(), text.strip())
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(t.value for t in cls)
            raise ValueError(f"unknown timeframe {text!r}; allowed: {allowed}") from None


ADJUSTMENTS = ("raw", "split", "split_dividend")

BAR_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("timeframe", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("session_date", pa.date32(), nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.float64(), nullable=False),
        pa.field("vwap", pa.float64()),
        pa.field("trade_count", pa.int64()),
        pa.field("adjustment", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)
BAR_COLUMNS: tuple[str, ...] = tuple(BAR_SCHEMA.names)
PRICE_COLUMNS = ("open", "high", "low", "close")

# Symbols are exchange tickers: letters and digits with '.', '-' or '/' for share classes
# (BRK.B, BF-B). Anything else (paths, SQL, pipes) is refused before it reaches a file or query.
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9]{0,9}([.\-][A-Z0-9]{1,4})?$")


def normalize_symbol(text: str) -> str:
    """Upper-cased ticker, or ValueError naming the symbol and the accepted shape."""
    symbol = text.strip().upper()
    if not _SYMBOL.match(symbol):
        raise ValueError(
            f"invalid symbol {text!r}: expected a ticker of letters and digits, optionally with "
            "a '.' or '-' class suffix (e.g. AAPL, BRK.B)"
        )
    return symbol


def empty_bars() -> pd.DataFrame:
    return BAR_SCHEMA.empty_table().to_pandas()


def to_arrow(bars: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table with exactly `BAR_SCHEMA` (column order, types, UTC µs)."""
    frame = bars.loc[:, list(BAR_COLUMNS)]
    table = pa.Table.from_pandas(frame, schema=BAR_SCHEMA, preserve_index=False)
    return table.replace_schema_metadata(None)


def from_arrow(table: pa.Table) -> pd.DataFrame:
    return table.select(list(BAR_COLUMNS)).cast(BAR_SCHEMA).to_pandas()


def conform(
    frame: pd.DataFrame,
    *,
    timeframe: Timeframe,
    adjustment: str,
    source: str,
    symbol: str | None = None,
) -> pd.DataFrame:
    """Give a source's frame the bar columns and types.

    `frame` needs `timestamp` (tz-aware) and open/high/low/close/volume; vwap and trade_count are
    optional; `symbol` names the frame's one symbol, or None when the frame has a symbol column.
    The session date is derived from the timestamp; daily bars are re-stamped at their session
    open so that every source labels a day the same way.
    """
    if adjustment not in ADJUSTMENTS:
        raise ValueError(f"adjustment {adjustment!r} is not one of {ADJUSTMENTS}")
    out = pd.DataFrame(index=frame.index)
    out["symbol"] = frame["symbol"] if symbol is None else symbol
    out["timeframe"] = timeframe.value
    stamps = pd.to_datetime(frame["timestamp"], utc=True).dt.as_unit("us")
    local_days = stamps.dt.tz_convert(calendar.NEW_YORK).dt.tz_localize(None).dt.normalize()
    # Dates and opens are looked up once per distinct day (`.dt.date` boxes every row).
    day_of_row, days = pd.factorize(local_days, use_na_sentinel=False)
    if not timeframe.is_intraday and len(stamps):
        opens = _session_table(pd.DatetimeIndex(days))["open"].dt.as_unit("us").array
        opens = pd.Series(opens.take(day_of_row), index=stamps.index)
        # Non-sessions keep their own stamp so that validation can name them.
        stamps = opens.where(opens.notna(), stamps)
    out["timestamp"] = stamps
    out["session_date"] = np.array([day.date() for day in days], dtype=object)[day_of_row]
    for column in (*PRICE_COLUMNS, "volume", "vwap"):
        if column in frame:
            out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        else:
            out[column] = np.nan
    if "trade_count" in frame:
        out["trade_count"] = pd.to_numeric(frame["trade_count"], errors="coerce").astype("Int64")
    else:
        out["trade_count"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    out["adjustment"] = adjustment
    out["source"] = source
    order = _bar_order(pd.factorize(out["symbol"], sort=True)[0], _utc_stamps(out["timestamp"]))
    return (out if order is None else out.take(order)).reset_index(drop=True)


def resample_to_5min(bars: pd.DataFrame) -> pd.DataFrame:
    """Conformed 1-minute bars (any number of symbols) as conformed 5-minute bars.

    A 5-minute bar starts on a 5-minute mark: open first, high max, low min, close last, volume
    and trade count summed, vwap weighted by volume. Adjustment and source are the first row's.
    """
    if bars.empty:
        return bars.assign(timeframe=Timeframe.MIN5.value)
    ordered = bars.sort_values(["symbol", "timestamp"], kind="stable")
    bucket = ordered["timestamp"].dt.floor("5min")
    traded = ordered["vwap"] * ordered["volume"]
    grouped = ordered.assign(traded=traded, bucket=bucket).groupby(["symbol", "bucket"], sort=True)
    volume = grouped["volume"].sum()
    frame = pd.DataFrame(
        {
            "symbol": volume.index.get_level_values("symbol"),
            "timestamp": volume.index.get_level_values("bucket"),
            "open": grouped["open"].first().to_numpy(),
            "high": grouped["high"].max().to_numpy(),
            "low": grouped["low"].min().to_numpy(),
            "close": grouped["close"].last().to_numpy(),
            "volume": volume.to_numpy(),
            "vwap": (grouped["traded"].sum(min_count=1) / volume.where(volume > 0)).to_numpy(),
            "trade_count": grouped["trade_count"].sum(min_count=1).to_numpy(),
        }
    )
    first = bars.iloc[0]
    return conform(
        frame,
        timeframe=Timeframe.MIN5,
        adjustment=str(first["adjustment"]),
        source=str(first["source"]),
    )


class Severity(enum.StrEnum):
    ERROR = "error"  # the bars are unusable: nothing of the batch is stored
    WARNING = "warning"  # a real-data quirk: stored as delivered, and reported


@dataclass(frozen=True)
class BarIssue:
    """One rule broken by some bars of one symbol: how often, and where first."""

    rule: str
    severity: Severity
    symbol: str
    session: dt.date | None
    count: int
    first_row: str

    def __str__(self) -> str:
        where = f"{self.symbol} {self.session}" if self.session else self.symbol
        return f"bars for {where}: {self.count} {self.rule} (first at {self.first_row})"


class BarValidationError(ValueError):
    """Bars broke an ERROR rule; carries every issue found so the message can name them all."""

    def __init__(self, issues: list[BarIssue]):
        self.issues = issues
        super().__init__("; ".join(str(issue) for issue in issues))


REQUIRED_COLUMNS = ("symbol", "timestamp", *PRICE_COLUMNS, "volume")
PRICE_JUMP_LIMIT = 0.5  # |close/previous close - 1| above this is reported (Qlib's threshold)
VOLUME_SPIKE_LIMIT = 3.0  # volume above this multiple of the previous bar's is reported

# rule name → severity; names read as "bars for X: 3 <rule>".
RULES: dict[str, Severity] = {
    "rows with a null price": Severity.ERROR,
    "rows with an infinite price": Severity.ERROR,
    "rows with a non-positive price": Severity.ERROR,
    "rows with a missing, infinite or negative volume": Severity.ERROR,
    "rows with high < low": Severity.ERROR,
    "duplicate timestamps": Severity.ERROR,
    "bars outside the trading session": Severity.ERROR,
    "rows with open or close outside [low, high]": Severity.WARNING,
    "price jumps over 50%": Severity.WARNING,
    "volume spikes over 3x": Severity.WARNING,
}


def _describe(stamp: pd.Timestamp, prices: dict[str, float]) -> str:
    when = stamp.tz_convert(calendar.NEW_YORK).strftime("%Y-%m-%d %H:%M %Z")
    text = " ".join(f"{c[0]}={v:g}" for c, v in prices.items() if pd.notna(v))
    return f"{when} {text}".strip()


def _utc_stamps(stamps: pd.Series) -> np.ndarray:
    """Tz-aware stamps as naive UTC datetime64 (compared without boxing each stamp)."""
    return stamps.dt.tz_convert(None).to_numpy()


def _bar_order(symbol_codes: np.ndarray, stamps: np.ndarray) -> np.ndarray | None:
    """Row positions in (symbol, timestamp) order as a stable `sort_values` gives them, or None
    when the rows are in that order already (the usual case, checked in one pass).

    `symbol_codes` come from `pd.factorize(..., sort=True)`; missing symbols (-1) and stamps
    (NaT) sort last, as pandas puts them.
    """
    symbols = np.where(symbol_codes < 0, np.iinfo(np.intp).max, symbol_codes)
    times = np.where(np.isnat(stamps), np.iinfo(np.int64).max, stamps.view(np.int64))
    step = np.diff(symbols)
    if np.all((step > 0) | ((step == 0) & (times[1:] >= times[:-1]))):
        return None
    return np.lexsort((times, symbols))


def _session_table(days: pd.DatetimeIndex) -> pd.DataFrame:
    """`open` and `close` (UTC) of the session on each naive New York date, NaT for non-sessions."""
    table = calendar.session_table(days.min().date(), days.max().date())
    return table.reindex(days)


def _outside_session(
    session_dates: pd.Series, stamps: np.ndarray, timeframe: Timeframe
) -> np.ndarray:
    """`outside_session` over naive UTC `stamps`, one calendar look-up per distinct session."""
    if not len(stamps):
        return np.zeros(0, dtype=bool)
    session_of_row, sessions = pd.factorize(session_dates, use_na_sentinel=False)
    table = _session_table(pd.DatetimeIndex(sessions.astype("datetime64[s]")))
    # In the stamps' unit: numpy compares mixed units several times slower.
    opens = _utc_stamps(table["open"]).astype(stamps.dtype)[session_of_row]
    if timeframe.is_intraday:
        closes = _utc_stamps(table["close"]).astype(stamps.dtype)[session_of_row]
        return ~((stamps >= opens) & (stamps < closes))
    return ~(stamps == opens)  # NaT (no session, or no stamp) compares unequal


def outside_session(bars: pd.DataFrame, timeframe: Timeframe) -> pd.Series:
    """True for bars not in their session: intraday bars outside [open, close), daily bars not
    stamped at their session's open, and bars dated on a day that is not a session."""
    stamps = _utc_stamps(bars["timestamp"])
    return pd.Series(_outside_session(bars["session_date"], stamps, timeframe), index=bars.index)


def _rule_masks(
    values: dict[str, np.ndarray], stamps: np.ndarray, symbol_codes: np.ndarray, outside: np.ndarray
) -> dict[str, np.ndarray]:
    """Rows breaking each rule of `RULES`; all arrays in (symbol, timestamp) order."""
    open_, high, low, close, volume = (values[c] for c in (*PRICE_COLUMNS, "volume"))
    prices = np.stack([open_, high, low, close])
    # Each symbol's first bar has no previous bar: it never jumps, spikes or repeats a stamp.
    first = np.ones(len(volume), dtype=bool)
    first[1:] = symbol_codes[1:] != symbol_codes[:-1]
    previous_close = np.where(first, np.nan, np.roll(close, 1))
    previous_volume = np.where(first, np.nan, np.roll(volume, 1))
    times = stamps.view(np.int64)  # NaT equals NaT here, as in `duplicated`
    repeated = ~first
    repeated[1:] &= times[1:] == times[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        jumps = np.abs(close / previous_close - 1) > PRICE_JUMP_LIMIT
    return {
        "rows with a null price": np.isnan(prices).any(axis=0),
        "rows with an infinite price": np.isinf(prices).any(axis=0),
        "rows with a non-positive price": (prices <= 0).any(axis=0),
        "rows with a missing, infinite or negative volume": np.isnan(volume)
        | np.isinf(volume)
        | (volume < 0),
        "rows with high < low": high < low,
        "duplicate timestamps": repeated,
        "bars outside the trading session": outside,
        "rows with open or close outside [low, high]": (high >= low)
        & ((open_ < low) | (close < low) | (open_ > high) | (close > high)),
        "price jumps over 50%": jumps,
        "volume spikes over 3x": (previous_volume > 0)
        & (volume > VOLUME_SPIKE_LIMIT * previous_volume),
    }


def validate_bars(bars: pd.DataFrame, timeframe: Timeframe) -> list[BarIssue]:
    """Every rule of `RULES` that some bars break, per symbol, errors first.

    Missing required columns are reported as a single ERROR issue (nothing else can be checked).
    Bars without a symbol are not reported.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in bars.columns]
    if missing:
        symbol = str(bars["symbol"].iloc[0]) if "symbol" in bars and len(bars) else "?"
        return [
            BarIssue(
                rule=f"missing required columns ({', '.join(missing)})",
                severity=Severity.ERROR,
                symbol=symbol,
                session=None,
                count=len(missing),
                first_row="the header",
            )
        ]
    if bars.empty:
        return []
    symbol_codes, symbols = pd.factorize(bars["symbol"], sort=True)
    stamps = _utc_stamps(bars["timestamp"])
    outside = _outside_session(bars["session_date"], stamps, timeframe)
    order = _bar_order(symbol_codes, stamps)
    rows = np.arange(len(bars)) if order is None else order  # positions in `bars`, in order
    symbol_codes = symbol_codes[rows]
    values = {
        c: bars[c].to_numpy(dtype="float64", na_value=np.nan)[rows]
        for c in (*PRICE_COLUMNS, "volume")
    }
    masks = _rule_masks(values, stamps[rows], symbol_codes, outside[rows])
    found: list[tuple[str, int, int, int]] = []  # rule, symbol code, count, first row in `bars`
    for rule, mask in masks.items():
        hits = np.flatnonzero(mask)
        hits = hits[symbol_codes[hits] >= 0]
        starts = np.flatnonzero(np.diff(symbol_codes[hits], prepend=-1))
        counts = np.diff(starts, append=hits.size)
        for start, count in zip(starts, counts, strict=True):
            found.append((rule, int(symbol_codes[hits[start]]), int(count), int(rows[hits[start]])))
    firsts = bars.iloc[[first for *_, first in found]]
    cells = {c: firsts[c].tolist() for c in ("timestamp", "session_date", *PRICE_COLUMNS)}
    issues = [
        BarIssue(
            rule=rule,
            severity=RULES[rule],
            symbol=str(symbols[code]),
            session=cells["session_date"][i],
            count=count,
            first_row=_describe(
                pd.Timestamp(cells["timestamp"][i]), {c: cells[c][i] for c in PRICE_COLUMNS}
            ),
        )
        for i, (rule, code, count, _) in enumerate(found)
    ]
    return sorted(issues, key=lambda issue: issue.severity != Severity.ERROR)


def last_finished_bar(timeframe: Timeframe, now: pd.Timestamp) -> pd.Timestamp | None:
    """Start of the last bar that has closed by `now` (a daily bar closes at its session's close).

    Bars after it are still forming: storing them would keep a partial bar as if final.
    """
    today = calendar.session_of(now)
    for session in reversed(calendar.sessions(today - dt.timedelta(days=10), today)):
        open_, close = calendar.session_bounds(session)
        if timeframe == Timeframe.DAY1:
            if close <= now:
                return open_
            continue
        minutes = timeframe.minutes or 1
        starts = calendar.bar_starts(session, minutes)
        finished = starts[starts + pd.Timedelta(minutes=minutes) <= now]
        if len(finished):
            return pd.Timestamp(finished[-1])
    return None


def raise_on_errors(issues: list[BarIssue]) -> list[BarIssue]:
    """Raise `BarValidationError` for ERROR issues; return the warnings to report."""
    errors = [issue for issue in issues if issue.severity == Severity.ERROR]
    if errors:
        raise BarValidationError(errors)
    return [issue for issue in issues if issue.severity == Severity.WARNING]
