"""Every table of the project, declared once: name, columns (Arrow type, nullability, meaning),
key, and where it is stored (Parquet datasets and their folders, the SQL table).

A declaration is the one definition of a table. Writers build Arrow rows with `Table.schema`
(`storage.write` refuses anything else), the Dagster column schema shown in the UI is made from
`columns`, and a test checks that the migrations create exactly these columns, types,
nullability and keys. Adding a table: declare it here, add it to `TABLES`, write the migration
`migrations/NNNN_<name>.sql`, and write it with `storage.write.replace`.

Conventions: instants are UTC (`timestamp[us, UTC]`, TIMESTAMPTZ); dates are New York session
dates. Money, quantities and prices of the ledger are exact decimals (`MONEY`: Arrow
`decimal128(38, 18)`, SQL `NUMERIC(38, 18)`): eighteen places hold every broker string exactly
(Alpaca quotes quantities to 9 places, prices to 4) and leave 20 integer digits; a value that
does not terminate (a fee shared 1/3 : 2/3, a price after a 3:1 split) is rounded half-even to 18
places when stored, an error below 10⁻¹⁸ per value. Bar prices and ratios are float64.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

import pyarrow as pa

from friren_pipelines.core.bars import BAR_SCHEMA, Timeframe
from friren_pipelines.core.indicators import INDICATOR_NAMES

MONEY_SCALE = 18
MONEY = pa.decimal128(38, MONEY_SCALE)
INSTANT = pa.timestamp("us", tz="UTC")
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)

# The time dimension of a timeframe's partitions: a calendar year of daily bars, a week of
# minute bars (keyed by its Monday). README "Partitions" has the arithmetic.
PERIOD_OF: Mapping[Timeframe, str] = {
    Timeframe.DAY1: "year",
    Timeframe.MIN1: "week",
    Timeframe.MIN5: "week",
}


def money(value: Decimal | None) -> Decimal | None:
    """`value` rounded half-even to `MONEY_SCALE` decimal places (None stays None)."""
    if value is None:
        return None
    with localcontext(prec=38):
        return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    nullable: bool
    description: str


@dataclass(frozen=True)
class Table:
    """A table: its columns in order, the columns that identify a row, and where it lives.

    `datasets` maps each Parquet dataset (a folder of the warehouse, a view of `friren sql`) to
    the hive folders below it, one file per folder: `("symbol", "year")` is
    `bars_1d/symbol=AAPL/year=2024/data.parquet`; `()` is one file for the whole dataset. A
    table stored in SQL has a table of its `name` there.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    datasets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    in_sql: bool = True

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        unknown = [k for k in self.key if k not in names]
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: bad key {unknown} or duplicate columns")

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def descriptions(self) -> dict[str, str]:
        return {c.name: c.description for c in self.columns}

    @property
    def dataset(self) -> str:
        """The one Parquet dataset of a table stored in one (see `dataset_for` otherwise)."""
        (only,) = self.datasets
        return only

    def dataset_for(self, timeframe: Timeframe) -> str:
        """The Parquet dataset of a timeframe, for tables kept per timeframe (`bars_1d`, ...)."""
        for name in self.datasets:
            if name.endswith(f"_{timeframe.value}"):
                return name
        raise ValueError(f"table {self.name} has no {timeframe.value} dataset")

    def to_arrow(self, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
        """Rows (dicts) as an Arrow table of this schema; money columns rounded by `money`."""
        decimals = [c.name for c in self.columns if c.type == MONEY]
        prepared = []
        for row in rows:
            record = {name: row.get(name) for name in self.column_names}
            for name in decimals:
                record[name] = money(record[name])
            prepared.append(record)
        return pa.Table.from_pylist(prepared, schema=self.schema)


def _columns(schema: pa.Schema, descriptions: Mapping[str, str]) -> tuple[Column, ...]:
    """Columns of an Arrow schema defined by the core (bars, indicators), with their meanings."""
    missing = [f.name for f in schema if f.name not in descriptions]
    if missing:
        raise ValueError(f"no description for columns {missing}")
    return tuple(Column(f.name, f.type, f.nullable, descriptions[f.name]) for f in schema)


def _per_timeframe(prefix: str) -> dict[str, tuple[str, ...]]:
    return {f"{prefix}_{tf.value}": ("symbol", PERIOD_OF[tf]) for tf in Timeframe}


# --- market data -------------------------------------------------------------------------------

BARS = Table(
    "market_data_bars",
    _columns(
        BAR_SCHEMA,
        {
            "symbol": "Exchange ticker",
            "timeframe": "1min, 5min or 1d",
            "timestamp": "Bar start, UTC (daily bars: the session open)",
            "session_date": "XNYS session the bar belongs to (New York date)",
            "open": "First trade price of the bar",
            "high": "Highest trade price",
            "low": "Lowest trade price",
            "close": "Last trade price",
            "volume": "Shares traded",
            "vwap": "Volume-weighted average price (null when the source has none)",
            "trade_count": "Number of trades (null when the source has none)",
            "adjustment": "raw = as traded; split = split-adjusted; split_dividend = also "
            "dividend-adjusted",
            "source": "Source that delivered the bar: synthetic, csv, yfinance or alpaca",
        },
    ),
    key=("symbol", "timeframe", "timestamp"),
    datasets=_per_timeframe("bars"),
)

SYMBOL_METADATA = Table(
    "symbol_metadata",
    (
        Column("symbol", pa.string(), False, "Exchange ticker"),
        Column("timeframe", pa.string(), False, "1min, 5min or 1d"),
        Column("earliest_bar", INSTANT, True, "Start of the first stored bar, UTC"),
        Column("latest_bar", INSTANT, True, "Start of the last stored bar, UTC"),
        Column("total_bars", pa.int64(), False, "Bars stored"),
        Column("last_fetched_at", INSTANT, False, "When bars of the symbol were last stored, UTC"),
    ),
    key=("symbol", "timeframe"),
)

_INDICATOR_MEANINGS = {
    "rsi_14": "Wilder RSI(14), points 0-100, seeded with the simple mean of the first 14 changes",
    "rsi_9": "Wilder RSI(9), points 0-100",
    "sma_10": "Mean of the last 10 closes, price units",
    "sma_20": "Mean of the last 20 closes",
    "sma_50": "Mean of the last 50 closes",
    "sma_200": "Mean of the last 200 closes",
    "ema_10": "EMA(10), alpha 2/11, seeded with the SMA of the first 10 closes",
    "ema_20": "EMA(20), seeded with the SMA of the first 20 closes",
    "ema_50": "EMA(50), seeded with the SMA of the first 50 closes",
    "macd": "talib.MACD(12, 26, 9) line, price units",
    "macd_signal": "EMA(9) of the MACD line",
    "macd_hist": "macd - macd_signal",
    "bb_upper": "Bollinger(20, 2): SMA20 + 2 population standard deviations",
    "bb_middle": "Bollinger middle band: SMA20",
    "bb_lower": "Bollinger(20, 2): SMA20 - 2 population standard deviations",
}

# Wide, one row per bar, in Parquet: what analysts read. NULL during an indicator's warm-up.
INDICATORS = Table(
    "indicators",
    (
        Column("symbol", pa.string(), False, "Exchange ticker"),
        Column(
            "timestamp", INSTANT, False, "Bar start, UTC (the bar's own timestamp in bars_<tf>)"
        ),
        *(Column(name, pa.float64(), True, _INDICATOR_MEANINGS[name]) for name in INDICATOR_NAMES),
    ),
    key=("symbol", "timestamp"),
    datasets=_per_timeframe("indicators"),
    in_sql=False,
)

# The same in SQL, with the timeframe: one row per bar (migration 0006; the long layout, one row
# per bar and indicator, is the view `market_data_indicators` over it).
INDICATOR_ROWS = Table(
    "market_data_indicators_wide",
    (
        Column("symbol", pa.string(), False, "Exchange ticker"),
        Column("timeframe", pa.string(), False, "1min, 5min or 1d"),
        *INDICATORS.columns[1:],
    ),
    key=("symbol", "timeframe", "timestamp"),
)

# --- portfolio ---------------------------------------------------------------------------------

FILLS = Table(
    "fills",
    (
        Column("account", pa.string(), False, "Account the execution belongs to"),
        Column(
            "exec_id",
            pa.string(),
            False,
            "Execution id, unique per account (derived for CSV rows without one)",
        ),
        Column(
            "order_id",
            pa.string(),
            True,
            "Order the execution belongs to (partial fills share it)",
        ),
        Column("timestamp", INSTANT, False, "Execution time, UTC"),
        Column("trade_date", pa.date32(), False, "XNYS session the fill trades on (New York date)"),
        Column(
            "settlement_date",
            pa.date32(),
            False,
            "Regular-way settlement: T+1 from 2024-05-28, T+2 before",
        ),
        Column("symbol", pa.string(), False, "Ticker"),
        Column("side", pa.string(), False, "buy or sell"),
        Column("qty", MONEY, False, "Shares executed (> 0)"),
        Column("price", MONEY, False, "Execution price per share, USD"),
        Column("fee", MONEY, False, "Total fees of the execution, USD (>= 0)"),
        Column("strategy", pa.string(), False, "Strategy book"),
        Column(
            "source", pa.string(), False, "Where it came from: demo, alpaca, csv (broker) or import"
        ),
        Column("sequence", pa.int64(), False, "Order among fills of the same instant (file order)"),
    ),
    key=("account", "exec_id"),
    datasets={"fills": ("account", "year")},
)

POSITIONS = Table(
    "positions",
    (
        Column("account", pa.string(), False, "Account"),
        Column("symbol", pa.string(), False, "Ticker"),
        Column("side", pa.string(), False, "long or short"),
        Column("qty", MONEY, False, "Signed shares: + long, - short"),
        Column("avg_entry_price", MONEY, False, "Average entry price per share, USD"),
        Column(
            "source",
            pa.string(),
            False,
            "broker (as the broker reports it) or ledger (rebuilt from fills)",
        ),
        Column("synced_at", INSTANT, False, "When this state was taken, UTC"),
    ),
    key=("account", "symbol"),
    datasets={"positions": ()},
)

POSITION_EVENTS = Table(
    "position_events",
    (
        Column("account", pa.string(), False, "Account"),
        Column("synced_at", INSTANT, False, "Sync that saw the change, UTC"),
        Column("symbol", pa.string(), False, "Ticker"),
        Column("kind", pa.string(), False, "open, increase, decrease, close or flip"),
        Column("side", pa.string(), False, "Side after the event (the closed side for close)"),
        Column("previous_qty", MONEY, False, "Signed shares before (0 = flat)"),
        Column("current_qty", MONEY, False, "Signed shares after (0 = flat)"),
        Column("change", MONEY, False, "current_qty - previous_qty"),
        Column("previous_avg_price", MONEY, True, "Average entry price before (null when flat)"),
        Column("current_avg_price", MONEY, True, "Average entry price after (null when flat)"),
    ),
    key=("account", "symbol", "synced_at"),
    datasets={"position_events": ()},
)

PORTFOLIO_SNAPSHOTS = Table(
    "portfolio_snapshots",
    (
        Column("account", pa.string(), False, "Account"),
        Column("session_date", pa.date32(), False, "XNYS session (values at its close)"),
        Column("equity", MONEY, False, "Account equity, USD"),
        Column("cash", MONEY, True, "Cash, USD (null when the source has none: Alpaca history)"),
        Column("buying_power", MONEY, True, "Buying power, USD (null when the source has none)"),
        Column("long_market_value", MONEY, True, "Market value of long positions, USD (>= 0)"),
        Column("short_market_value", MONEY, True, "Market value of short positions, USD (<= 0)"),
        Column("day_pnl", MONEY, True, "Equity change over the session, USD"),
        Column(
            "source", pa.string(), False, "demo, alpaca_history or alpaca_account (live, cached)"
        ),
        Column("recorded_at", INSTANT, False, "When the snapshot was taken, UTC"),
    ),
    key=("account", "session_date"),
    datasets={"portfolio_snapshots": ("account", "year")},
)

REALIZED_LOTS = Table(
    "realized_lots",
    (
        Column("symbol", pa.string(), False, "Ticker"),
        Column("side", pa.string(), False, "long or short: the side of the lot that was closed"),
        Column(
            "qty",
            MONEY,
            False,
            "Shares closed (post-split shares if the lot lived through a split)",
        ),
        Column("open_time", INSTANT, False, "Time of the opening fill, UTC"),
        Column("close_time", INSTANT, False, "Time of the closing fill, UTC"),
        Column(
            "open_price",
            MONEY,
            False,
            "Entry price per share, USD (FIFO: the opening fill's; average: the pool's)",
        ),
        Column("close_price", MONEY, False, "Exit price per share, USD"),
        Column("fees", MONEY, False, "Opening and closing fees, pro rata by quantity, USD"),
        Column(
            "realized_pnl",
            MONEY,
            False,
            "Net of fees, USD: long qty*(close-open)-fees, short qty*(open-close)-fees",
        ),
        Column("strategy", pa.string(), False, "Strategy book"),
        Column("holding_seconds", pa.int64(), False, "Whole seconds from open to close"),
        Column("account", pa.string(), False, "Account"),
        Column("open_exec_id", pa.string(), False, "Execution that opened the lot"),
        Column("close_exec_id", pa.string(), False, "Execution that closed it"),
        Column("lot_method", pa.string(), False, "fifo or average"),
    ),
    # A closing execution closes at most one lot per opening execution.
    key=(),
    datasets={"realized_lots": ()},
)

PERFORMANCE = Table(
    "performance",
    (
        Column("account", pa.string(), False, "Account"),
        Column("scope", pa.string(), False, "account, day, symbol or strategy"),
        Column("key", pa.string(), False, "'all', an ISO session date, a ticker or a strategy"),
        Column("realized_pnl", MONEY, False, "Sum of the closed lots' net realized P&L, USD"),
        Column(
            "unrealized_pnl",
            MONEY,
            True,
            "Price P&L of open lots at the closing marks, USD (null: no mark)",
        ),
        Column("closed_lots", pa.int64(), False, "Closed lots counted"),
        Column("win_rate", pa.float64(), True, "Lots with P&L > 0 / closed lots"),
        Column(
            "profit_factor",
            pa.float64(),
            True,
            "Gross profit / |gross loss| (null: see profit_factor_note)",
        ),
        Column(
            "profit_factor_note",
            pa.string(),
            True,
            "'no losing lots' or 'no closed lots' when undefined",
        ),
        Column("average_win", MONEY, True, "Mean P&L of winning lots, USD"),
        Column("average_loss", MONEY, True, "Mean P&L of losing lots, USD (< 0)"),
        Column("equity", MONEY, True, "Session-close equity, USD (account and day rows)"),
        Column("daily_return", pa.float64(), True, "Simple return of the session (0.01 = +1 %)"),
        Column(
            "total_return", pa.float64(), True, "Equity / initial capital - 1, through the session"
        ),
        Column("sharpe", pa.float64(), True, "mean(excess daily return)/std(ddof 1)*sqrt(252)"),
        Column("sortino", pa.float64(), True, "mean(excess)/downside deviation*sqrt(252)"),
        Column(
            "max_drawdown",
            pa.float64(),
            True,
            "Deepest fall from the running peak (starts at initial capital), <= 0",
        ),
        Column("calmar", pa.float64(), True, "Annualized return / |max drawdown|"),
        Column(
            "annual_risk_free_rate",
            pa.float64(),
            False,
            "Annual risk-free rate used (compounded per session)",
        ),
    ),
    key=("account", "scope", "key"),
    datasets={"performance": ()},
)

COMPLIANCE = Table(
    "compliance",
    (
        Column("account", pa.string(), False, "Account"),
        Column(
            "period", pa.string(), False, "day (a trade date) or week (ISO week, by its Monday)"
        ),
        Column("start", pa.date32(), False, "The trade date, or the Monday of the week"),
        Column("trades", pa.int64(), False, "Orders (partial fills of one order are one trade)"),
        Column("fills", pa.int64(), False, "Executions"),
        Column(
            "day_trades",
            pa.int64(),
            False,
            "Day trades completed in the period (FINRA change-of-direction count)",
        ),
        Column(
            "pdt_window_start",
            pa.date32(),
            True,
            "Day rows: first session of the 5-session PDT window",
        ),
        Column("pdt_window_day_trades", pa.int64(), True, "Day rows: day trades in the window"),
        Column("pdt_window_trades", pa.int64(), True, "Day rows: trades in the window"),
        Column(
            "day_trade_share", pa.float64(), True, "Day rows: window day trades / window trades"
        ),
        Column(
            "meets_pdt_test", pa.bool_(), True, "Day rows: pattern-day-trader test met on that date"
        ),
        Column("rule_set", pa.string(), True, "Day rows: the PDT rule set in force that date"),
        Column("reason", pa.string(), True, "Day rows: the test in words"),
    ),
    key=("account", "period", "start"),
    datasets={"compliance": ()},
)

SPLITS = Table(
    "splits",
    (
        Column("symbol", pa.string(), False, "Ticker"),
        Column(
            "effective",
            INSTANT,
            False,
            "When the split applies: midnight New York of its ex-date, UTC",
        ),
        Column("numerator", MONEY, False, "New shares (4 in a 4:1 split)"),
        Column(
            "denominator",
            MONEY,
            False,
            "Old shares (1 in a 4:1 split; 10 in a 1:10 reverse split)",
        ),
    ),
    key=("symbol", "effective"),
    datasets={"splits": ()},
)

# --- storage ------------------------------------------------------------------------------------

STORAGE_JOURNAL = Table(
    "storage_journal",
    (
        Column(
            "write_id", pa.string(), False, "The write (storage.write.replace) the file belongs to"
        ),
        Column(
            "target", pa.string(), False, "Partition file to replace, relative to the warehouse"
        ),
        Column(
            "staged",
            pa.string(),
            True,
            "Staged temporary to rename over it, relative to the warehouse (null: remove it)",
        ),
    ),
    key=("write_id", "target"),
)

TABLES: tuple[Table, ...] = (
    BARS,
    SYMBOL_METADATA,
    INDICATORS,
    INDICATOR_ROWS,
    FILLS,
    POSITIONS,
    POSITION_EVENTS,
    PORTFOLIO_SNAPSHOTS,
    REALIZED_LOTS,
    PERFORMANCE,
    COMPLIANCE,
    SPLITS,
    STORAGE_JOURNAL,
)
