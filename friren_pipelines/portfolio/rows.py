"""Pure conversions between the portfolio core and table rows (dicts keyed by column name).

No I/O here: the assets read rows, call these, and write rows (`portfolio.store`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from decimal import Decimal
from typing import Any

import pandas as pd

from friren_pipelines.core import compliance
from friren_pipelines.core.fills import Fill, Side, Split
from friren_pipelines.core.lots import (
    LotsResult,
    Method,
    Position,
    PositionEvent,
    match_lots,
)
from friren_pipelines.core.performance import performance_rows
from friren_pipelines.portfolio.brokers import AccountValues

Row = dict[str, Any]


def fill_row(fill: Fill, source: str) -> Row:
    """A fill as a `fills` row (its account must be set)."""
    if not fill.account:
        raise ValueError(f"fill {fill.exec_id} {fill.symbol} has no account")
    return {
        "account": fill.account,
        "exec_id": fill.exec_id,
        "order_id": fill.order_id,
        "timestamp": fill.timestamp,
        "trade_date": compliance.trade_date(fill.timestamp),
        "settlement_date": compliance.settlement_date(fill.timestamp),
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": fill.qty,
        "price": fill.price,
        "fee": fill.fee,
        "strategy": fill.strategy,
        "source": source,
        "sequence": fill.sequence,
    }


def fill_from_row(row: Mapping[str, Any]) -> Fill:
    """A stored `fills` row back as a `Fill` (money as stored, 18 decimal places)."""
    timestamp = row["timestamp"]
    if isinstance(timestamp, pd.Timestamp):
        timestamp = timestamp.to_pydatetime()
    return Fill(
        timestamp=timestamp.astimezone(dt.UTC),
        symbol=row["symbol"],
        side=Side(row["side"]),
        qty=Decimal(row["qty"]),
        price=Decimal(row["price"]),
        exec_id=row["exec_id"],
        fee=Decimal(row["fee"]),
        order_id=row["order_id"],
        strategy=row["strategy"],
        account=row["account"],
        sequence=int(row["sequence"]),
    )


def by_account(fills: Iterable[Fill]) -> dict[str, list[Fill]]:
    accounts: dict[str, list[Fill]] = {}
    for fill in fills:
        accounts.setdefault(fill.account or "", []).append(fill)
    return dict(sorted(accounts.items()))


def realized_lot_rows(
    fills: Sequence[Fill], method: Method, splits: Sequence[Split] = ()
) -> list[Row]:
    """Closed lots of every account's fills (books per account, symbol, strategy)."""
    result = match_lots(fills, splits, method=method)
    return [
        {
            **asdict(lot),
            "side": lot.side.value,
            "account": lot.account,
            "lot_method": method,
        }
        for lot in result.closed
    ]


def position_rows(
    account: str, positions: Mapping[str, Position], source: str, synced_at: dt.datetime
) -> list[Row]:
    return [
        {
            "account": account,
            "symbol": position.symbol,
            "side": position.side.value,
            "qty": position.qty,
            "avg_entry_price": position.avg_entry_price,
            "source": source,
            "synced_at": synced_at,
        }
        for position in positions.values()
    ]


def positions_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Position]]:
    """Stored `positions` rows (or event rows' `current_*`) as positions per account."""
    found: dict[str, dict[str, Position]] = {}
    for row in rows:
        qty = Decimal(row["qty"])
        if qty:
            position = Position(row["symbol"], qty, Decimal(row["avg_entry_price"]))
            found.setdefault(row["account"], {})[row["symbol"]] = position
    return found


def event_rows(account: str, events: Sequence[PositionEvent], synced_at: dt.datetime) -> list[Row]:
    return [
        {
            **asdict(event),
            "kind": event.kind.value,
            "side": event.side.value,
            "account": account,
            "synced_at": synced_at,
        }
        for event in events
    ]


def snapshot_rows(
    account: str, values: Sequence[AccountValues], recorded_at: dt.datetime
) -> list[Row]:
    return [{**asdict(value), "account": account, "recorded_at": recorded_at} for value in values]


def equity_series(snapshots: Sequence[Mapping[str, Any]]) -> tuple[pd.Series, Decimal | None]:
    """Session-close equity (index: session date) and the initial capital: the equity before
    the first session, i.e. first equity − its day P&L (the first equity if that is unknown)."""
    ordered = sorted(snapshots, key=lambda row: row["session_date"])
    if not ordered:
        return pd.Series([], dtype=object), None
    equity = pd.Series(
        [Decimal(row["equity"]) for row in ordered],
        index=[row["session_date"] for row in ordered],
        dtype=object,
    )
    first = ordered[0]
    initial = Decimal(first["equity"]) - Decimal(first["day_pnl"] or 0)
    return equity, initial


def performance_table_rows(
    account: str,
    *,
    fills: Sequence[Fill],
    method: Method,
    snapshots: Sequence[Mapping[str, Any]],
    marks: Mapping[dt.date, Mapping[str, Decimal]],
    annual_risk_free: float,
    splits: Sequence[Split] = (),
) -> list[Row]:
    """The performance rows of one account (see `core.performance.performance_rows`).

    Without snapshots there is no equity series: equity metrics stay null and the lot
    statistics and P&L remain.
    """
    lots: LotsResult = match_lots(fills, splits, method=method)
    equity, initial = equity_series(snapshots)
    if initial is None or initial <= 0:
        equity, initial = pd.Series([], dtype=object), Decimal(1)
    rows = performance_rows(lots, equity, initial, marks, annual_risk_free)
    return [
        {**asdict(row), "account": account, "annual_risk_free_rate": annual_risk_free}
        for row in rows
    ]


def compliance_rows(account: str, fills: Sequence[Fill], splits: Sequence[Split] = ()) -> list[Row]:
    """Trade counts per day and week; on day rows, the PDT test as of that trade date."""
    rows = []
    for count in compliance.trade_counts(fills, splits):
        row: Row = {**asdict(count), "account": account}
        if count.period == "day":
            status = compliance.pattern_day_trader_status(fills, count.start, splits)
            row.update(
                pdt_window_start=status.window_start,
                pdt_window_day_trades=status.day_trades,
                pdt_window_trades=status.trades,
                day_trade_share=(
                    None if status.day_trade_share is None else float(status.day_trade_share)
                ),
                meets_pdt_test=status.meets_pdt_test,
                rule_set=status.rule_set,
                reason=status.reason,
            )
        rows.append(row)
    return rows


def reconciliation_mismatches(
    ledger: Mapping[str, Position], broker: Mapping[str, Position]
) -> list[str]:
    """'SYMBOL: ledger Q1, broker Q2' for every symbol whose signed quantities differ."""
    problems = []
    for symbol in sorted(set(ledger) | set(broker)):
        mine = ledger[symbol].qty if symbol in ledger else Decimal(0)
        theirs = broker[symbol].qty if symbol in broker else Decimal(0)
        if mine != theirs:
            problems.append(f"{symbol}: ledger {_plain(mine)}, broker {_plain(theirs)}")
    return problems


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"
