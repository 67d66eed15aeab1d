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
    optional; `symbol` names the frame's one symbol, or None when the frame has a symbol column. The session date is derived from the timestamp; daily bars are re-stamped at their
    session open so that every source labels a day the same way.
    """
    if adjustment not in ADJUSTMENTS:
        raise ValueError(f"adjustment {adjustment!r} is not one of {ADJUSTMENTS}")
    out = pd.DataFrame(index=frame.index)
    out["symbol"] = frame["symbol"] if symbol is None else symbol
    out["timeframe"] = timeframe.value
    stamps = pd.to_datetime(frame["timestamp"], utc=True).dt.as_unit("us")
    local_days = stamps.dt.tz_convert(calendar.NEW_YORK).dt.tz_localize(None).dt.normalize()
    if not timeframe.is_intraday and len(stamps):
        table = calendar.session_table(local_days.min().date(), local_days.max().date())
        opens = table["open"].reindex(pd.DatetimeIndex(local_days)).set_axis(stamps.index)
        # Non-sessions keep their own stamp so that validation can name them.
        opens = opens.dt.tz_convert("UTC").dt.as_unit("us")
        stamps = opens.where(opens.notna(), stamps)
    out["timestamp"] = stamps
    out["session_date"] = local_days.dt.date
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
    return out.sort_values(["symbol", "timestamp"], kind="stable").reset_index(drop=True)


def resample_to_5min(bars: pd.DataFrame) -> pd.DataFrame:
    """Conformed 1-minute bars of one symbol as conformed 5-minute bars.

    A 5-minute bar starts on a 5-minute mark: open first, high max, low min, close last, volume
    and trade count summed, vwap weighted by volume. Adjustment and source are kept.
    """
    if bars.empty:
        return bars.assign(timeframe=Timeframe.MIN5.value)
    ordered = bars.sort_values("timestamp", kind="stable")
    bucket = ordered["timestamp"].dt.floor("5min")
    traded = ordered["vwap"] * ordered["volume"]
    grouped = ordered.assign(traded=traded).groupby(bucket, sort=True)
    volume = grouped["volume"].sum()
    frame = pd.DataFrame(
        {
            "timestamp": volume.index,
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
        symbol=str(first["symbol"]),
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


def _describe(row: pd.Series) -> str:
    stamp = pd.Timestamp(row["timestamp"])
    when = stamp.tz_convert(calendar.NEW_YORK).strftime("%Y-%m-%d %H:%M %Z")
    prices = " ".join(f"{c[0]}={row[c]:g}" for c in PRICE_COLUMNS if c in row and pd.notna(row[c]))
    return f"{when} {prices}".strip()


def outside_session(bars: pd.DataFrame, timeframe: Timeframe) -> pd.Series:
    """True for bars not in their session: intraday bars outside [open, close), daily bars not
    stamped at their session's open, and bars dated on a day that is not a session."""
    sessions = pd.to_datetime(bars["session_date"].astype("datetime64[s]"))
    if sessions.empty:
        return pd.Series(False, index=bars.index)
    table = calendar.session_table(sessions.min().date(), sessions.max().date())
    opens = table["open"].reindex(pd.DatetimeIndex(sessions)).to_numpy()
    closes = table["close"].reindex(pd.DatetimeIndex(sessions)).to_numpy()
    stamps = bars["timestamp"].to_numpy()
    known = ~pd.isna(opens)
    inside = np.zeros(len(bars), dtype=bool)
    if timeframe.is_intraday:
        inside[known] = (stamps[known] >= opens[known]) & (stamps[known] < closes[known])
    else:
        inside[known] = stamps[known] == opens[known]
    return pd.Series(~inside, index=bars.index)


def _rule_masks(bars: pd.DataFrame, timeframe: Timeframe) -> dict[str, pd.Series]:
    prices = bars[list(PRICE_COLUMNS)]
    low, high = bars["low"], bars["high"]
    close = bars["close"]
    previous_close = close.groupby(bars["symbol"]).shift(1)
    previous_volume = bars["volume"].groupby(bars["symbol"]).shift(1)
    volume = bars["volume"]
    return {
        "rows with a null price": prices.isna().any(axis=1),
        "rows with an infinite price": np.isinf(prices).any(axis=1),
        "rows with a non-positive price": (prices <= 0).any(axis=1),
        "rows with a missing, infinite or negative volume": volume.isna()
        | np.isinf(volume)
        | (volume < 0),
        "rows with high < low": high < low,
        "duplicate timestamps": bars.duplicated(["symbol", "timestamp"], keep="first"),
        "bars outside the trading session": outside_session(bars, timeframe),
        "rows with open or close outside [low, high]": (high >= low)
        & (
            (bars[["open", "close"]].lt(low, axis=0)) | bars[["open", "close"]].gt(high, axis=0)
        ).any(axis=1),
        "price jumps over 50%": (close / previous_close - 1).abs() > PRICE_JUMP_LIMIT,
        "volume spikes over 3x": (previous_volume > 0)
        & (bars["volume"] > VOLUME_SPIKE_LIMIT * previous_volume),
    }


def validate_bars(bars: pd.DataFrame, timeframe: Timeframe) -> list[BarIssue]:
    """Every rule of `RULES` that some bars break, per symbol, errors first.

    Missing required columns are reported as a single ERROR issue (nothing else can be checked).
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
    ordered = bars.sort_values(["symbol", "timestamp"], kind="stable")
    issues: list[BarIssue] = []
    for rule, mask in _rule_masks(ordered, timeframe).items():
        hits = ordered[mask.fillna(False).astype(bool)]
        for group, rows in hits.groupby("symbol", sort=True):
            first = rows.iloc[0]
            issues.append(
                BarIssue(
                    rule=rule,
                    severity=RULES[rule],
                    symbol=str(group),
                    session=first["session_date"],
                    count=len(rows),
                    first_row=_describe(first),
                )
            )
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
