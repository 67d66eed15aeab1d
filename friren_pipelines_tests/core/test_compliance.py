"""Day trades, the pattern-day-trader test, settlement dates and trade counts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from friren_pipelines.core.compliance import (
    CLASSIC_PDT_RULES,
    INTRADAY_MARGIN_RULES,
    PdtRuleSet,
    TradeCount,
    day_trades,
    pattern_day_trader_status,
    rule_set_on,
    settlement_date,
    trade_counts,
    trade_date,
)
from friren_pipelines.core.fills import Fill, Split
from friren_pipelines_tests.core.ledger import fill, utc

# ---------------------------------------------------------------------------------------------
# Settlement: T+2 before 2024-05-28, T+1 from it; business days are XNYS sessions.
#   trade Fri 2024-05-24, T+2: Mon 05-27 is Memorial Day → Tue 05-28, Wed 05-29
#   trade Tue 2024-05-28, T+1: Wed 05-29
#   trade Fri 2024-05-31, T+1: Mon 06-03
#   trade Tue 2017-09-05, T+2 (its first day): 09-06, 09-07
#   trade Fri 2017-09-01, still T+3: Mon 09-04 is Labor Day → 09-05, 09-06, 09-07
#   trade Tue 2017-08-29, T+3: 08-30, 08-31, 09-01


@pytest.mark.parametrize(
    ("when", "settles"),
    [
        ("2024-05-24 15:00", dt.date(2024, 5, 29)),
        ("2024-05-28 15:00", dt.date(2024, 5, 29)),
        ("2024-05-31 15:00", dt.date(2024, 6, 3)),
        ("2017-09-05 15:00", dt.date(2017, 9, 7)),
        ("2017-09-01 15:00", dt.date(2017, 9, 7)),
        ("2017-08-29 15:00", dt.date(2017, 9, 1)),
    ],
)
def test_settlement_is_t_plus_1_from_2024_05_28_t_plus_2_before_and_t_plus_3_before_2017(
    when: str, settles: dt.date
) -> None:
    assert settlement_date(utc(when)) == settles


def test_trade_date_is_the_new_york_date_or_the_next_session() -> None:
    # 02:00 UTC on 05-29 is 22:00 New York on 05-28 (after hours): trade date 05-28
    assert trade_date(utc("2024-05-29 02:00")) == dt.date(2024, 5, 28)
    # Saturday 2024-06-01 → Monday 06-03, which settles T+1 on 06-04
    assert trade_date(utc("2024-06-01 15:00")) == dt.date(2024, 6, 3)
    assert settlement_date(utc("2024-06-01 15:00")) == dt.date(2024, 6, 4)


def test_settlement_before_any_known_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="no settlement cycle known for trade date 1995-06-06"):
        settlement_date(utc("1995-06-06 15:00"))


# ---------------------------------------------------------------------------------------------
# Day trades: FINRA's examples (Regulatory Notice 21-13), all on 2024-03-04 (times UTC).


def orders(*legs: tuple[str, str], symbol: str = "ABC", day: str = "2024-03-04") -> list[Fill]:
    """One order per leg (side, qty), a minute apart from 14:30 UTC, at a price of 10."""
    start = utc(f"{day} 14:30")
    return [
        fill(
            f"{symbol}-{day}-{n}",
            (start + dt.timedelta(minutes=n)).strftime("%Y-%m-%d %H:%M"),
            side,
            qty,
            "10",
            symbol=symbol,
            order_id=f"o-{symbol}-{day}-{n}",
        )
        for n, (side, qty) in enumerate(legs)
    ]


B, S = "buy", "sell"


@pytest.mark.parametrize(
    ("legs", "count"),
    [
        ([(B, "250"), (B, "250"), (S, "500")], 1),  # A
        ([(B, "100"), (S, "100"), (B, "100"), (S, "100")], 2),  # B
        ([(B, "500"), (S, "100"), (S, "100"), (S, "300")], 1),  # C
        ([(B, "250"), (B, "300"), (B, "100"), (S, "150"), (S, "175")], 1),  # D
        ([(B, "199"), (B, "142"), (S, "1"), (B, "45"), (S, "100"), (S, "200")], 2),  # E
        ([(S, "100"), (B, "100")], 1),  # a short sale covered the same day
    ],
)
def test_day_trades_are_counted_as_finra_examples_count_them(
    legs: list[tuple[str, str]], count: int
) -> None:
    assert len(day_trades(orders(*legs))) == count


def test_day_trades_are_counted_per_symbol() -> None:
    # FINRA example F: buy 200 ABC, buy 100 XYZ, sell 100 ABC, sell 100 XYZ → 2
    fills = [
        *orders((B, "200"), (S, "100"), symbol="ABC"),
        *orders((B, "100"), (S, "100"), symbol="XYZ"),
    ]
    assert [(trade.symbol, trade.session) for trade in day_trades(fills)] == [
        ("ABC", dt.date(2024, 3, 4)),
        ("XYZ", dt.date(2024, 3, 4)),
    ]


def test_an_overnight_position_sold_before_a_new_purchase_is_not_a_day_trade() -> None:
    # 03-04 buy 50 (held overnight); 03-05 sell 50 then buy 50 → 0;
    # 03-06 (long 50) buy 25 then sell 25 → 1, even though the sale could be the old shares.
    fills = [
        *orders((B, "50")),
        *orders((S, "50"), (B, "50"), day="2024-03-05"),
        *orders((B, "25"), (S, "25"), day="2024-03-06"),
    ]
    [trade] = day_trades(fills)
    assert (trade.session, trade.open_exec_id, trade.close_exec_id) == (
        dt.date(2024, 3, 6),
        "ABC-2024-03-06-0",
        "ABC-2024-03-06-1",
    )


def test_a_flip_closes_a_day_trade_and_opens_the_next() -> None:
    # buy 10 (open), sell 20 (closes → 1, opens short 10), buy 10 (covers → 2)
    assert len(day_trades(orders((B, "10"), (S, "20"), (B, "10")))) == 2


def test_a_split_keeps_the_position_right_for_day_trade_counting() -> None:
    # 03-04 buy 10; 4:1 split on 03-05 → long 40; 03-05 sell 40 (closes, no purchase that day),
    # buy 30 (opens) → 0. Without the split the sale would flip to short 30, covered by the buy.
    fills = [*orders((B, "10")), *orders((S, "40"), (B, "30"), day="2024-03-05")]
    split = Split.on_ex_date("ABC", dt.date(2024, 3, 5), Decimal(4))

    assert day_trades(fills, [split]) == []
    assert len(day_trades(fills)) == 1


# ---------------------------------------------------------------------------------------------
# Pattern day trader: ≥ 4 day trades in 5 sessions and > 6 % of trades (classic rule).
# Sessions 2024-03-04 … 03-08 (Mon–Fri), 03-11 (Mon).


def round_trips(day: str, count: int, symbol: str = "ABC") -> list[Fill]:
    """`count` buy-then-sell day trades of one share on `day` (2 orders each)."""
    legs = [(side, "1") for _ in range(count) for side in (B, S)]
    return orders(*legs, symbol=symbol, day=day)


def test_four_day_trades_in_five_sessions_make_a_pattern_day_trader() -> None:
    # 2 on 03-04, 1 on 03-06, 1 on 03-08 → 4 day trades, 8 trades (100 % > 6 %)
    fills = round_trips("2024-03-04", 2) + round_trips("2024-03-06", 1)
    fills += round_trips("2024-03-08", 1)

    status = pattern_day_trader_status(fills, dt.date(2024, 3, 8))

    assert (status.day_trades, status.trades, status.meets_pdt_test) == (4, 8, True)
    assert status.window_start == dt.date(2024, 3, 4)
    assert status.rule_set == CLASSIC_PDT_RULES.name


def test_the_window_is_five_sessions_so_older_day_trades_drop_out() -> None:
    # as of Mon 03-11 the window is 03-05 … 03-11: the two of 03-04 are out → 2 day trades
    fills = round_trips("2024-03-04", 2) + round_trips("2024-03-06", 1)
    fills += round_trips("2024-03-08", 1)

    status = pattern_day_trader_status(fills, dt.date(2024, 3, 11))

    assert (status.window_start, status.day_trades, status.meets_pdt_test) == (
        dt.date(2024, 3, 5),
        2,
        False,
    )


def test_four_day_trades_that_are_at_most_six_percent_of_trades_do_not_count() -> None:
    # 4 day trades (8 orders) + 60 single purchases of XYZ → 4 / 68 = 5.9 % ≤ 6 %
    fills = round_trips("2024-03-04", 4) + orders(*[(B, "1")] * 60, symbol="XYZ")

    status = pattern_day_trader_status(fills, dt.date(2024, 3, 4))

    assert (status.day_trades, status.trades, status.meets_pdt_test) == (4, 68, False)
    assert status.reason == (
        "4 day trades in 5 sessions from 2024-02-27 (>= 4); 4 of 68 trades (<= 6%)"
    )


def test_partial_fills_of_one_order_are_one_trade() -> None:
    # one buy order filled in 3 parts, one sell order in 2 parts: 2 trades, 1 day trade, 5 fills
    fills = [
        fill(f"p{n}", f"2024-03-04 14:3{n}", side, "1", "10", order_id=order)
        for n, (side, order) in enumerate([(B, "o1"), (B, "o1"), (B, "o1"), (S, "o2"), (S, "o2")])
    ]

    assert trade_counts(fills) == [
        TradeCount("week", dt.date(2024, 3, 4), trades=2, fills=5, day_trades=1),
        TradeCount("day", dt.date(2024, 3, 4), trades=2, fills=5, day_trades=1),
    ]


def test_trade_counts_per_day_and_per_iso_week() -> None:
    # Mon 03-04: 2 orders, 1 day trade; Fri 03-08: 1 order; Mon 03-11: 2 orders, 1 day trade
    fills = round_trips("2024-03-04", 1) + orders((B, "1"), day="2024-03-08")
    fills += round_trips("2024-03-11", 1, symbol="XYZ")

    assert [(c.period, c.start, c.trades, c.day_trades) for c in trade_counts(fills)] == [
        ("week", dt.date(2024, 3, 4), 3, 1),
        ("day", dt.date(2024, 3, 4), 2, 1),
        ("day", dt.date(2024, 3, 8), 1, 0),
        ("week", dt.date(2024, 3, 11), 2, 1),
        ("day", dt.date(2024, 3, 11), 2, 1),
    ]


def test_the_rule_set_in_force_changes_on_its_effective_date() -> None:
    assert rule_set_on(dt.date(2026, 6, 3)) is CLASSIC_PDT_RULES
    assert rule_set_on(dt.date(2026, 6, 4)) is INTRADAY_MARGIN_RULES


def test_the_intraday_margin_regime_designates_no_pattern_day_trader() -> None:
    # 2026-06-08 … 06-12 are sessions; 4 day trades on Mon 06-08
    fills = round_trips("2026-06-08", 4)

    status = pattern_day_trader_status(fills, dt.date(2026, 6, 8))

    assert (status.day_trades, status.meets_pdt_test) == (4, False)
    assert status.reason == f"{INTRADAY_MARGIN_RULES.name} does not designate pattern day traders"


def test_rule_sets_are_configurable() -> None:
    strict = PdtRuleSet(
        name="house rule",
        effective=dt.date(2024, 1, 1),
        designates_pattern_day_traders=True,
        min_day_trades=2,
    )
    fills = round_trips("2024-03-04", 2)

    assert pattern_day_trader_status(fills, dt.date(2024, 3, 4)).meets_pdt_test is False
    custom = pattern_day_trader_status(
        fills, dt.date(2024, 3, 4), rules=[CLASSIC_PDT_RULES, strict]
    )
    assert (custom.rule_set, custom.meets_pdt_test) == ("house rule", True)


def test_a_date_before_every_rule_set_is_refused() -> None:
    with pytest.raises(ValueError, match="no pattern-day-trader rule set in force on 2023-12-31"):
        rule_set_on(dt.date(2023, 12, 31), [INTRADAY_MARGIN_RULES])
