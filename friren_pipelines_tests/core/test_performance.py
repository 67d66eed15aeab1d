"""Performance metrics against their definitions, on series small enough to work by hand."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pandas as pd
import pytest

from friren_pipelines.core.lots import match_lots
from friren_pipelines.core.performance import (
    NO_CLOSED_LOTS,
    NO_LOSING_LOTS,
    annualized_return,
    calmar_ratio,
    daily_returns,
    downside_deviation,
    drawdowns,
    lot_statistics,
    max_drawdown,
    per_period_risk_free,
    performance_rows,
    sharpe_ratio,
    sortino_ratio,
    total_return,
)
from friren_pipelines_tests.core.ledger import fill

D = Decimal
DAYS = [dt.date(2024, 3, 4), dt.date(2024, 3, 5), dt.date(2024, 3, 6)]

# Series 1: initial capital 100, equity 110, 99, 108.9
#   returns      110/100 − 1 = 0.10, 99/110 − 1 = −0.10, 108.9/99 − 1 = 0.10
#   mean         0.10/3 = 0.0333…
#   std, ddof=1  deviations 0.0667, −0.1333, 0.0667 → squares sum 0.02667 → /2 = 0.01333
#                → √ = 0.11547 = 0.2/√3
#   Sharpe       (0.1/3) / (0.2/√3) × √252 = √3/6 × √252 = √21 = 4.5826
#   downside     min(r, 0) = 0, −0.1, 0 → mean of squares 0.01/3 → √ = 0.1/√3
#   Sortino      (0.1/3) / (0.1/√3) × √252 = √252/√3 = √84 = 9.1652
#   peaks        max(100, 110) = 110, 110, 110 → drawdowns 0, −0.1, −0.01 → max DD −0.10
#   total        108.9/100 − 1 = 0.089
#   annualized   1.089^(252/3) − 1 = 1.089^84 − 1;  Calmar = that / 0.10
EQUITY = pd.Series([D(110), D(99), D("108.9")], index=DAYS)
CAPITAL = D(100)


def test_daily_returns_start_from_initial_capital() -> None:
    assert list(daily_returns(EQUITY, CAPITAL)) == pytest.approx([0.10, -0.10, 0.10])


def test_total_return_is_last_equity_over_initial_capital() -> None:
    assert total_return(EQUITY, CAPITAL) == pytest.approx(0.089)
    assert total_return(EQUITY.iloc[:0], CAPITAL) is None


def test_sharpe_uses_ddof_1_and_square_root_of_252() -> None:
    assert sharpe_ratio(daily_returns(EQUITY, CAPITAL)) == pytest.approx(math.sqrt(21))


def test_sharpe_subtracts_the_compounded_per_period_risk_free_rate() -> None:
    # rf 5 % a year → per session 1.05^(1/252) − 1 = 0.00019363; std is unchanged (0.2/√3)
    rf = 1.05 ** (1 / 252) - 1
    expected = (0.1 / 3 - rf) / (0.2 / math.sqrt(3)) * math.sqrt(252)

    assert per_period_risk_free(0.05) == pytest.approx(0.000193630, rel=1e-4)
    assert sharpe_ratio(daily_returns(EQUITY, CAPITAL), 0.05) == pytest.approx(expected)


def test_sharpe_is_undefined_for_one_return_or_no_variation() -> None:
    assert sharpe_ratio(pd.Series([0.01])) is None
    assert sharpe_ratio(pd.Series([0.01, 0.01, 0.01])) is None


def test_sortino_divides_by_root_mean_square_of_shortfalls_over_all_periods() -> None:
    returns = daily_returns(EQUITY, CAPITAL)

    assert downside_deviation(returns) == pytest.approx(0.1 / math.sqrt(3))
    assert sortino_ratio(returns) == pytest.approx(math.sqrt(84))


def test_sortino_is_undefined_without_a_period_below_target() -> None:
    assert sortino_ratio(pd.Series([0.01, 0.02])) is None


def test_max_drawdown_is_negative_from_the_running_peak() -> None:
    assert list(drawdowns(EQUITY, CAPITAL)) == pytest.approx([0.0, -0.10, -0.01])
    assert max_drawdown(EQUITY, CAPITAL) == pytest.approx(-0.10)


def test_the_running_peak_starts_at_initial_capital() -> None:
    # 100 → 90, 95, 120: peaks 100, 100, 120 → drawdowns −0.10, −0.05, 0
    # (a peak starting at the first point, 90, would miss the first loss)
    equity = pd.Series([90, 95, 120], index=DAYS)

    assert list(drawdowns(equity, 100)) == pytest.approx([-0.10, -0.05, 0.0])
    assert max_drawdown(equity, 100) == pytest.approx(-0.10)


def test_calmar_is_annualized_return_over_absolute_max_drawdown() -> None:
    annual = 1.089**84 - 1

    assert annualized_return(EQUITY, CAPITAL) == pytest.approx(annual)
    assert calmar_ratio(EQUITY, CAPITAL) == pytest.approx(annual / 0.10)


def test_calmar_is_undefined_without_drawdown() -> None:
    assert calmar_ratio(pd.Series([101, 102], index=DAYS[:2]), 100) is None


def test_lot_statistics_count_wins_losses_and_break_evens() -> None:
    # pnls 30, −10, 0, 20, −5: wins 30+20 = 50 (2), losses −15 (2), break-even 1
    # win rate 2/5 = 0.4; profit factor 50/15 = 3.333; average win 25; average loss −7.5
    stats = lot_statistics([D(30), D(-10), D(0), D(20), D(-5)])

    assert (stats.closed_lots, stats.wins, stats.losses) == (5, 2, 2)
    assert (stats.gross_profit, stats.gross_loss, stats.net_pnl) == (D(50), D(-15), D(35))
    assert stats.win_rate == pytest.approx(0.4)
    assert stats.profit_factor == pytest.approx(50 / 15)
    assert stats.profit_factor_note is None
    assert (stats.average_win, stats.average_loss) == (D(25), D("-7.5"))


def test_profit_factor_without_losing_lots_is_reported_as_such() -> None:
    stats = lot_statistics([D(5), D(0)])

    assert (stats.profit_factor, stats.profit_factor_note) == (None, NO_LOSING_LOTS)
    assert (stats.win_rate, stats.average_loss) == (0.5, None)


def test_profit_factor_without_lots_or_without_wins() -> None:
    empty = lot_statistics([])
    only_losses = lot_statistics([D(-1)])

    assert (empty.profit_factor, empty.profit_factor_note, empty.win_rate) == (
        None,
        NO_CLOSED_LOTS,
        None,
    )
    assert (only_losses.profit_factor, only_losses.average_win) == (0.0, None)


# Performance rows from a ledger (UTC times; New York dates are the same days)
#   AAPL trend:   buy 10 @ 100 (03-04)  sell 4 @ 110 (03-05) → lot +40, 6 stay open
#   MSFT meanrev: buy 5 @ 200 (03-05)   sell 5 @ 190 (03-06) → lot −50
#   marks         03-04 AAPL 102 | 03-05 AAPL 108, MSFT 198 | 03-06 AAPL 105, MSFT 191
#   day 03-04: realized 0;   held AAPL 10 → 10×(102−100) = 20
#   day 03-05: realized 40;  held AAPL 6 → 6×8 = 48, MSFT 5 → 5×(198−200) = −10 → 38
#   day 03-06: realized −50; held AAPL 6 → 6×5 = 30
#   account:   realized −10, unrealized 30 at the latest marks, win rate 1/2, PF 40/50 = 0.8
#   equity 10 020, 10 078, 9 980 on capital 10 000 → day 03-06 drawdown 9980/10078 − 1
LEDGER = [
    fill("a1", "2024-03-04 15:00", "buy", "10", "100", strategy="trend"),
    fill("a2", "2024-03-05 15:00", "sell", "4", "110", strategy="trend"),
    fill("m1", "2024-03-05 15:00", "buy", "5", "200", symbol="MSFT", strategy="meanrev"),
    fill("m2", "2024-03-06 15:00", "sell", "5", "190", symbol="MSFT", strategy="meanrev"),
]
MARKS = {
    DAYS[0]: {"AAPL": D(102)},
    DAYS[1]: {"AAPL": D(108), "MSFT": D(198)},
    DAYS[2]: {"AAPL": D(105), "MSFT": D(191)},
}
BOOK_EQUITY = pd.Series([D(10020), D(10078), D(9980)], index=DAYS)


def test_performance_rows_per_account_day_symbol_and_strategy() -> None:
    rows = performance_rows(match_lots(LEDGER), BOOK_EQUITY, D(10000), MARKS)

    assert [(r.scope, r.key, r.realized_pnl, r.unrealized_pnl, r.closed_lots) for r in rows] == [
        ("account", "all", D(-10), D(30), 2),
        ("day", "2024-03-04", D(0), D(20), 0),
        ("day", "2024-03-05", D(40), D(38), 1),
        ("day", "2024-03-06", D(-50), D(30), 1),
        ("symbol", "AAPL", D(40), D(30), 1),
        ("symbol", "MSFT", D(-50), D(0), 1),
        ("strategy", "meanrev", D(-50), D(0), 1),
        ("strategy", "trend", D(40), D(30), 1),
    ]
    account, first_day, second_day, last_day = rows[:4]
    assert (account.win_rate, account.profit_factor) == (0.5, pytest.approx(0.8))
    assert account.equity == D(9980)
    assert account.total_return == pytest.approx(-0.002)
    assert account.max_drawdown == pytest.approx(9980 / 10078 - 1)
    assert first_day.sharpe is None  # one return so far
    assert second_day.total_return == pytest.approx(0.0078)
    assert second_day.max_drawdown == 0.0
    assert last_day.daily_return == pytest.approx(9980 / 10078 - 1)
    assert last_day.sharpe == account.sharpe
    assert rows[4].sharpe is None  # no equity series per symbol


def test_a_missing_mark_leaves_unrealized_unknown_rather_than_wrong() -> None:
    marks = {**MARKS, DAYS[1]: {"AAPL": D(108)}}

    rows = performance_rows(match_lots(LEDGER), BOOK_EQUITY, D(10000), marks)

    assert [r.unrealized_pnl for r in rows if r.scope == "day"] == [D(20), None, D(30)]
