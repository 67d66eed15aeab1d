"""The portfolio tables: one definition of each table's columns, their types and meaning.

Each table is a Parquet dataset of the same name in the warehouse (so `friren sql` sees a view
`fills`, `realized_lots`, ...) and a SQL table of the same name (migration 0003_portfolio).

Money, quantities and prices are exact decimals: Arrow `decimal128(38, 18)`, SQL
`NUMERIC(38, 18)`. Eighteen decimal places hold every broker string exactly (Alpaca quotes
quantities to 9 places, prices to 4) and leave 20 integer digits. The lot core works with 34
significant digits; a value that does not terminate (a fee shared 1/3 : 2/3, a price after a 3:1
split) is rounded half-even to 18 places when stored, an error below 10⁻¹⁸ per value. Ratios
(returns, Sharpe, ...) are float64. Instants are UTC (`timestamp[us, UTC]`, TIMESTAMPTZ), dates
are New York session dates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

import pyarrow as pa

from friren_pipelines.market_data.metadata import column_schema

MONEY_SCALE = 18
MONEY = pa.decimal128(38, MONEY_SCALE)
INSTANT = pa.timestamp("us", tz="UTC")
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


def money(value: Decimal | None) -> Decimal | None:
    """`value` rounded half-even to `MONEY_SCALE` decimal places (None stays None)."""
    if value is None:
        return None
    with localcontext(prec=38):
        return value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Table:
    """A portfolio table: its name (dataset and SQL table) and its columns in order."""

    name: str
    columns: tuple[tuple[str, pa.DataType, bool, str], ...]  # name, type, nullable, meaning

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, t, nullable=null) for n, t, null, _ in self.columns])

    @property
    def column_schema(self) -> Any:
        return column_schema(self.schema, {n: meaning for n, _, _, meaning in self.columns})

    def to_arrow(self, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
        """Rows (dicts) as an Arrow table of this schema; money columns rounded by `money`."""
        decimals = [n for n, t, _, _ in self.columns if t == MONEY]
        prepared = []
        for row in rows:
            record = {name: row.get(name) for name, _, _, _ in self.columns}
            for name in decimals:
                record[name] = money(record[name])
            prepared.append(record)
        return pa.Table.from_pylist(prepared, schema=self.schema)


FILLS = Table(
    "fills",
    (
        ("account", pa.string(), False, "Account the execution belongs to"),
        (
            "exec_id",
            pa.string(),
            False,
            "Execution id, unique per account (derived for CSV rows without one)",
        ),
        ("order_id", pa.string(), True, "Order the execution belongs to (partial fills share it)"),
        ("timestamp", INSTANT, False, "Execution time, UTC"),
        ("trade_date", pa.date32(), False, "XNYS session the fill trades on (New York date)"),
        (
            "settlement_date",
            pa.date32(),
            False,
            "Regular-way settlement: T+1 from 2024-05-28, T+2 before",
        ),
        ("symbol", pa.string(), False, "Ticker"),
        ("side", pa.string(), False, "buy or sell"),
        ("qty", MONEY, False, "Shares executed (> 0)"),
        ("price", MONEY, False, "Execution price per share, USD"),
        ("fee", MONEY, False, "Total fees of the execution, USD (>= 0)"),
        ("strategy", pa.string(), False, "Strategy book"),
        ("source", pa.string(), False, "Where it came from: demo, alpaca, csv (broker) or import"),
        ("sequence", pa.int64(), False, "Order among fills of the same instant (file order)"),
    ),
)

POSITIONS = Table(
    "positions",
    (
        ("account", pa.string(), False, "Account"),
        ("symbol", pa.string(), False, "Ticker"),
        ("side", pa.string(), False, "long or short"),
        ("qty", MONEY, False, "Signed shares: + long, - short"),
        ("avg_entry_price", MONEY, False, "Average entry price per share, USD"),
        (
            "source",
            pa.string(),
            False,
            "broker (as the broker reports it) or ledger (rebuilt from fills)",
        ),
        ("synced_at", INSTANT, False, "When this state was taken, UTC"),
    ),
)

POSITION_EVENTS = Table(
    "position_events",
    (
        ("account", pa.string(), False, "Account"),
        ("synced_at", INSTANT, False, "Sync that saw the change, UTC"),
        ("symbol", pa.string(), False, "Ticker"),
        ("kind", pa.string(), False, "open, increase, decrease, close or flip"),
        ("side", pa.string(), False, "Side after the event (the closed side for close)"),
        ("previous_qty", MONEY, False, "Signed shares before (0 = flat)"),
        ("current_qty", MONEY, False, "Signed shares after (0 = flat)"),
        ("change", MONEY, False, "current_qty - previous_qty"),
        ("previous_avg_price", MONEY, True, "Average entry price before (null when flat)"),
        ("current_avg_price", MONEY, True, "Average entry price after (null when flat)"),
    ),
)

PORTFOLIO_SNAPSHOTS = Table(
    "portfolio_snapshots",
    (
        ("account", pa.string(), False, "Account"),
        ("session_date", pa.date32(), False, "XNYS session (values at its close)"),
        ("equity", MONEY, False, "Account equity, USD"),
        ("cash", MONEY, True, "Cash, USD (null when the source has none: Alpaca history)"),
        ("buying_power", MONEY, True, "Buying power, USD (null when the source has none)"),
        ("long_market_value", MONEY, True, "Market value of long positions, USD (>= 0)"),
        ("short_market_value", MONEY, True, "Market value of short positions, USD (<= 0)"),
        ("day_pnl", MONEY, True, "Equity change over the session, USD"),
        ("source", pa.string(), False, "demo, alpaca_history or alpaca_account (live, cached)"),
        ("recorded_at", INSTANT, False, "When the snapshot was taken, UTC"),
    ),
)

REALIZED_LOTS = Table(
    "realized_lots",
    (
        ("symbol", pa.string(), False, "Ticker"),
        ("side", pa.string(), False, "long or short: the side of the lot that was closed"),
        ("qty", MONEY, False, "Shares closed (post-split shares if the lot lived through a split)"),
        ("open_time", INSTANT, False, "Time of the opening fill, UTC"),
        ("close_time", INSTANT, False, "Time of the closing fill, UTC"),
        (
            "open_price",
            MONEY,
            False,
            "Entry price per share, USD (FIFO: the opening fill's; average: the pool's)",
        ),
        ("close_price", MONEY, False, "Exit price per share, USD"),
        ("fees", MONEY, False, "Opening and closing fees, pro rata by quantity, USD"),
        (
            "realized_pnl",
            MONEY,
            False,
            "Net of fees, USD: long qty*(close-open)-fees, short qty*(open-close)-fees",
        ),
        ("strategy", pa.string(), False, "Strategy book"),
        ("holding_seconds", pa.int64(), False, "Whole seconds from open to close"),
        ("account", pa.string(), False, "Account"),
        ("open_exec_id", pa.string(), False, "Execution that opened the lot"),
        ("close_exec_id", pa.string(), False, "Execution that closed it"),
        ("lot_method", pa.string(), False, "fifo or average"),
    ),
)

PERFORMANCE = Table(
    "performance",
    (
        ("account", pa.string(), False, "Account"),
        ("scope", pa.string(), False, "account, day, symbol or strategy"),
        ("key", pa.string(), False, "'all', an ISO session date, a ticker or a strategy"),
        ("realized_pnl", MONEY, False, "Sum of the closed lots' net realized P&L, USD"),
        (
            "unrealized_pnl",
            MONEY,
            True,
            "Price P&L of open lots at the closing marks, USD (null: no mark)",
        ),
        ("closed_lots", pa.int64(), False, "Closed lots counted"),
        ("win_rate", pa.float64(), True, "Lots with P&L > 0 / closed lots"),
        (
            "profit_factor",
            pa.float64(),
            True,
            "Gross profit / |gross loss| (null: see profit_factor_note)",
        ),
        (
            "profit_factor_note",
            pa.string(),
            True,
            "'no losing lots' or 'no closed lots' when undefined",
        ),
        ("average_win", MONEY, True, "Mean P&L of winning lots, USD"),
        ("average_loss", MONEY, True, "Mean P&L of losing lots, USD (< 0)"),
        ("equity", MONEY, True, "Session-close equity, USD (account and day rows)"),
        ("daily_return", pa.float64(), True, "Simple return of the session (0.01 = +1 %)"),
        ("total_return", pa.float64(), True, "Equity / initial capital - 1, through the session"),
        ("sharpe", pa.float64(), True, "mean(excess daily return)/std(ddof 1)*sqrt(252)"),
        ("sortino", pa.float64(), True, "mean(excess)/downside deviation*sqrt(252)"),
        (
            "max_drawdown",
            pa.float64(),
            True,
            "Deepest fall from the running peak (starts at initial capital), <= 0",
        ),
        ("calmar", pa.float64(), True, "Annualized return / |max drawdown|"),
        (
            "annual_risk_free_rate",
            pa.float64(),
            False,
            "Annual risk-free rate used (compounded per session)",
        ),
    ),
)

COMPLIANCE = Table(
    "compliance",
    (
        ("account", pa.string(), False, "Account"),
        ("period", pa.string(), False, "day (a trade date) or week (ISO week, by its Monday)"),
        ("start", pa.date32(), False, "The trade date, or the Monday of the week"),
        ("trades", pa.int64(), False, "Orders (partial fills of one order are one trade)"),
        ("fills", pa.int64(), False, "Executions"),
        (
            "day_trades",
            pa.int64(),
            False,
            "Day trades completed in the period (FINRA change-of-direction count)",
        ),
        (
            "pdt_window_start",
            pa.date32(),
            True,
            "Day rows: first session of the 5-session PDT window",
        ),
        ("pdt_window_day_trades", pa.int64(), True, "Day rows: day trades in the window"),
        ("pdt_window_trades", pa.int64(), True, "Day rows: trades in the window"),
        ("day_trade_share", pa.float64(), True, "Day rows: window day trades / window trades"),
        ("meets_pdt_test", pa.bool_(), True, "Day rows: pattern-day-trader test met on that date"),
        ("rule_set", pa.string(), True, "Day rows: the PDT rule set in force that date"),
        ("reason", pa.string(), True, "Day rows: the test in words"),
    ),
)

ALL_TABLES = (
    FILLS,
    POSITIONS,
    POSITION_EVENTS,
    PORTFOLIO_SNAPSHOTS,
    REALIZED_LOTS,
    PERFORMANCE,
    COMPLIANCE,
)


SPLITS = Table(
    "splits",
    (
        ("symbol", pa.string(), False, "Ticker"),
        (
            "effective",
            INSTANT,
            False,
            "When the split applies: midnight New York of its ex-date, UTC",
        ),
        ("numerator", MONEY, False, "New shares (4 in a 4:1 split)"),
        ("denominator", MONEY, False, "Old shares (1 in a 4:1 split; 10 in a 1:10 reverse split)"),
    ),
)
