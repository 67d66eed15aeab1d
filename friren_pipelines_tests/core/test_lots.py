"""Lot matching against ledgers worked by hand (the tables in the comments are the proof)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, localcontext

import pytest

from friren_pipelines.core.fills import Split, parse_fills_csv
from friren_pipelines.core.lots import (
    LEDGER_PRECISION,
    ClosedLot,
    OpenLot,
    Position,
    PositionEventKind,
    PositionSide,
    match_lots,
    position_events,
    positions_from_fills,
)
from friren_pipelines_tests.core.ledger import fill, utc

D = Decimal


def summary(lot: ClosedLot) -> tuple:
    return (
        lot.side.value,
        lot.qty,
        lot.open_price,
        lot.close_price,
        lot.fees,
        lot.realized_pnl,
        lot.holding_seconds,
        lot.open_exec_id,
        lot.close_exec_id,
    )


def open_summary(lot: OpenLot) -> tuple:
    return (lot.qty, lot.open_price, lot.cost, lot.fees, lot.open_time)


# Ledger 1 — partial fills, fees pro rata (FIFO)
#  exec  time (UTC)         side  qty  price  fee
#  b1    2024-03-04 14:30   buy   100  10.00  1.00
#  b2    2024-03-04 15:00   buy    50  12.00  0.50
#  s1    2024-03-05 14:30   sell  120  13.00  1.20
#  s2    2024-03-05 16:00   sell   20  11.00  0.40
#
#  lot        qty  open fee           close fee          fees  gross              pnl     held
#  b1→s1      100  1.00               1.20×100/120=1.00  2.00  100×(13−10)=300    298.00  24h
#  b2→s1       20  0.50×20/50=0.20    1.20×20/120=0.20   0.40   20×(13−12)=20      19.60  23.5h
#  b2→s2       20  0.30×20/30=0.20    0.40               0.60   20×(11−12)=−20    −20.60  25h
#  open b2     10  fee left 0.10, cost 10×12=120
#  check: sold 1780 − bought 1600 + cost kept 120 = 300 gross; fees 3.10 − 0.10 kept = 3.00
LEDGER_PARTIAL = [
    fill("b1", "2024-03-04 14:30", "buy", "100", "10.00", "1.00"),
    fill("b2", "2024-03-04 15:00", "buy", "50", "12.00", "0.50"),
    fill("s1", "2024-03-05 14:30", "sell", "120", "13.00", "1.20"),
    fill("s2", "2024-03-05 16:00", "sell", "20", "11.00", "0.40"),
]


def test_fifo_closes_oldest_lots_first_with_partial_fills_and_pro_rata_fees() -> None:
    result = match_lots(LEDGER_PARTIAL)

    assert [summary(lot) for lot in result.closed] == [
        ("long", D(100), D(10), D(13), D("2.00"), D("298.00"), 86400, "b1", "s1"),
        ("long", D(20), D(12), D(13), D("0.40"), D("19.60"), 84600, "b2", "s1"),
        ("long", D(20), D(12), D(11), D("0.60"), D("-20.60"), 90000, "b2", "s2"),
    ]
    assert sum(lot.realized_pnl for lot in result.closed) == D("297.00")
    [still_open] = result.open
    assert open_summary(still_open) == (D(10), D(12), D(120), D("0.10"), utc("2024-03-04 15:00"))


# Ledger 2 — a short, then a single fill that flips short → long
#  exec  time (UTC)         side  qty  price  fee
#  x1    2024-03-04 14:30   sell   30  50.00  0.30   opens short 30
#  x2    2024-03-04 15:00   buy    10  48.00  0.10   covers 10
#  x3    2024-03-04 16:00   buy    50  45.00  0.50   covers 20, opens long 30
#  x4    2024-03-05 15:00   sell   30  47.00  0      closes the long
#
#  lot      side   qty  open fee          close fee         fees  gross              pnl    held
#  x1→x2    short   10  0.30×10/30=0.10   0.10              0.20  10×(50−48)=20      19.80  30min
#  x1→x3    short   20  0.20              0.50×20/50=0.20   0.40  20×(50−45)=100     99.60  90min
#  x3→x4    long    30  0.50×30/50=0.30   0                 0.30  30×(47−45)=60      59.70  23h
LEDGER_FLIP = [
    fill("x1", "2024-03-04 14:30", "sell", "30", "50.00", "0.30"),
    fill("x2", "2024-03-04 15:00", "buy", "10", "48.00", "0.10"),
    fill("x3", "2024-03-04 16:00", "buy", "50", "45.00", "0.50"),
    fill("x4", "2024-03-05 15:00", "sell", "30", "47.00"),
]


def test_a_sell_with_nothing_long_opens_a_short_and_one_fill_flips_it_long() -> None:
    result = match_lots(LEDGER_FLIP)

    assert [summary(lot) for lot in result.closed] == [
        ("short", D(10), D(50), D(48), D("0.20"), D("19.80"), 1800, "x1", "x2"),
        ("short", D(20), D(50), D(45), D("0.40"), D("99.60"), 5400, "x1", "x3"),
        ("long", D(30), D(45), D(47), D("0.30"), D("59.70"), 82800, "x3", "x4"),
    ]
    assert result.open == []


def test_a_single_sell_larger_than_the_long_flips_to_a_short_lot() -> None:
    # buy 10 @ 20 (fee 1), sell 25 @ 22 (fee 2.50): closes 10 (fees 1 + 2.50×10/25 = 2.00,
    # pnl 10×2 − 2 = 18.00) and opens short 15 @ 22 carrying fee 2.50×15/25 = 1.50.
    result = match_lots(
        [
            fill("b", "2024-03-04 14:30", "buy", "10", "20", "1"),
            fill("s", "2024-03-04 15:30", "sell", "25", "22", "2.50"),
        ]
    )

    assert [summary(lot) for lot in result.closed] == [
        ("long", D(10), D(20), D(22), D("2.00"), D("18.00"), 3600, "b", "s"),
    ]
    [short] = result.open
    assert (short.side, short.qty, short.open_price, short.fees, short.open_exec_id) == (
        PositionSide.SHORT,
        D(15),
        D(22),
        D("1.50"),
        "s",
    )


# Ledger 3 — a 4:1 split while the lot is open
#  b1  2024-06-03 14:00  buy 10 @ 400.00 fee 2.00           cost 4000
#  4:1 split, ex-date 2024-06-10 (midnight New York) → 40 sh @ 100.00, cost 4000, same open time
#  s1  2024-06-11 14:00  sell 25 @ 105.00 fee 1.00
#  closed 25: cost 4000×25/40=2500 (@100), fees 2.00×25/40=1.25 + 1.00 = 2.25,
#             pnl 25×(105−100) − 2.25 = 122.75, held 8 days = 691200 s
#  open 15 @ 100, cost 1500, fee 0.75
def test_a_split_multiplies_open_quantity_and_divides_price_keeping_cost_and_open_time() -> None:
    split = Split.on_ex_date("AAPL", dt.date(2024, 6, 10), D(4))
    result = match_lots(
        [
            fill("b1", "2024-06-03 14:00", "buy", "10", "400.00", "2.00"),
            fill("s1", "2024-06-11 14:00", "sell", "25", "105.00", "1.00"),
        ],
        splits=[split],
    )

    assert split.effective == utc("2024-06-10 04:00")
    assert [summary(lot) for lot in result.closed] == [
        ("long", D(25), D(100), D(105), D("2.25"), D("122.75"), 691200, "b1", "s1"),
    ]
    [still_open] = result.open
    assert open_summary(still_open) == (D(15), D(100), D(1500), D("0.75"), utc("2024-06-03 14:00"))


def test_a_split_only_touches_its_own_symbol() -> None:
    result = match_lots(
        [fill("m", "2024-06-03 14:00", "buy", "10", "400", symbol="MSFT")],
        splits=[Split.on_ex_date("AAPL", dt.date(2024, 6, 10), D(4))],
    )

    assert [(lot.symbol, lot.qty, lot.open_price) for lot in result.open] == [
        ("MSFT", D(10), D(400))
    ]


# Ledger 4 — average cost versus FIFO on the same fills
#  exec  t (UTC, 2024-03-04)  side  qty  price  fee
#  b1    14:30                buy    10     10  1.00
#  b2    15:00                buy    30     14  0.60
#  s1    15:30                sell   20     15  0.40
#  b3    16:00                buy    10     16  0
#  s2    16:30                sell   30     12  0.30
#
#  average: pool after b2 = 40 sh, cost 100+420 = 520 (avg 13), fees 1.60
#    s1 closes 20 @ 13: open fee 1.60×20/40 = 0.80 + 0.40 = 1.20; pnl 20×(15−13) − 1.20 = 38.80
#    pool 20 sh, cost 260; b3 adds 10 @ 16 → 30 sh, cost 420 (avg 14), fees 0.80
#    s2 closes 30 @ 14: fees 0.80 + 0.30 = 1.10; pnl 30×(12−14) − 1.10 = −61.10
#  FIFO:
#    s1: 10 of b1 @10: fees 1.00 + 0.40×10/20=0.20; pnl 50 − 1.20 = 48.80
#        10 of b2 @14: fees 0.60×10/30=0.20 + 0.20; pnl 10 − 0.40 = 9.60
#    s2: 20 of b2 @14: fees 0.40 + 0.30×20/30=0.20; pnl −40 − 0.60 = −40.60
#        10 of b3 @16: fees 0 + 0.10; pnl −40 − 0.10 = −40.10
#  both total −22.30 once flat
LEDGER_AVERAGE = [
    fill("b1", "2024-03-04 14:30", "buy", "10", "10", "1.00"),
    fill("b2", "2024-03-04 15:00", "buy", "30", "14", "0.60"),
    fill("s1", "2024-03-04 15:30", "sell", "20", "15", "0.40"),
    fill("b3", "2024-03-04 16:00", "buy", "10", "16"),
    fill("s2", "2024-03-04 16:30", "sell", "30", "12", "0.30"),
]


def test_average_cost_closes_at_the_pool_price_with_the_position_open_time() -> None:
    result = match_lots(LEDGER_AVERAGE, method="average")

    assert [summary(lot) for lot in result.closed] == [
        ("long", D(20), D(13), D(15), D("1.20"), D("38.80"), 3600, "b1", "s1"),
        ("long", D(30), D(14), D(12), D("1.10"), D("-61.10"), 7200, "b1", "s2"),
    ]
    assert result.open == []


def test_fifo_on_the_average_cost_ledger_gives_other_lots_and_the_same_total() -> None:
    result = match_lots(LEDGER_AVERAGE)

    assert [(lot.open_exec_id, lot.qty, lot.realized_pnl) for lot in result.closed] == [
        ("b1", D(10), D("48.80")),
        ("b2", D(10), D("9.60")),
        ("b2", D(20), D("-40.60")),
        ("b3", D(10), D("-40.10")),
    ]
    assert sum(lot.realized_pnl for lot in result.closed) == D("-22.30")


def test_fills_at_the_same_timestamp_are_matched_in_file_order() -> None:
    # All at 10:00 New York: buy 10 @100, sell 10 @101 (closes +10), buy 5 @102 (opens long).
    # Reading the sell first would open a short instead.
    fills = parse_fills_csv(
        "timestamp,symbol,side,qty,price\n"
        "2024-03-04 10:00:00,MSFT,buy,10,100\n"
        "2024-03-04 10:00:00,MSFT,sell,10,101\n"
        "2024-03-04 10:00:00,MSFT,buy,5,102\n"
    )

    result = match_lots(reversed(fills))

    assert [(lot.side, lot.qty, lot.realized_pnl) for lot in result.closed] == [
        (PositionSide.LONG, D(10), D(10))
    ]
    assert [(lot.side, lot.qty, lot.open_price) for lot in result.open] == [
        (PositionSide.LONG, D(5), D(102))
    ]


def test_fee_shares_add_up_to_the_fee_exactly_when_it_does_not_divide() -> None:
    # 1.00 of fee over three 1-share lots: 1/3 + 1/3 + the remainder, sum exactly 1.00
    result = match_lots(
        [
            fill("b", "2024-03-04 14:30", "buy", "3", "10", "1.00"),
            fill("s1", "2024-03-04 15:00", "sell", "1", "10"),
            fill("s2", "2024-03-04 15:01", "sell", "1", "10"),
            fill("s3", "2024-03-04 15:02", "sell", "1", "10"),
        ]
    )

    with localcontext(prec=LEDGER_PRECISION):
        assert sum(lot.fees for lot in result.closed) == D("1.00")
        assert sum(lot.realized_pnl for lot in result.closed) == D("-1.00")
    assert result.closed[0].fees == D("0." + "3" * LEDGER_PRECISION)  # 1/3 to 34 digits


def test_strategies_keep_separate_books_and_net_out_in_positions() -> None:
    # trend buys 10, meanrev sells 10: two open lots (long and short), no closed lot;
    # the broker sees a flat AAPL.
    fills = [
        fill("t", "2024-03-04 14:30", "buy", "10", "100", strategy="trend"),
        fill("m", "2024-03-04 15:00", "sell", "10", "101", strategy="meanrev"),
    ]

    result = match_lots(fills)

    assert result.closed == []
    assert sorted((lot.strategy, lot.side.value, lot.qty) for lot in result.open) == [
        ("meanrev", "short", D(10)),
        ("trend", "long", D(10)),
    ]
    assert positions_from_fills(fills) == {}


def test_positions_from_fills_give_net_signed_quantity_and_average_entry() -> None:
    # AAPL: ledger 1 leaves 10 @ 12. MSFT: short 5 @ 300 then short 5 @ 310 → −10 @ 305.
    fills = [
        *LEDGER_PARTIAL,
        fill("m1", "2024-03-04 14:30", "sell", "5", "300", symbol="MSFT"),
        fill("m2", "2024-03-04 14:31", "sell", "5", "310", symbol="MSFT"),
    ]

    assert positions_from_fills(fills) == {
        "AAPL": Position("AAPL", D(10), D(12)),
        "MSFT": Position("MSFT", D(-10), D(305)),
    }


def test_positions_from_fills_refuse_fills_of_two_accounts() -> None:
    from dataclasses import replace

    one, two = LEDGER_PARTIAL[:2]
    with pytest.raises(ValueError, match="one account, got accounts A, B"):
        positions_from_fills([replace(one, account="A"), replace(two, account="B")])


def test_unknown_method_is_named() -> None:
    with pytest.raises(ValueError, match="unknown lot method 'lifo'"):
        match_lots(LEDGER_PARTIAL, method="lifo")  # type: ignore[arg-type]


def test_position_events_classify_open_increase_decrease_close_and_flip() -> None:
    previous = {
        "AAPL": Position("AAPL", D(10), D(100)),
        "AMZN": Position("AMZN", D(2), D(180)),
        "MSFT": Position("MSFT", D(5), D(50)),
        "NVDA": Position("NVDA", D(4), D(10)),
        "TSLA": Position("TSLA", D(-3), D(200)),
    }
    current = {
        "AAPL": Position("AAPL", D(15), D(102)),
        "GOOG": Position("GOOG", D(7), D(140)),
        "MSFT": Position("MSFT", D(2), D(50)),
        "NVDA": Position("NVDA", D(4), D(11)),  # same quantity: no event
        "TSLA": Position("TSLA", D(1), D(190)),
    }

    events = position_events(previous, current)

    assert [
        (e.symbol, e.kind, e.side.value, e.previous_qty, e.current_qty, e.change) for e in events
    ] == [
        ("AAPL", PositionEventKind.INCREASE, "long", D(10), D(15), D(5)),
        ("AMZN", PositionEventKind.CLOSE, "long", D(2), D(0), D(-2)),
        ("GOOG", PositionEventKind.OPEN, "long", D(0), D(7), D(7)),
        ("MSFT", PositionEventKind.DECREASE, "long", D(5), D(2), D(-3)),
        ("TSLA", PositionEventKind.FLIP, "long", D(-3), D(1), D(4)),
    ]
    closed = events[1]
    assert (closed.previous_avg_price, closed.current_avg_price) == (D(180), None)
    assert (events[4].previous_avg_price, events[4].current_avg_price) == (D(200), D(190))


def test_position_events_of_identical_syncs_are_empty() -> None:
    state = {"AAPL": Position("AAPL", D(10), D(100))}
    assert position_events(state, dict(state)) == []
