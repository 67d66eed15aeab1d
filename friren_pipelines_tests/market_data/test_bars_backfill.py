"""End to end: `friren backfill` through a real Dagster instance into Parquet and SQL."""

import csv
import hashlib
import io
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from friren_pipelines.cli import main
from friren_pipelines.storage import warehouse as warehouse_module


def friren(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _parquet_digests(home: Path) -> dict[str, str]:
    return {
        str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(home.rglob("data.parquet"))
    }


def _rows(query: str) -> list[dict[str, str]]:
    result = friren("sql", query)
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


@pytest.fixture
def on_postgres(
    friren_env: dict[str, str], postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    monkeypatch.setenv("FRIREN_POSTGRES_URL", postgres_url)
    return postgres_url


def _sql_rows(postgres_url: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        return conn.execute(
            "SELECT symbol, timeframe, timestamp, open, high, low, close, volume, vwap, trade_count"
            " FROM market_data_bars ORDER BY symbol, timeframe, timestamp"
        ).fetchall()


def test_rerunning_a_backfill_leaves_identical_parquet_and_sql_rows(
    on_postgres: str, friren_env: dict[str, str]
) -> None:
    args = (
        "backfill",
        "--symbols",
        "AAPL,MSFT",
        "--start",
        "2024-11-20",
        "--end",
        "2024-12-03",
        "--timeframes",
        "1d,1min,5min",
    )
    first = friren(*args)
    assert first.exit_code == 0, first.output
    home = Path(friren_env["FRIREN_HOME"])
    digests, rows = _parquet_digests(home), _sql_rows(on_postgres)
    assert friren(*args).exit_code == 0
    assert _parquet_digests(home) == digests
    assert _sql_rows(on_postgres) == rows
    # 1d partitions are years: all of 2024 is stored. Intraday partitions are the three weeks
    # touched: 14 sessions, Thanksgiving closed and the day after an early close (210 minutes).
    counts = {
        r["timeframe"]: int(r["n"])
        for r in _rows(
            "select timeframe, count(*) n from (select * from bars_1d union all select * from bars_1min union all select * from bars_5min) group by 1"
        )
    }
    assert counts == {"1d": 2 * 252, "1min": 2 * (13 * 390 + 210), "5min": 2 * (13 * 78 + 42)}
    assert len(rows) == sum(counts.values())


def test_a_run_killed_mid_write_loses_nothing_and_a_rerun_heals_it(
    on_postgres: str, friren_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = (
        "backfill",
        "--symbols",
        "AAPL,MSFT,SPY",
        "--start",
        "2023-01-01",
        "--end",
        "2024-12-31",
    )
    assert friren(*args).exit_code == 0
    home = Path(friren_env["FRIREN_HOME"])
    digests, rows = _parquet_digests(home), _sql_rows(on_postgres)
    for path in home.rglob("data.parquet"):
        path.unlink()  # lose some files, as after a disk mishap

    real_stage = warehouse_module.Warehouse.stage
    calls = {"n": 0}

    def dies_on_third_file(self: warehouse_module.Warehouse, *a: object, **k: object) -> Path:
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("killed")
        return real_stage(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(warehouse_module.Warehouse, "stage", dies_on_third_file)
    killed = friren(*args)
    assert killed.exit_code == 1 and "killed" in killed.output
    assert _sql_rows(on_postgres) == rows  # the SQL transaction rolled back
    assert not list(home.rglob(".data.parquet.*"))
    monkeypatch.setattr(warehouse_module.Warehouse, "stage", real_stage)
    healed = friren(*args)
    assert healed.exit_code == 0, healed.output
    assert _parquet_digests(home) == digests and _sql_rows(on_postgres) == rows


def test_a_csv_export_is_ingested_exactly(csv_source: Path, shared_data: Path) -> None:
    shutil.copy(shared_data / "daily" / "ORCL_1d_2000_yahoo_newest-first.csv", csv_source)
    result = friren("backfill", "--symbols", "ORCL", "--start", "2000-01-01", "--end", "2000-12-31")
    assert result.exit_code == 0, result.output
    stored = {r["session_date"]: r for r in _rows("select * from bars_1d order by timestamp")}
    with (shared_data / "daily" / "ORCL_1d_2000_yahoo_newest-first.csv").open() as handle:
        source = list(csv.DictReader(handle))
    assert len(stored) == len(source) == 252
    for line in source:
        row = stored[line["Date"]]
        assert [float(row[c]) for c in ("open", "high", "low", "close", "volume")] == [
            float(line[c]) for c in ("Open", "High", "Low", "Close", "Volume")
        ]


def test_a_csv_with_high_below_low_stores_nothing_and_names_the_row(csv_source: Path) -> None:
    good = "Date,Open,High,Low,Close,Volume\n2024-03-14,10,11,9,10.5,100\n2024-03-15,10,11,9,10.5,100\n"
    (csv_source / "XYZ.csv").write_text(good)
    assert (
        friren(
            "backfill", "--symbols", "XYZ", "--start", "2024-03-01", "--end", "2024-03-31"
        ).exit_code
        == 0
    )
    (csv_source / "XYZ.csv").write_text(good.replace("2024-03-15,10,11,9", "2024-03-15,10,8,9"))
    result = friren("backfill", "--symbols", "XYZ", "--start", "2024-03-01", "--end", "2024-03-31")
    assert result.exit_code != 0
    assert "XYZ 2024-03-15" in result.output and "high < low" in result.output
    assert [r["high"] for r in _rows("select high from bars_1d order by timestamp")] == [
        "11.0",
        "11.0",
    ]


def test_an_unknown_symbol_fails_with_a_clear_error(csv_source: Path) -> None:
    result = friren("backfill", "--symbols", "NOPE", "--start", "2024-03-01", "--end", "2024-03-31")
    assert result.exit_code != 0 and "NOPE" in result.output


@pytest.mark.parametrize("symbol", ["../x", "A;DROP TABLE", "a|b"])
def test_symbols_that_are_not_tickers_never_reach_storage(
    friren_env: dict[str, str], symbol: str
) -> None:
    result = friren("backfill", "--symbols", symbol, "--start", "2024-03-01", "--end", "2024-03-31")
    assert result.exit_code == 2 and "invalid symbol" in result.output
    assert friren("symbols", "add", symbol).exit_code == 2
    assert not Path(friren_env["FRIREN_HOME"]).exists()


def test_symbols_are_managed_from_the_cli(friren_env: dict[str, str]) -> None:
    assert friren("symbols", "add", "aapl", "brk.b", "--watchlist").exit_code == 0
    assert friren("symbols", "remove", "BRK.B", "--watchlist-only").exit_code == 0
    assert friren("symbols", "list").output.splitlines() == [
        "symbol,universe,watchlist",
        "AAPL,True,True",
        "BRK.B,True,False",
    ]


def test_bars_still_forming_are_left_out() -> None:
    import datetime as dt

    import pandas as pd

    from friren_pipelines.core.bars import Timeframe
    from friren_pipelines.market_data.bars import fetch_partitions
    from friren_pipelines.market_data.partitions import parse_partition
    from friren_pipelines.sources.synthetic import SyntheticBarSource

    friday_10am = pd.Timestamp("2024-03-08 15:00:30", tz="UTC")
    partition = parse_partition(Timeframe.MIN1, "AAPL|2024-03-04")
    bars = fetch_partitions(SyntheticBarSource(), Timeframe.MIN1, [partition], now=friday_10am)
    assert bars["timestamp"].max() == pd.Timestamp("2024-03-08 14:59", tz="UTC")
    assert len(bars) == 4 * 390 + 30 and bars.attrs["unfinished_bars"] == 360
    assert bars["session_date"].max() == dt.date(2024, 3, 8)


def test_a_failed_backfill_ends_with_the_root_cause_naming_the_input(csv_source: Path) -> None:
    (csv_source / "NANP.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n2024-03-13,10,11,9,10.5,100\n"
        "2024-03-14,10,11,9,10.5,100\n2024-03-15,10,11,9,NaN,100\n"
    )
    result = friren("backfill", "--symbols", "NANP", "--start", "2024-03-01", "--end", "2024-03-31")
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert "csv: NANP.csv" in last and "line 4" in last and "'close'" in last, last
    assert "DagsterExecutionStepExecutionError" not in last and "Error occurred" not in last


def test_dates_outside_the_calendar_are_refused_in_one_line_before_anything_is_registered(
    friren_env: dict[str, str],
) -> None:
    result = friren("backfill", "--symbols", "ZZZ", "--start", "2131-01-01", "--end", "2131-02-01")
    assert result.exit_code == 2
    assert (
        result.output.strip()
        .splitlines()[-1]
        .startswith(
            "Error: Invalid value: dates 2131-01-01..2131-02-01 are outside the XNYS calendar"
            " (1990-01-02.."
        )
    )
    assert "ZZZ" not in friren("symbols", "list").output


def test_an_unexpected_failure_is_one_line_and_its_traceback_only_with_verbose(
    friren_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the store's disk is full\nand a second line")

    monkeypatch.setattr("friren_pipelines.storage.views.execute_read_only", broken)
    quiet = CliRunner().invoke(main, ["sql", "select 1"])
    assert quiet.exit_code == 1
    assert quiet.output == "Error: RuntimeError: the store's disk is full\n"
    loud = CliRunner().invoke(main, ["--verbose", "sql", "select 1"])
    assert isinstance(loud.exception, RuntimeError)


def test_a_check_reports_parquet_and_sql_apart_and_the_next_backfill_mends_them(
    on_postgres: str, friren_env: dict[str, str]
) -> None:
    import dagster as dg
    import psycopg

    from friren_pipelines.config import load_settings
    from friren_pipelines.core.bars import Timeframe
    from friren_pipelines.market_data.bars import BARS_ASSETS, BARS_CHECKS
    from friren_pipelines.resources import build_resources

    args = ("backfill", "--symbols", "AAPL", "--start", "2024-01-01", "--end", "2024-12-31")
    assert friren(*args).exit_code == 0
    with psycopg.connect(on_postgres) as conn:  # rows lost behind the platform's back
        conn.execute(
            "DELETE FROM market_data_bars WHERE symbol = 'AAPL' AND session_date < '2024-01-06'"
        )

    def checks_alone() -> dict[str, dg.AssetCheckEvaluation]:
        daily = BARS_ASSETS[Timeframe.DAY1]
        result = dg.materialize(
            [daily, BARS_CHECKS[Timeframe.DAY1]],
            selection=dg.AssetSelection.checks_for_assets(daily),
            instance=dg.DagsterInstance.get(),
            resources=build_resources(load_settings()),
            raise_on_error=False,
        )
        return {e.check_name: e for e in result.get_asset_check_evaluations()}

    apart = checks_alone()["bars_stores_agree"]
    assert not apart.passed and apart.description == "all: 252 in Parquet, 248 in SQL"
    assert friren(*args).exit_code == 0
    assert checks_alone()["bars_stores_agree"].passed
