"""`storage.views`: `friren sql` reads the Parquet datasets and the SQL store's tables, never
writes, and never waits for the SQL store unless a query names one of its tables."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from friren_pipelines.cli import main
from friren_pipelines.storage.sql import open_sql_store
from friren_pipelines.storage.tables import FILLS
from friren_pipelines.storage.views import (
    QueryError,
    SqlStoreBusyError,
    connect_views,
    execute_read_only,
    named_sql_tables,
    object_names,
)
from friren_pipelines.storage.warehouse import Warehouse


def friren(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _rows(query: str) -> list[dict[str, str]]:
    result = friren("sql", query)
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


def _fill(exec_id: str) -> dict[str, object]:
    return {
        "account": "demo",
        "exec_id": exec_id,
        "order_id": None,
        "timestamp": dt.datetime(2024, 3, 15, 14, 0, tzinfo=dt.UTC),
        "trade_date": dt.date(2024, 3, 15),
        "settlement_date": dt.date(2024, 3, 18),
        "symbol": "AAPL",
        "side": "buy",
        "qty": Decimal(1),
        "price": Decimal("172.5"),
        "fee": Decimal(0),
        "strategy": "",
        "source": "import",
        "sequence": 0,
    }


@pytest.fixture(params=["duckdb", "postgres"])
def postgres_or_none(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else None


def _backfill_aapl_2025() -> None:
    result = friren("backfill", "--symbols", "AAPL", "--start", "2025-03-03", "--end", "2025-03-07")
    assert result.exit_code == 0, result.output


def test_sql_reads_symbol_metadata_after_a_backfill_on_the_embedded_store(
    friren_env: dict[str, str],
) -> None:
    _backfill_aapl_2025()
    (row,) = _rows("select * from symbol_metadata")
    assert (row["symbol"], row["timeframe"], row["total_bars"]) == ("AAPL", "1d", "250")
    assert row["latest_bar"] == "2025-12-31 14:30:00+00:00"
    assert _rows("select total_bars from sql.symbol_metadata") == [{"total_bars": "250"}]
    assert _rows("select count(*) n from sql.market_data_bars") == [{"n": "250"}]
    # Parquet and SQL side by side in one query; the existing Parquet queries are unchanged.
    joined = _rows(
        "select count(*) n from bars_1d b join sql.market_data_bars m using (symbol, timestamp)"
    )
    assert joined == [{"n": "250"}]


def test_sql_reads_symbol_metadata_after_a_backfill_on_postgres(
    friren_env: dict[str, str], postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRIREN_POSTGRES_URL", postgres_url)
    _backfill_aapl_2025()
    (row,) = _rows("select * from symbol_metadata")
    assert (row["symbol"], row["timeframe"], row["total_bars"]) == ("AAPL", "1d", "250")
    assert row["earliest_bar"] == "2025-01-02 14:30:00+00:00"
    assert _rows("select count(*) n, max(close) > 0 ok from sql.market_data_bars") == [
        {"n": "250", "ok": "True"}
    ]


def test_a_name_in_both_stores_means_the_parquet_dataset_and_sql_dot_the_table(
    tmp_path: Path, postgres_or_none: str | None
) -> None:
    store = open_sql_store(postgres_or_none, tmp_path / "friren.duckdb")
    store.migrate()
    with store.transaction() as tx:
        tx.insert("fills", FILLS.to_arrow([_fill("sql-1"), _fill("sql-2")]))
    Warehouse(tmp_path).write("fills", [], FILLS.to_arrow([_fill("parquet-1")]))

    conn = execute_read_only(
        tmp_path,
        "select (select string_agg(exec_id) from fills) p, "
        "(select string_agg(exec_id order by exec_id) from sql.fills) s",
        postgres_url=postgres_or_none,
    )
    assert conn.fetchall() == [("parquet-1", "sql-1,sql-2")]
    # Money keeps its exact decimal type through either store.
    prices = execute_read_only(
        tmp_path, "select price from sql.fills limit 1", postgres_url=postgres_or_none
    )
    assert prices.fetchall() == [(Decimal("172.5"),)]


def test_only_the_sql_tables_a_query_names_are_read_from_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    open_sql_store(postgres_url, tmp_path / "unused.duckdb").migrate()
    conn = connect_views(tmp_path, postgres_url=postgres_url, sql_tables=["symbol_metadata"])
    assert object_names(conn) == ["sql.symbol_metadata"]
    assert named_sql_tables("select * from Symbol_Metadata", []) == ["symbol_metadata"]
    assert named_sql_tables("select * from fills join sql.splits using (symbol)", ["fills"]) == [
        "splits"
    ]
    assert named_sql_tables("select * from fills", []) == ["fills"]  # no dataset: the SQL one


@pytest.mark.parametrize(
    "query",
    [
        "create table x (a int)",
        "copy (select 1) to 'out.csv'",
        "attach 'other.duckdb'",
        "select 1; drop view bars_1d",
        "install postgres",
    ],
)
def test_sql_refuses_anything_but_select(friren_env: dict[str, str], query: str) -> None:
    result = friren("sql", query)
    assert result.exit_code != 0
    assert "only SELECT and EXPLAIN are allowed" in result.output


def test_an_unknown_name_lists_what_can_be_queried(tmp_path: Path) -> None:
    Warehouse(tmp_path).write("fills", [], FILLS.to_arrow([_fill("x")]))
    with pytest.raises(QueryError, match=r"does not exist.*tables: fills"):
        execute_read_only(tmp_path, "select * from nope")


_HOLD_LOCK = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1])
conn.execute("CREATE TABLE IF NOT EXISTS symbol_metadata (symbol TEXT)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.close()
"""


def _writer_holding_the_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    writer = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "locked"
    return writer


def test_a_locked_embedded_store_is_waited_for_briefly_then_named(tmp_path: Path) -> None:
    Warehouse(tmp_path).write("fills", [], FILLS.to_arrow([_fill("x")]))
    writer = _writer_holding_the_lock(tmp_path / "friren.duckdb", 3.0)
    try:
        # A Parquet query does not touch the SQL store, so the writer does not delay it.
        started = time.monotonic()
        assert execute_read_only(tmp_path, "select count(*) from fills").fetchall() == [(1,)]
        assert time.monotonic() - started < 2.0
        with pytest.raises(SqlStoreBusyError, match=r"friren\.duckdb is locked by a writer"):
            execute_read_only(tmp_path, "select * from symbol_metadata", lock_wait=0.3)
        # Waiting long enough outlasts the writer.
        found = execute_read_only(tmp_path, "select count(*) from symbol_metadata", lock_wait=20)
        assert found.fetchall() == [(0,)]
    finally:
        writer.wait(timeout=30)


@pytest.mark.parametrize(
    ("query", "refusal"),
    [
        ("select * from read_csv('/etc/passwd')", "file system operations are disabled"),
        ("select * from read_text('/etc/hostname')", "file system operations are disabled"),
        ("select * from read_parquet('/tmp/*.parquet')", "file system operations are disabled"),
        ("select current_setting('enable_external_access') as on", None),
    ],
)
def test_sql_reads_no_file_outside_the_warehouse(
    friren_env: dict[str, str], query: str, refusal: str | None
) -> None:
    _backfill_aapl_2025()
    stored = _rows("select count(*) as n from bars_1d")
    result = friren("sql", query)
    if refusal is None:
        assert result.output.splitlines() == ["on", "False"]
    else:
        assert result.exit_code != 0 and refusal in result.output
    assert _rows("select count(*) as n from bars_1d") == stored  # the warehouse still reads


def test_a_query_cannot_unlock_what_sql_may_read(tmp_path: Path) -> None:
    conn = connect_views(tmp_path)
    with pytest.raises(Exception, match="configuration has been locked"):
        conn.execute("SET enable_external_access = true")
