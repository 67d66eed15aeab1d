"""The fills CSV export: parsing, derived execution ids, all-or-nothing validation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from friren_pipelines.core.fills import (
    DEFAULT_STRATEGY,
    Fill,
    FillsFileError,
    Side,
    Split,
    parse_fills_csv,
)
from friren_pipelines_tests.core.ledger import utc

HEADER = "timestamp,symbol,side,qty,price,fee,order_id,exec_id,strategy\n"


def test_a_full_export_parses_to_decimal_fills_in_utc() -> None:
    fills = parse_fills_csv(
        HEADER + "2024-03-15 09:31:00,aapl,BUY,0.5,171.25,0.01,o-1,e-1,trend\n"
        "2024-01-16T14:30:00Z,BRK.B,Sell,10,400.10,,o-2,e-2,\n",
        account="paper-1",
    )

    assert fills == [
        Fill(
            timestamp=utc("2024-01-16 14:30"),
            symbol="BRK.B",
            side=Side.SELL,
            qty=Decimal(10),
            price=Decimal("400.10"),
            exec_id="e-2",
            fee=Decimal(0),
            order_id="o-2",
            strategy=DEFAULT_STRATEGY,
            account="paper-1",
            sequence=1,
        ),
        Fill(
            # naive 09:31 New York in daylight time (EDT, UTC−4) → 13:31 UTC
            timestamp=utc("2024-03-15 13:31"),
            symbol="AAPL",
            side=Side.BUY,
            qty=Decimal("0.5"),
            price=Decimal("171.25"),
            exec_id="e-1",
            fee=Decimal("0.01"),
            order_id="o-1",
            strategy="trend",
            account="paper-1",
            sequence=0,
        ),
    ]


def test_naive_winter_timestamps_are_new_york_standard_time() -> None:
    [fill] = parse_fills_csv("timestamp,symbol,side,qty,price\n2024-01-16 09:30:00,SPY,buy,1,470\n")

    assert fill.timestamp == utc("2024-01-16 14:30")


def test_optional_columns_may_be_left_out() -> None:
    [fill] = parse_fills_csv("symbol,qty,side,price,timestamp\nSPY,3,buy,470,2024-01-16 09:30\n")

    assert (fill.fee, fill.order_id, fill.strategy, fill.exec_id.startswith("csv-")) == (
        Decimal(0),
        None,
        DEFAULT_STRATEGY,
        True,
    )


def test_derived_exec_ids_are_stable_keep_identical_rows_apart_and_survive_appends() -> None:
    rows = (
        "timestamp,symbol,side,qty,price\n"
        "2024-03-04 10:00:00,MSFT,buy,10,100\n"
        "2024-03-04 10:00:00,MSFT,buy,10,100\n"
    )
    first = [fill.exec_id for fill in parse_fills_csv(rows)]
    again = [fill.exec_id for fill in parse_fills_csv(rows)]
    appended = parse_fills_csv(rows + "2024-03-04 10:05:00,MSFT,sell,20,101\n")
    # '10.00' and '100.0' are the same numbers, so the same fill
    reformatted = parse_fills_csv(
        "timestamp,symbol,side,qty,price\n2024-03-04T15:00:00+00:00,msft,BUY,10.00,100.0\n"
    )

    assert first == again
    assert len(set(first)) == 2
    assert [fill.exec_id for fill in appended][:2] == first
    assert reformatted[0].exec_id == first[0]


def test_rows_with_the_same_timestamp_keep_file_order_and_earlier_rows_sort_first() -> None:
    fills = parse_fills_csv(
        "timestamp,symbol,side,qty,price,exec_id\n"
        "2024-03-04 10:00:00,MSFT,sell,1,101,third\n"
        "2024-03-04 10:00:00,MSFT,buy,1,100,fourth\n"
        "2024-03-04 09:59:00,MSFT,buy,1,99,first\n"
        "2024-03-04 10:00:00,MSFT,buy,2,100,fifth\n"
    )

    assert [fill.exec_id for fill in fills] == ["first", "third", "fourth", "fifth"]
    assert [fill.sequence for fill in fills] == [2, 0, 1, 3]


def test_a_path_is_read_as_a_file_and_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "fills.csv"
    path.write_text("\ufefftimestamp,symbol,side,qty,price\n2024-01-16 09:30,SPY,buy,1,470\n")

    [fill] = parse_fills_csv(path)

    assert fill.symbol == "SPY"


def test_every_bad_row_is_reported_with_its_file_line_and_column() -> None:
    text = (
        HEADER  # line 1
        + "2024-03-04 10:00:00,AAPL,buy,10,100,0,,a,\n"  # 2: fine
        + "\n"  # 3: blank, skipped but counted
        + "2024-03-04 10:01:00,AAPL,hold,-5,abc,,,,\n"  # 4: side, qty, price
        + "2024-13-04 10:02:00,AAPL;DROP,buy,1,0,-1,,,\n"  # 5: timestamp, symbol, price, fee
        + "2024-03-04 10:03:00,AAPL,sell,1,100,,,a,\n"  # 6: exec_id 'a' again
        + "2024-03-04 10:04:00,AAPL,sell,1\n"  # 7: too few fields
        + "2024-03-04 10:05:00,AAPL,sell,NaN,100,,,,\n"  # 8: qty not finite
    )

    with pytest.raises(FillsFileError) as caught:
        parse_fills_csv(text)

    assert [(error.line, error.column) for error in caught.value.errors] == [
        (4, "side"),
        (4, "qty"),
        (4, "price"),
        (5, "timestamp"),
        (5, "symbol"),
        (5, "price"),
        (5, "fee"),
        (6, "exec_id"),
        (7, None),
        (8, "qty"),
    ]
    message = str(caught.value)
    for expected in (
        "<fills text>: 10 problem(s), nothing imported",
        "line 4, column side: 'hold' is not a side; expected buy or sell",
        "line 4, column qty: '-5' must be > 0",
        "line 6, column exec_id: 'a' already used on line 2",
        "line 7: 4 fields, the header has 9",
        "line 8, column qty: 'NaN' is not a finite number",
    ):
        assert expected in message


def test_a_header_missing_required_columns_or_with_unknown_ones_is_refused() -> None:
    with pytest.raises(FillsFileError) as caught:
        parse_fills_csv("timestamp,symbol,side,quantity,price,fees\n")

    assert [str(error) for error in caught.value.errors] == [
        "line 1: unknown column(s) 'quantity', 'fees'; allowed: timestamp, symbol, side, qty, "
        "price, fee, order_id, exec_id, strategy",
        "line 1: missing required column(s) qty",
    ]


def test_an_empty_file_names_the_missing_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")

    with pytest.raises(FillsFileError, match=r"(?s)empty\.csv: 1 problem.*line 1: empty file"):
        parse_fills_csv(path)


def test_a_header_only_file_has_no_fills() -> None:
    assert parse_fills_csv(HEADER) == []


def test_a_fill_refuses_naive_times_and_non_positive_numbers() -> None:
    with pytest.raises(ValueError, match="must be timezone-aware"):
        Fill(dt.datetime(2024, 1, 2, 10), "SPY", Side.BUY, Decimal(1), Decimal(1), "x")
    with pytest.raises(ValueError, match=r"fill x SPY: qty 0 must be > 0; fee -1 must be >= 0"):
        Fill(utc("2024-01-02 15:00"), "SPY", Side.BUY, Decimal(0), Decimal(1), "x", Decimal(-1))


def test_a_split_ratio_is_new_shares_per_old_share() -> None:
    reverse = Split.on_ex_date("gme", dt.date(2024, 1, 2), Decimal(1), Decimal(10))

    assert (reverse.symbol, reverse.ratio) == ("GME", Decimal("0.1"))
    with pytest.raises(ValueError, match="split GME: numerator 0 must be > 0"):
        Split.on_ex_date("GME", dt.date(2024, 1, 2), Decimal(0))
