import datetime as dt
import time
from decimal import Decimal
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pytest

from friren_pipelines.storage import pg_copy
from friren_pipelines.storage.sql import (
    PostgresStore,
    Slice,
    SqlStore,
    StoreUnavailableError,
)
from friren_pipelines_tests.fakes.tcp_proxy import TcpProxy

UTC = dt.UTC


def _bars(symbol: str, closes: list[float], start: dt.datetime) -> pa.Table:
    n = len(closes)
    stamps = [start + dt.timedelta(minutes=i) for i in range(n)]
    return pa.table(
        {
            "symbol": [symbol] * n,
            "timeframe": ["1min"] * n,
            "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "session_date": [s.date() for s in stamps],
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": [100.0] * n,
            "vwap": pa.array([None] * (n - 1) + [1.25], pa.float64()),
            "trade_count": pa.array([7] + [None] * (n - 1), pa.int64()),
            "adjustment": ["raw"] * n,
            "source": ["synthetic"] * n,
        }
    )


def _slice(symbol: str, day: dt.date) -> Slice:
    start = dt.datetime.combine(day, dt.time(), UTC)
    return Slice(
        (("symbol", symbol), ("timeframe", "1min")),
        "timestamp",
        start,
        start + dt.timedelta(days=1),
    )


def test_migrations_apply_once(store: SqlStore) -> None:
    assert store.migrate() == []
    versions = [row[0] for row in store.query("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions[0] == 1 and versions == sorted(set(versions))


def test_replacing_a_slice_is_idempotent_and_leaves_other_slices_alone(store: SqlStore) -> None:
    day = dt.datetime(2024, 3, 15, 13, 30, tzinfo=UTC)
    for _ in range(2):
        with store.transaction() as tx:
            tx.delete_slices(
                "market_data_bars", [_slice("AAPL", day.date()), _slice("MSFT", day.date())]
            )
            tx.insert(
                "market_data_bars",
                pa.concat_tables([_bars("AAPL", [1.0, 2.0, 3.0], day), _bars("MSFT", [5.0], day)]),
            )
    with store.transaction() as tx:
        tx.delete_slices("market_data_bars", [_slice("AAPL", day.date())])
        tx.insert("market_data_bars", _bars("AAPL", [9.0, 8.0], day))
    rows = store.query(
        "SELECT symbol, close, vwap, trade_count FROM market_data_bars ORDER BY symbol, timestamp"
    )
    assert rows == [("AAPL", 9.0, None, 7), ("AAPL", 8.0, 1.25, None), ("MSFT", 5.0, 1.25, 7)]


def test_a_failed_transaction_stores_nothing(store: SqlStore) -> None:
    day = dt.datetime(2024, 3, 15, 13, 30, tzinfo=UTC)
    with store.transaction() as tx:
        tx.insert("market_data_bars", _bars("AAPL", [1.0], day))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.delete_slices("market_data_bars", [_slice("AAPL", day.date())])
        tx.insert("market_data_bars", _bars("AAPL", [2.0, 3.0], day))
        raise RuntimeError("killed")
    assert store.query("SELECT close FROM market_data_bars") == [(1.0,)]


def test_duplicate_bars_violate_the_unique_key(store: SqlStore) -> None:
    day = dt.datetime(2024, 3, 15, 13, 30, tzinfo=UTC)
    with (
        pytest.raises(Exception, match=r"(?i)duplicate|unique|constraint"),
        store.transaction() as tx,
    ):
        tx.insert("market_data_bars", pa.concat_tables([_bars("AAPL", [1.0], day)] * 2))


def test_binary_copy_matches_the_values_exactly(postgres_url: str) -> None:
    rng = np.random.default_rng(7)
    closes = list(rng.uniform(0.01, 5000, 1000))
    table = _bars("BRK.B", closes, dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC))
    assert pg_copy.encodable(table)
    store = PostgresStore(postgres_url)
    store.migrate()
    with store.transaction() as tx:
        tx.insert("market_data_bars", table)
    stored = [
        row[0] for row in store.query("SELECT close FROM market_data_bars ORDER BY timestamp")
    ]
    assert stored == closes


def test_decimals_and_non_ascii_text_fall_back_to_csv_copy() -> None:
    assert not pg_copy.encodable(pa.table({"x": pa.array([Decimal("1.10")], pa.decimal128(10, 2))}))
    assert not pg_copy.encodable(pa.table({"s": ["stratégie"]}))


@pytest.mark.parametrize(
    "url",
    [" postgresql://u:s3cretPW@127.0.0.1:5432/db", "postgresql://u:s%ZZ3cretPW@127.0.0.1:5432/db"],
)
def test_connection_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(StoreUnavailableError) as error:
        PostgresStore(url).query("SELECT 1")
    assert "s3cretPW" not in str(error.value) and "ZZ" not in str(error.value)
    assert "127.0.0.1:5432/db" in str(error.value)
    assert "s3cretPW" not in repr(PostgresStore(url))


def test_a_store_that_stalls_mid_copy_fails_within_its_timeout_naming_it(
    postgres_url: str,
) -> None:
    parts = urlsplit(postgres_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        url = f"postgresql://postgres:hunter2@127.0.0.1:{proxy.port}{parts.path}"
        store = PostgresStore(url, timeout_seconds=2)
        store.migrate()
        rows = _bars(
            "AAPL", [1.0 + i / 100 for i in range(50_000)], dt.datetime(2024, 1, 2, tzinfo=UTC)
        )
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as error, store.transaction() as tx:
            proxy.stall()
            tx.insert("market_data_bars", rows)
        waited = time.monotonic() - started
    message = str(error.value)
    assert "no answer within 2 s (FRIREN_SQL_TIMEOUT_SECONDS)" in message
    assert f"127.0.0.1:{proxy.port}" in message and "hunter2" not in message
    assert waited < 10
    assert PostgresStore(postgres_url).query("SELECT count(*) FROM market_data_bars") == [(0,)]
