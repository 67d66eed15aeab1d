"""Indicator assets end to end: real series through the csv source, bars and indicators materialized
in a real Dagster instance, read back from the warehouse views and the SQL store, against TA-Lib."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import talib
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from friren_pipelines.config import load_settings
from friren_pipelines.core.bars import Timeframe
from friren_pipelines.core.indicators import INDICATOR_NAMES, WARMUP_BARS, WIDE_COLUMNS
from friren_pipelines.market_data.bars import BARS_ASSETS, BARS_CHECKS
from friren_pipelines.market_data.indicators import INDICATOR_ASSETS, INDICATOR_CHECKS
from friren_pipelines.market_data.indicators.compute import compute_writes
from friren_pipelines.market_data.indicators.history import SymbolHistory
from friren_pipelines.market_data.indicators.repair import IndicatorWrite
from friren_pipelines.market_data.partitions import parse_partition
from friren_pipelines.resources import StorageResource, build_resources
from friren_pipelines.storage.tables import INDICATORS
from friren_pipelines.storage.views import connect_views

INTC = "INTC_1d_1995-01-03_2004-04-08_yahoo.csv"
NVDA = "NVDA_1d_1999-01-22_2014-12-31_yahoo.csv"
AAPL_1MIN = "AAPL_1min_2021-08-23_2021-08-25_yfinance.csv"


def _materialize(
    timeframe: Timeframe, first: str, last: str, *, bars: bool = True, indicators: bool = True
) -> dg.ExecuteInProcessResult:
    """One single-run backfill of the keys first..last (symbol|period) in the test's instance."""
    chosen: list[dg.AssetsDefinition | dg.AssetChecksDefinition] = []
    if bars:
        chosen += [BARS_ASSETS[timeframe], BARS_CHECKS[timeframe]]
    if indicators:
        chosen += [INDICATOR_ASSETS[timeframe], INDICATOR_CHECKS[timeframe]]
    result = dg.materialize(
        chosen,
        instance=dg.DagsterInstance.get(),
        resources=build_resources(load_settings()),
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        raise_on_error=False,
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return result


def _register(set_name: str, symbols: Sequence[str]) -> None:
    dg.DagsterInstance.get().add_dynamic_partitions(set_name, list(symbols))


def _stored_wide(home: Path, timeframe: Timeframe, symbol: str) -> pd.DataFrame:
    conn = connect_views(home)
    view = INDICATORS.dataset_for(timeframe)
    cursor = conn.execute(f"select * from {view} where symbol = ? order by timestamp", [symbol])
    assert [c[0] for c in cursor.description] == list(WIDE_COLUMNS)
    return cursor.df()


def _closes(path: Path) -> pd.Series:
    frame = pd.read_csv(path)
    stamp = "Datetime" if "Datetime" in frame else "Date"
    return frame.sort_values(stamp)["Close"].reset_index(drop=True)


def _talib(closes: np.ndarray) -> dict[str, np.ndarray]:
    """TA-Lib called directly, as an analyst would, over the full series."""
    macd = talib.MACD(closes, fastperiod=12, slowperiod=26, signalperiod=9)
    bands = talib.BBANDS(closes, timeperiod=20, nbdevup=2, nbdevdn=2, matype=talib.MA_Type.SMA)
    return {
        "rsi_14": talib.RSI(closes, 14),
        "rsi_9": talib.RSI(closes, 9),
        "sma_10": talib.SMA(closes, 10),
        "sma_20": talib.SMA(closes, 20),
        "sma_50": talib.SMA(closes, 50),
        "sma_200": talib.SMA(closes, 200),
        "ema_10": talib.EMA(closes, 10),
        "ema_20": talib.EMA(closes, 20),
        "ema_50": talib.EMA(closes, 50),
        "macd": macd[0],
        "macd_signal": macd[1],
        "macd_hist": macd[2],
        "bb_upper": bands[0],
        "bb_middle": bands[1],
        "bb_lower": bands[2],
    }


def _assert_equals_talib(stored: pd.DataFrame, closes: np.ndarray) -> None:
    assert len(stored) == len(closes)
    for name, expected in _talib(closes).items():
        got = stored[name].to_numpy(dtype=np.float64, na_value=np.nan)
        warmup = np.isnan(expected)
        assert np.array_equal(np.isnan(got), warmup), name
        assert warmup.sum() == WARMUP_BARS[name], name
        scale = np.maximum(np.abs(expected[~warmup]), 1e-12)
        assert np.max(np.abs(got[~warmup] - expected[~warmup]) / scale) <= 1e-9, name


def _storage() -> StorageResource:
    settings = load_settings()
    return StorageResource(home=str(settings.home), postgres_url=settings.postgres_url)


def _sql_wide(storage: StorageResource, timeframe: Timeframe, symbol: str) -> pd.DataFrame:
    long = storage.sql.query_arrow(
        "SELECT timestamp, indicator_name, indicator_value FROM market_data_indicators"
        " WHERE symbol = %s AND timeframe = %s",
        [symbol, timeframe.value],
    ).to_pandas()
    wide = long.pivot(index="timestamp", columns="indicator_name", values="indicator_value")
    return wide.loc[:, list(INDICATOR_NAMES)].sort_index()


def _assert_sql_equals_parquet(timeframe: Timeframe, symbol: str, parquet: pd.DataFrame) -> None:
    sql = _sql_wide(_storage(), timeframe, symbol)
    assert len(sql) == len(parquet)
    assert (sql.index == pd.DatetimeIndex(parquet["timestamp"])).all()
    for name in INDICATOR_NAMES:
        assert np.array_equal(
            sql[name].to_numpy(dtype=np.float64, na_value=np.nan),
            parquet[name].to_numpy(dtype=np.float64, na_value=np.nan),
            equal_nan=True,
        ), name


def test_computed_writes_hold_talib_over_each_history_for_several_symbols_and_gapped_windows(
    shared_data: Path,
) -> None:
    """The run's columns get each write's rows of TA-Lib over the symbol's whole history, bit for
    bit, in write order, whatever the windows: from the start, later, or with unwritten rows."""
    closes = {
        "INTC": _closes(shared_data / "daily" / INTC).to_numpy(),
        "NVDA": _closes(shared_data / "daily" / NVDA).to_numpy(),
    }
    histories = {
        symbol: SymbolHistory(
            symbol,
            pa.table(
                {
                    "timestamp": pa.array(
                        pd.date_range("1990-01-01", periods=len(close), freq="D", tz="UTC")
                    ).cast(pa.timestamp("us", tz="UTC")),
                    "close": close,
                }
            ),
            periods={},
        )
        for symbol, close in closes.items()
    }
    rows = {"INTC|1995": (0, 150), "NVDA|2001": (400, 700), "NVDA|2004": (1200, 1500)}
    writes = [
        IndicatorWrite(
            parse_partition(Timeframe.DAY1, key), span, "fingerprint", key == "NVDA|2004"
        )
        for key, span in rows.items()
    ]
    computed = compute_writes(Timeframe.DAY1, writes, histories)

    assert computed.writes == writes and computed.compute_seconds > 0
    assert len(computed.wide) == 150 + 300 + 300
    for index, write in enumerate(computed.writes):
        start, end = write.rows
        symbol = write.partition.symbol
        piece = computed.wide.iloc[computed.rows_of(index)]
        assert (piece["symbol"] == symbol).all()
        expected_stamps = histories[symbol].bars.column("timestamp").to_pandas()[start:end]
        assert (piece["timestamp"].to_numpy() == expected_stamps.to_numpy()).all()
        for name, expected in _talib(closes[symbol]).items():
            np.testing.assert_array_equal(
                piece[name].to_numpy(dtype=np.float64, na_value=np.nan),
                expected[start:end],
                err_msg=f"{write.partition.key} {name}",
                strict=True,
            )


def test_chunks_backfilled_in_reverse_order_equal_talib_over_the_full_history(
    csv_source: Path, shared_data: Path, friren_env: dict[str, str]
) -> None:
    for name in (INTC, NVDA):
        shutil.copy(shared_data / "daily" / name, csv_source)
    _register("universe", ["INTC", "NVDA"])
    for first, last in [("2003", "2004"), ("2000", "2002"), ("1999", "1999"), ("1995", "1998")]:
        _materialize(Timeframe.DAY1, f"INTC|{first}", f"INTC|{last}")
    for first, last in [("2006", "2014"), ("1999", "2001"), ("2002", "2005")]:
        _materialize(Timeframe.DAY1, f"NVDA|{first}", f"NVDA|{last}")

    home = Path(friren_env["FRIREN_HOME"])
    for symbol, name in (("INTC", INTC), ("NVDA", NVDA)):
        stored = _stored_wide(home, Timeframe.DAY1, symbol)
        _assert_equals_talib(stored, _closes(shared_data / "daily" / name).to_numpy())
        _assert_sql_equals_parquet(Timeframe.DAY1, symbol, stored)


def _stale_statuses(
    timeframe: Timeframe, keys: Sequence[str]
) -> dict[str, tuple[StaleStatus, list[str]]]:
    """What the UI shows per indicator partition: stale status and the upstream keys causing it."""
    instance = dg.DagsterInstance.get()
    graph = dg.Definitions(
        assets=[BARS_ASSETS[timeframe], INDICATOR_ASSETS[timeframe]],
        resources=build_resources(load_settings()),
    ).resolve_asset_graph()
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    asset = INDICATOR_ASSETS[timeframe].key
    return {
        key: (
            resolver.get_status(asset, key),
            [
                f"{cause.dependency.asset_key.to_user_string()} {cause.dependency.partition_key}"
                for cause in resolver.get_stale_causes(asset, key)
                if cause.dependency is not None
            ],
        )
        for key in keys
    }


def test_rematerialized_earlier_bars_mark_later_indicators_stale_and_a_backfill_repairs_them(
    csv_source: Path, shared_data: Path, friren_env: dict[str, str]
) -> None:
    csv_file = csv_source / INTC
    shutil.copy(shared_data / "daily" / INTC, csv_file)
    _register("universe", ["INTC"])
    keys = [f"INTC|{year}" for year in range(1995, 2005)]
    _materialize(Timeframe.DAY1, "INTC|2000", "INTC|2004")
    _materialize(Timeframe.DAY1, "INTC|1995", "INTC|1999")  # repairs 2000..2004
    assert {k: s[0] for k, s in _stale_statuses(Timeframe.DAY1, keys).items()} == dict.fromkeys(
        keys, StaleStatus.FRESH
    )

    # The vendor corrects one 1997 close (to the bar's mid-price); only the bars are re-fetched.
    frame = pd.read_csv(csv_file)
    row = frame.index[frame["Date"] == "1997-06-16"][0]
    frame.loc[row, "Close"] = (frame.loc[row, "High"] + frame.loc[row, "Low"]) / 2
    frame.to_csv(csv_file, index=False)
    _materialize(Timeframe.DAY1, "INTC|1997", "INTC|1997", indicators=False)
    statuses = _stale_statuses(Timeframe.DAY1, keys)
    assert {k: s[0] for k, s in statuses.items()} == {
        k: StaleStatus.FRESH if k < "INTC|1997" else StaleStatus.STALE for k in keys
    }
    assert all(statuses[k][1] == ["bars_1d INTC|1997"] for k in keys if k >= "INTC|1997")

    # Backfilling the earliest stale partition rewrites the later ones and reports them.
    result = _materialize(Timeframe.DAY1, "INTC|1997", "INTC|1997", bars=False)
    repaired = [
        m.partition
        for m in result.asset_materializations_for_node("indicators_1d")
        if m.metadata.get("repaired")
    ]
    assert repaired == [f"INTC|{y}" for y in range(1998, 2005)]
    assert {k: s[0] for k, s in _stale_statuses(Timeframe.DAY1, keys).items()} == dict.fromkeys(
        keys, StaleStatus.FRESH
    )
    home = Path(friren_env["FRIREN_HOME"])
    stored = _stored_wide(home, Timeframe.DAY1, "INTC")
    _assert_equals_talib(stored, frame.sort_values("Date")["Close"].to_numpy())
    _assert_sql_equals_parquet(Timeframe.DAY1, "INTC", stored)


def test_postgres_stores_warmup_as_null_never_nan(
    csv_source: Path,
    shared_data: Path,
    friren_env: dict[str, str],
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRIREN_POSTGRES_URL", postgres_url)
    shutil.copy(shared_data / "daily" / INTC, csv_source)
    _register("universe", ["INTC"])
    _materialize(Timeframe.DAY1, "INTC|1996", "INTC|1996")
    _materialize(Timeframe.DAY1, "INTC|1995", "INTC|1995")
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        nulls, nans, rows = conn.execute(
            "SELECT count(*) FILTER (WHERE indicator_value IS NULL),"
            " count(*) FILTER (WHERE indicator_value = 'NaN'), count(*)"
            " FROM market_data_indicators WHERE symbol = 'INTC'"
        ).fetchone()  # type: ignore[misc]
    closes = pd.read_csv(csv_source / INTC).query("Date < '1997'")["Close"].to_numpy()
    assert (nulls, nans, rows) == (sum(WARMUP_BARS.values()), 0, len(closes) * len(INDICATOR_NAMES))
    stored = _stored_wide(Path(friren_env["FRIREN_HOME"]), Timeframe.DAY1, "INTC")
    _assert_equals_talib(stored, closes)
    _assert_sql_equals_parquet(Timeframe.DAY1, "INTC", stored)


@pytest.mark.parametrize("timeframe", [Timeframe.MIN1, Timeframe.MIN5])
def test_minute_indicators_equal_talib_over_the_stored_minutes(
    csv_source: Path, shared_data: Path, friren_env: dict[str, str], timeframe: Timeframe
) -> None:
    shutil.copy(shared_data / "intraday" / AAPL_1MIN, csv_source)
    _register("watchlist", ["AAPL"])
    _materialize(timeframe, "AAPL|2021-08-23", "AAPL|2021-08-23")
    home = Path(friren_env["FRIREN_HOME"])
    stored = _stored_wide(home, timeframe, "AAPL")
    bars = (
        connect_views(home)
        .execute(f"select timestamp, close from bars_{timeframe.value} order by timestamp")
        .df()
    )
    assert (stored["timestamp"] == bars["timestamp"]).all()
    if timeframe == Timeframe.MIN1:  # the stored minutes are the file's regular-session minutes
        minutes = pd.read_csv(csv_source / AAPL_1MIN, parse_dates=["Datetime"])
        stamps = pd.DatetimeIndex(minutes["Datetime"]).tz_convert("America/New_York")
        regular = (stamps.time >= pd.Timestamp("09:30").time()) & (
            stamps.time < pd.Timestamp("16:00").time()
        )
        assert np.array_equal(bars["close"].to_numpy(), minutes["Close"].to_numpy()[regular])
    _assert_equals_talib(stored, bars["close"].to_numpy())
    _assert_sql_equals_parquet(timeframe, "AAPL", stored)


def test_checks_launched_alone_fail_on_a_stored_rsi_outside_0_100(
    csv_source: Path, shared_data: Path, friren_env: dict[str, str]
) -> None:
    shutil.copy(shared_data / "daily" / INTC, csv_source)
    _register("universe", ["INTC"])
    _materialize(Timeframe.DAY1, "INTC|1995", "INTC|1995")
    storage = _storage()
    path = (("symbol", "INTC"), ("year", "1995"))
    table = storage.warehouse.read("indicators_1d", path)
    assert table is not None
    rsi = table.column("rsi_14").to_numpy(zero_copy_only=False).copy()
    rsi[100] = 140.0
    storage.warehouse.write(
        "indicators_1d",
        path,
        table.set_column(2, "rsi_14", pa.array(rsi)).cast(INDICATORS.schema),
    )
    result = dg.materialize(
        [INDICATOR_ASSETS[Timeframe.DAY1], INDICATOR_CHECKS[Timeframe.DAY1]],
        selection=dg.AssetSelection.checks_for_assets(INDICATOR_ASSETS[Timeframe.DAY1]),
        instance=dg.DagsterInstance.get(),
        resources=build_resources(load_settings()),
        raise_on_error=False,
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert "indicators for INTC: 1 RSI values outside [0, 100] (first rsi_14=140" in str(
        evaluations["indicators_rsi_in_range"].description
    )
    outcome = {name: e.passed for name, e in evaluations.items()}
    assert outcome == {
        "indicators_rsi_in_range": False,
        "indicators_bands_ordered": True,
        "indicators_one_row_per_bar": True,
        "indicators_warmup": True,
    }
