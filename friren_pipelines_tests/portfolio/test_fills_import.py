"""`friren fills import` → `friren sql "select * from realized_lots"`: hand-worked ledgers to the
cent, idempotent re-imports, all-or-nothing validation, on DuckDB and on Postgres."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import Result

from friren_pipelines.config import load_settings
from friren_pipelines.resources import StorageResource

CENT = Decimal("0.01")

# Partial fills of one order at one instant (file order decides FIFO), a sale closing two lots,
# a sale that flips long to short, a cover, and a fee-less short with derived exec ids.
# Naive timestamps are New York time (EDT in June: UTC-4).
LEDGER = """
timestamp,symbol,side,qty,price,fee,order_id,exec_id,strategy
2024-06-03 09:35:00,MSFT,buy,50,400.00,0.50,m1,x1,swing
2024-06-03 09:35:00,MSFT,buy,50,401.00,0.50,m1,x2,swing
2024-06-04 10:00:00,MSFT,sell,80,405.00,0.80,m2,x3,swing
2024-06-05 15:00:00,MSFT,sell,40,402.00,0.40,m3,x4,swing
2024-06-06 11:00:00,MSFT,buy,20,399.50,0.20,m4,x5,swing
2024-06-06 12:00:00,TSLA,sell,10,180.00,,,,
2024-06-07 12:00:00,TSLA,buy,10,190.00,1.00,,,
"""

# (symbol, side, qty, open_price, close_price, fees, realized_pnl, strategy, holding_seconds,
#  open_time UTC), worked by hand:
EXPECTED_LOTS = [
    # 50 of x1 closed by x3: fees 0.50 + 50/80 × 0.80; pnl 50 × (405 − 400) − 1.00
    ("MSFT", "long", "50", "400", "405", "1.00", "249.00", "swing", 87900, "2024-06-03 13:35:00"),
    # 30 of x2 closed by x3: fees 30/50 × 0.50 + 30/80 × 0.80; pnl 30 × 4 − 0.60
    ("MSFT", "long", "30", "401", "405", "0.60", "119.40", "swing", 87900, "2024-06-03 13:35:00"),
    # the other 20 of x2 closed by the flipping x4: fees 0.20 + 20/40 × 0.40; pnl 20 × 1 − 0.40
    ("MSFT", "long", "20", "401", "402", "0.40", "19.60", "swing", 192300, "2024-06-03 13:35:00"),
    # the 20 short x4 opened, covered by x5: fees 0.20 + 0.20; pnl 20 × (402 − 399.50) − 0.40
    (
        "MSFT",
        "short",
        "20",
        "402",
        "399.50",
        "0.40",
        "49.60",
        "swing",
        72000,
        "2024-06-05 19:00:00",
    ),
    # the fee-less short: pnl 10 × (180 − 190) − 1.00
    (
        "TSLA",
        "short",
        "10",
        "180",
        "190",
        "1.00",
        "-101.00",
        "default",
        86400,
        "2024-06-06 16:00:00",
    ),
]


def _sql_count(table: str) -> int:
    """Rows in the SQL store's table (Postgres when FRIREN_POSTGRES_URL is set, else DuckDB)."""
    settings = load_settings()
    storage = StorageResource(home=str(settings.home), postgres_url=settings.postgres_url)
    return int(storage.sql.query(f"SELECT count(*) FROM {table}")[0][0])


def _csv(result: Result) -> list[dict[str, str]]:
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


def _lots(friren: Callable[..., Result]) -> list[tuple[object, ...]]:
    found = _csv(
        friren("sql", "select * from realized_lots order by close_time, open_time, qty desc")
    )
    return [
        (
            row["symbol"],
            row["side"],
            Decimal(row["qty"]).normalize(),
            Decimal(row["open_price"]).quantize(CENT),
            Decimal(row["close_price"]).quantize(CENT),
            Decimal(row["fees"]).quantize(CENT),
            Decimal(row["realized_pnl"]).quantize(CENT),
            row["strategy"],
            int(row["holding_seconds"]),
            row["open_time"].removesuffix("+00:00"),
        )
        for row in found
    ]


def _expected() -> list[tuple[object, ...]]:
    return [
        (
            symbol,
            side,
            Decimal(qty).normalize(),
            Decimal(open_).quantize(CENT),
            Decimal(close).quantize(CENT),
            Decimal(fees),
            Decimal(pnl),
            strategy,
            seconds,
            opened,
        )
        for symbol, side, qty, open_, close, fees, pnl, strategy, seconds, opened in EXPECTED_LOTS
    ]


def test_imported_ledger_gives_hand_worked_lots_and_reimport_adds_nothing(
    backend_env: dict[str, str], friren: Callable[..., Result], ledger_file: Callable[[str], Path]
) -> None:
    path = ledger_file(LEDGER)
    first = friren("fills", "import", str(path))
    assert first.exit_code == 0, first.output
    assert _lots(friren) == _expected()

    again = friren("fills", "import", str(path))
    assert again.exit_code == 0, again.output
    assert "0 new, 7 already stored" in again.output
    assert _lots(friren) == _expected()
    assert _csv(friren("sql", "select count(*) as n from fills")) == [{"n": "7"}]
    assert _sql_count("realized_lots") == 5

    positions = _csv(friren("positions"))
    assert positions == []  # every lot of this ledger is closed

    by_symbol = {row["symbol"]: row for row in _csv(friren("pnl", "--by", "symbol"))}
    assert Decimal(by_symbol["MSFT"]["realized_pnl"]).quantize(CENT) == Decimal("437.60")
    assert Decimal(by_symbol["TSLA"]["realized_pnl"]).quantize(CENT) == Decimal("-101.00")
    by_strategy = {row["strategy"]: row for row in _csv(friren("pnl", "--by", "strategy"))}
    assert set(by_strategy) == {"swing", "default"}


def test_malformed_ledger_stores_nothing_and_names_the_bad_line(
    backend_env: dict[str, str], friren: Callable[..., Result], ledger_file: Callable[[str], Path]
) -> None:
    good = ledger_file(LEDGER)
    assert friren("fills", "import", str(good)).exit_code == 0
    bad = ledger_file(
        """
timestamp,symbol,side,qty,price,fee,order_id,exec_id,strategy
2024-07-01 09:31:00,AAPL,buy,10,200.00,1.00,a1,y1,swing
2024-07-01 09:32:00,AAPL,sell,10,201.00,1.00,a2,y2,swing
2024-07-01 09:33:00,AAPL,hold,10,201.00,1.00,a3,y3,swing
2024-07-01 09:34:00,AAPL,sell,-5,201.00,1.00,a4,y4,swing
"""
    )
    result = friren("fills", "import", str(bad))
    assert result.exit_code == 1
    assert "line 4, column side" in result.output
    assert "line 5, column qty" in result.output
    assert "nothing imported" in result.output
    assert _csv(friren("sql", "select count(*) as n from fills where symbol = 'AAPL'")) == [
        {"n": "0"}
    ]
    assert _sql_count("fills") == 7
    assert _lots(friren) == _expected()


def test_average_cost_method_prices_the_lot_at_the_pool_average(
    friren_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    friren: Callable[..., Result],
    ledger_file: Callable[[str], Path],
) -> None:
    monkeypatch.setenv("FRIREN_LOT_METHOD", "average")
    path = ledger_file(
        """
timestamp,symbol,side,qty,price,fee
2024-06-03T13:31:00Z,IBM,buy,10,100,1
2024-06-03T13:32:00Z,IBM,buy,10,110,1
2024-06-03T13:33:00Z,IBM,sell,10,120,1
"""
    )
    assert friren("fills", "import", str(path), "--account", "ira").exit_code == 0
    (lot,) = _csv(friren("sql", "select * from realized_lots"))
    # pool: 20 @ 105 with 2.00 of fees; selling 10 carries 1.00 of them plus the 1.00 close fee
    assert Decimal(lot["open_price"]) == Decimal(105)
    assert Decimal(lot["fees"]) == Decimal("2.00")
    assert Decimal(lot["realized_pnl"]) == Decimal("148.00")
    assert (lot["account"], lot["lot_method"]) == ("ira", "average")
    (position,) = _csv(friren("positions"))
    assert (position["symbol"], Decimal(position["qty"]), position["source"]) == (
        "IBM",
        Decimal(10),
        "ledger",
    )


SPLIT_LEDGER = """timestamp,symbol,side,qty,price,fee,order_id,exec_id,strategy
2024-06-03T10:00:00-04:00,NVDA,buy,100,40.00,1.00,o1,n1,alpha
2024-06-12T10:00:00-04:00,NVDA,sell,400,11.00,2.00,o2,n2,alpha
"""


def test_an_imported_4_for_1_split_rescales_the_open_lot(
    backend_env: dict[str, str],
    friren: Callable[..., Result],
    ledger_file: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    # Before the split is known, selling 400 of 100 shares closes 100 and opens a 300 short.
    assert friren("fills", "import", str(ledger_file(SPLIT_LEDGER))).exit_code == 0
    assert [r["side"] for r in _csv(friren("positions"))] == ["short"]
    splits = tmp_path / "splits.csv"
    splits.write_text("symbol,date,ratio\nNVDA,2024-06-10,4:1\n")
    for _ in range(2):  # re-importing the split changes nothing
        result = friren("splits", "import", str(splits))
        assert result.exit_code == 0, result.output
        # By hand: 100 @ 40 become 400 @ 10 (cost 4000 unchanged); sold 400 @ 11;
        # fees 1.00 + 2.00; realized = 400 x (11 - 10) - 3 = 397.
        lots = _csv(
            friren(
                "sql", "select qty, open_price, close_price, fees, realized_pnl from realized_lots"
            )
        )
        assert [{k: Decimal(v) for k, v in lot.items()} for lot in lots] == [
            {
                "qty": Decimal(400),
                "open_price": Decimal(10),
                "close_price": Decimal(11),
                "fees": Decimal(3),
                "realized_pnl": Decimal(397),
            }
        ]
        assert _csv(friren("positions")) == []
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,date,ratio\nNVDA,2024-06-10,four\n")
    refused = friren("splits", "import", str(bad))
    assert refused.exit_code == 1 and "line 2, column ratio" in refused.output
