"""Performance metrics: pure functions over a daily equity series and closed lots.

Conventions shared by every function
- `equity` is a pandas Series of account equity at each session's close, indexed by session
  date in ascending order (values Decimal or float, account currency). `initial_capital` is the
  equity before the first session; it is the base of the first return and the first peak.
- Returns are simple returns (E_t / E_{t-1} − 1), one per equity point, as floats.
- Annualisation uses `TRADING_DAYS_PER_YEAR` = 252 periods a year.
- The annual risk-free rate `rf` (a fraction, 0.05 = 5 %) is converted to a per-period rate by
  compounding: (1 + rf)^(1/252) − 1.
- Ratios are floats; money (P&L sums, average win/loss) stays Decimal. A ratio that is not
  defined (too few periods, a zero denominator) is None, never inf or NaN.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, Literal

import numpy as np
import pandas as pd

from friren_pipelines.core import calendar
from friren_pipelines.core.lots import LEDGER_PRECISION, ClosedLot, LotsResult, OpenLot

TRADING_DAYS_PER_YEAR = 252
NO_LOSING_LOTS = "no losing lots"
NO_CLOSED_LOTS = "no closed lots"
ZERO = Decimal(0)


def _values(equity: pd.Series) -> np.ndarray:
    return np.array([float(value) for value in equity], dtype="float64")


def daily_returns(equity: pd.Series, initial_capital: Decimal | float) -> pd.Series:
    """Simple return of each session: E_t / E_{t−1} − 1, with E_{−1} = `initial_capital`.

    Same index as `equity`; floats (0.01 = +1 %).
    """
    values = _values(equity)
    previous = np.concatenate(([float(initial_capital)], values[:-1]))
    return pd.Series(values / previous - 1.0, index=equity.index, dtype="float64")


def total_return(equity: pd.Series, initial_capital: Decimal | float) -> float | None:
    """Last equity / initial capital − 1 (a fraction; 0.25 = +25 %); None for an empty series."""
    if equity.empty:
        return None
    return float(equity.iloc[-1]) / float(initial_capital) - 1.0


def per_period_risk_free(
    annual_risk_free: float, periods_per_year: int = TRADING_DAYS_PER_YEAR
) -> float:
    """The per-period rate compounding to `annual_risk_free`: (1 + rf)^(1/periods) − 1."""
    return float((1.0 + annual_risk_free) ** (1.0 / periods_per_year) - 1.0)


def _excess(returns: pd.Series, annual_risk_free: float, periods_per_year: int) -> np.ndarray:
    return returns.to_numpy(dtype="float64") - per_period_risk_free(
        annual_risk_free, periods_per_year
    )


def sharpe_ratio(
    returns: pd.Series,
    annual_risk_free: float = 0.0,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
) -> float | None:
    """Annualised Sharpe ratio: mean(excess) / std(excess, ddof=1) × √periods_per_year.

    excess = return − per-period risk-free rate (see `per_period_risk_free`). None with fewer
    than two returns or a zero standard deviation.
    """
    excess = _excess(returns, annual_risk_free, periods_per_year)
    if len(excess) < 2:
        return None
    deviation = float(np.std(excess, ddof=1))
    if deviation == 0.0:
        return None
    return float(np.mean(excess)) / deviation * math.sqrt(periods_per_year)


def downside_deviation(
    returns: pd.Series,
    annual_risk_free: float = 0.0,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
) -> float:
    """Per-period downside deviation: √(mean over ALL periods of min(excess, 0)²).

    excess = return − per-period risk-free rate; the target is 0 after the risk-free rate.
    Periods above target count as 0 in the mean (empyrical's `downside_risk` convention).
    """
    excess = _excess(returns, annual_risk_free, periods_per_year)
    if len(excess) == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2)))


def sortino_ratio(
    returns: pd.Series,
    annual_risk_free: float = 0.0,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
) -> float | None:
    """Annualised Sortino ratio: mean(excess) / downside_deviation × √periods_per_year.

    None for an empty series or when no period falls below the target (zero downside).
    """
    downside = downside_deviation(returns, annual_risk_free, periods_per_year)
    if downside == 0.0:
        return None
    excess = _excess(returns, annual_risk_free, periods_per_year)
    return float(np.mean(excess)) / downside * math.sqrt(periods_per_year)


def drawdowns(equity: pd.Series, initial_capital: Decimal | float) -> pd.Series:
    """Drawdown at each session: E_t / peak_t − 1 (≤ 0), peak_t = max(initial, E_0 … E_t)."""
    values = _values(equity)
    peaks = np.maximum.accumulate(np.concatenate(([float(initial_capital)], values)))[1:]
    return pd.Series(values / peaks - 1.0, index=equity.index, dtype="float64")


def max_drawdown(equity: pd.Series, initial_capital: Decimal | float) -> float:
    """Deepest drawdown as a negative fraction (−0.2 = 20 % below the running peak); 0.0 when
    equity never fell below its running peak (which starts at `initial_capital`)."""
    if equity.empty:
        return 0.0
    return min(0.0, float(drawdowns(equity, initial_capital).min()))


def annualized_return(
    equity: pd.Series,
    initial_capital: Decimal | float,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
) -> float | None:
    """Compound annual growth: (E_last / initial)^(periods_per_year / n) − 1, n = len(equity).

    Each equity point is one session, so n sessions span n / 252 years. None for an empty series
    or a non-positive final equity.
    """
    if equity.empty or float(equity.iloc[-1]) <= 0:
        return None
    growth = float(equity.iloc[-1]) / float(initial_capital)
    return float(growth ** (periods_per_year / len(equity)) - 1.0)


def calmar_ratio(
    equity: pd.Series,
    initial_capital: Decimal | float,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
) -> float | None:
    """`annualized_return` / |`max_drawdown`|; None when there is no drawdown or no return."""
    drawdown = max_drawdown(equity, initial_capital)
    annual = annualized_return(equity, initial_capital, periods_per_year)
    if drawdown == 0.0 or annual is None:
        return None
    return annual / abs(drawdown)


@dataclass(frozen=True)
class LotStatistics:
    """Statistics of closed lots by their net `realized_pnl`.

    `gross_profit` sums the wins, `gross_loss` the losses (≤ 0), `net_pnl` all lots.
    A win is a lot with pnl > 0, a loss pnl < 0; a break-even lot is neither but counts in
    `closed_lots`. `win_rate` = wins / closed_lots. `profit_factor` = gross profit / |gross
    loss|; with no losing lot it is None and `profit_factor_note` says "no losing lots" (also
    "no closed lots"). `average_win` > 0 and `average_loss` < 0 are Decimal means, None when
    there is no such lot.
    """

    closed_lots: int
    wins: int
    losses: int
    gross_profit: Decimal
    gross_loss: Decimal
    net_pnl: Decimal
    win_rate: float | None
    profit_factor: float | None
    profit_factor_note: str | None
    average_win: Decimal | None
    average_loss: Decimal | None


def lot_statistics(realized_pnls: Iterable[Decimal]) -> LotStatistics:
    """Win rate, profit factor, average win and loss of closed lots (see `LotStatistics`)."""
    pnls = list(realized_pnls)
    wins = [pnl for pnl in pnls if pnl > 0]
    losses = [pnl for pnl in pnls if pnl < 0]
    with localcontext(prec=LEDGER_PRECISION):
        gross_profit = sum(wins, ZERO)
        gross_loss = sum(losses, ZERO)
        if not pnls:
            factor, note = None, NO_CLOSED_LOTS
        elif not losses:
            factor, note = None, NO_LOSING_LOTS
        else:
            factor, note = float(gross_profit / -gross_loss), None
        return LotStatistics(
            closed_lots=len(pnls),
            wins=len(wins),
            losses=len(losses),
            gross_profit=gross_profit,
            gross_loss=gross_loss,
            net_pnl=gross_profit + gross_loss,
            win_rate=len(wins) / len(pnls) if pnls else None,
            profit_factor=factor,
            profit_factor_note=note,
            average_win=gross_profit / len(wins) if wins else None,
            average_loss=gross_loss / len(losses) if losses else None,
        )


# ---------------------------------------------------------------------------------------------
# Performance rows: per day, per symbol, per strategy, and the whole account

Scope = Literal["account", "day", "symbol", "strategy"]
ACCOUNT_KEY = "all"


@dataclass(frozen=True)
class PerformanceRow:
    """One line of the performance table.

    `scope` says what `key` is: the whole account ("all"), a session date (ISO), a symbol or a
    strategy. Realized P&L is the sum of the closed lots' net `realized_pnl` (day rows: lots
    closed that New York date). Unrealized P&L is the price P&L of the lots still open, valued
    at the marks (day rows: at that day's marks; other rows: at the latest marks); None when a
    needed mark is missing. Equity metrics (`equity`, `daily_return`, `total_return`, `sharpe`,
    `sortino`, `max_drawdown`, `calmar`) exist for the account and for day rows, where they are
    computed over the sessions from the start through that day; symbol and strategy rows have no
    equity series of their own and leave them None.
    """

    scope: Scope
    key: str
    realized_pnl: Decimal
    unrealized_pnl: Decimal | None
    closed_lots: int
    win_rate: float | None
    profit_factor: float | None
    profit_factor_note: str | None
    average_win: Decimal | None
    average_loss: Decimal | None
    equity: Decimal | None = None
    daily_return: float | None = None
    total_return: float | None = None
    sharpe: float | None = None
    sortino: float | None = None
    max_drawdown: float | None = None
    calmar: float | None = None


@dataclass(frozen=True)
class _Holding:
    """Quantity open at some instant, for unrealized P&L."""

    symbol: str
    strategy: str
    sign: int
    qty: Decimal
    cost: Decimal

    def value(self, mark: Decimal) -> Decimal:
        return (mark * self.qty - self.cost) * self.sign


def _holding(lot: ClosedLot | OpenLot) -> _Holding:
    with localcontext(prec=LEDGER_PRECISION):
        cost = lot.cost if isinstance(lot, OpenLot) else lot.open_price * lot.qty
    return _Holding(lot.symbol, lot.strategy, lot.side.sign, lot.qty, cost)


def _end_of_day(day: dt.date) -> dt.datetime:
    """Midnight New York time at the end of `day`: lots closed that day are no longer held."""
    zone = pd.Timestamp(day).tz_localize(calendar.NEW_YORK) + pd.Timedelta(days=1)
    return zone.tz_convert("UTC").to_pydatetime()


def _holdings_at(lots: LotsResult, instant: dt.datetime) -> list[_Holding]:
    """Lots (or parts of lots) open at `instant`: opened before it, closed at or after it."""
    held = [_holding(lot) for lot in lots.closed if lot.open_time < instant <= lot.close_time]
    return held + [_holding(lot) for lot in lots.open if lot.open_time < instant]


def _unrealized(holdings: list[_Holding], marks: Mapping[str, Decimal]) -> Decimal | None:
    """Price P&L of `holdings` at `marks`; None if a held symbol has no mark."""
    if any(holding.symbol not in marks for holding in holdings):
        return None
    with localcontext(prec=LEDGER_PRECISION):
        return sum((holding.value(marks[holding.symbol]) for holding in holdings), ZERO)


def _lot_row(
    scope: Scope, key: str, lots: list[ClosedLot], unrealized: Decimal | None
) -> dict[str, Any]:
    stats = lot_statistics(lot.realized_pnl for lot in lots)
    return {
        "scope": scope,
        "key": key,
        "realized_pnl": stats.net_pnl,
        "unrealized_pnl": unrealized,
        "closed_lots": stats.closed_lots,
        "win_rate": stats.win_rate,
        "profit_factor": stats.profit_factor,
        "profit_factor_note": stats.profit_factor_note,
        "average_win": stats.average_win,
        "average_loss": stats.average_loss,
    }


def _equity_metrics(
    equity: pd.Series, initial_capital: Decimal, annual_risk_free: float
) -> dict[str, Any]:
    returns = daily_returns(equity, initial_capital)
    return {
        "equity": Decimal(str(equity.iloc[-1])),
        "daily_return": float(returns.iloc[-1]),
        "total_return": total_return(equity, initial_capital),
        "sharpe": sharpe_ratio(returns, annual_risk_free),
        "sortino": sortino_ratio(returns, annual_risk_free),
        "max_drawdown": max_drawdown(equity, initial_capital),
        "calmar": calmar_ratio(equity, initial_capital),
    }


def performance_rows(
    lots: LotsResult,
    equity: pd.Series,
    initial_capital: Decimal,
    marks: Mapping[dt.date, Mapping[str, Decimal]] | None = None,
    annual_risk_free: float = 0.0,
) -> list[PerformanceRow]:
    """The performance table: one account row, then day, symbol and strategy rows (sorted).

    `equity`: session-close equity indexed by session date (see the module docstring).
    `marks`: closing price per symbol per date, split-adjusted to the same basis as the lots
    (lots that lived through a split are in post-split shares, so use split-adjusted closes).
    Day rows cover every date of `equity` and every date a lot closed.
    """
    marks = marks or {}
    latest_marks = marks[max(marks)] if marks else {}
    current = [_holding(lot) for lot in lots.open]
    rows = [
        PerformanceRow(
            **_lot_row("account", ACCOUNT_KEY, lots.closed, _unrealized(current, latest_marks)),
            **(_equity_metrics(equity, initial_capital, annual_risk_free) if len(equity) else {}),
        )
    ]

    by_day: dict[dt.date, list[ClosedLot]] = defaultdict(list)
    for lot in lots.closed:
        by_day[calendar.session_of(pd.Timestamp(lot.close_time))].append(lot)
    equity_days = [pd.Timestamp(day).date() for day in equity.index]
    for day in sorted(set(equity_days) | set(by_day)):
        held = _holdings_at(lots, _end_of_day(day))
        unrealized = _unrealized(held, marks.get(day, {}))
        metrics: dict[str, Any] = {}
        if day in equity_days:
            to_date = equity.iloc[: equity_days.index(day) + 1]
            metrics = _equity_metrics(to_date, initial_capital, annual_risk_free)
        rows.append(
            PerformanceRow(
                **_lot_row("day", day.isoformat(), by_day.get(day, []), unrealized), **metrics
            )
        )

    scopes: tuple[Scope, ...] = ("symbol", "strategy")
    for scope in scopes:
        groups: dict[str, list[ClosedLot]] = defaultdict(list)
        for lot in lots.closed:
            groups[getattr(lot, scope)].append(lot)
        keys = set(groups) | {getattr(holding, scope) for holding in current}
        for key in sorted(keys):
            mine = [holding for holding in current if getattr(holding, scope) == key]
            unrealized = _unrealized(mine, latest_marks)
            rows.append(PerformanceRow(**_lot_row(scope, key, groups.get(key, []), unrealized)))
    return rows
