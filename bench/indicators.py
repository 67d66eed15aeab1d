"""Benchmark of the indicator assets on the target universe, synthetic bars.

    .venv/bin/python -m bench.indicators [--quick]

Materializes the bars first (not timed): 500 symbols x 2 years of daily bars and 50 symbols x 20
sessions of 1-minute bars (`--quick`: 50 x 2 years and 10 x 5 sessions). Then backfills the
indicator assets (with their checks) the way `friren backfill` does, and prints per timeframe:

1. compute: the seconds the assets spent in the indicator core's calls (one per symbol: TA-Lib
   over its stored history, ``seconds_compute``, measured once, in the run), against TA-Lib
   alone: the 15 outputs from 11 direct ``talib.*`` calls on the same close arrays, best of 5
   passes (the first, cold, pass is printed too), and the ratio (goal <= 1.2x). The core makes
   10 calls (BBANDS' middle band is SMA20, bit for bit) to the functions under talib's
   pandas/polars adaptor (which passes ndarrays through, for ~1.3 us a call), so it can beat the
   baseline; the same 11 calls without the adaptor are printed as the bare floor, with the ratio
   to it. Then the ratio with ``seconds_frames`` added: copying each symbol's written rows into
   the run's columns and building the wide frame;
2. end to end: indicator rows written per second of wall time, reading bars, Parquet and SQL
   writes, charts, checks and Dagster bookkeeping included; and where that time went.

Runs in a temporary FRIREN_HOME / DAGSTER_HOME; the SQL store is the embedded DuckDB file, or
Postgres when FRIREN_POSTGRES_URL is set (its market_data_* tables are written to).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.dataset as pa_ds
import talib

_TALIB = {name: getattr(talib, name) for name in ("RSI", "SMA", "EMA", "MACD", "BBANDS")}
_BARE = {name: function.__wrapped__ for name, function in _TALIB.items()}  # no pandas adaptor


def _talib_alone(closes: Sequence[np.ndarray], ta: Mapping[str, Any]) -> list[float]:
    """Seconds of each of 5 passes computing the 15 indicator outputs with TA-Lib directly."""
    passes = []
    for _ in range(5):
        started = time.perf_counter()
        for close in closes:
            ta["RSI"](close, 14)
            ta["RSI"](close, 9)
            for period in (10, 20, 50, 200):
                ta["SMA"](close, period)
            for period in (10, 20, 50):
                ta["EMA"](close, period)
            ta["MACD"](close, 12, 26, 9)
            ta["BBANDS"](close, 20, 2.0, 2.0, talib.MA_Type.SMA)
        passes.append(time.perf_counter() - started)
    return passes


def _stored_closes(home: Path, dataset: str) -> list[np.ndarray]:
    table = pa_ds.dataset(home / dataset, format="parquet").to_table(
        columns=["symbol", "timestamp", "close"]
    )
    frame = table.to_pandas().sort_values(["symbol", "timestamp"])
    return [group.to_numpy(np.float64) for _, group in frame.groupby("symbol")["close"]]


def _run(label: str, timeframe_name: str, symbols: list[str], start: dt.date, end: dt.date) -> None:
    import dagster as dg

    # Charts import matplotlib and mplfinance on the first one drawn; import them before the
    # clock starts, as every other module here is, so the figures stay costs of the runs.
    import mplfinance  # noqa: F401

    from friren_pipelines.config import apply_dagster_environment, load_settings
    from friren_pipelines.core.bars import Timeframe
    from friren_pipelines.definitions import build_definitions
    from friren_pipelines.market_data.backfill import execute, plan
    from friren_pipelines.market_data.bars import BARS_ASSETS
    from friren_pipelines.market_data.indicators import INDICATOR_ASSETS
    from friren_pipelines.market_data.universe import register, symbol_set

    timeframe = Timeframe.parse(timeframe_name)
    settings = load_settings()
    apply_dagster_environment(settings)  # the event switches `friren` sets
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.get()
    register(instance, symbol_set(timeframe), symbols)
    runs = plan(instance, timeframe, symbols, start, end)

    started = time.perf_counter()
    execute(instance, defs, runs, assets=lambda tf: [BARS_ASSETS[tf].key])
    bars_seconds = time.perf_counter() - started

    results: list[dg.ExecuteInProcessResult] = []
    started = time.perf_counter()
    execute(
        instance,
        defs,
        runs,
        on_run_done=lambda _, result: results.append(result),
        assets=lambda tf: [INDICATOR_ASSETS[tf].key],
    )
    wall = time.perf_counter() - started

    # Each run records its totals as run tags (`friren/<asset>/<name>`, metadata.record_run_totals).
    totals: dict[str, float] = {}
    prefix = f"friren/indicators_{timeframe.value}/"
    for result in results:
        run = instance.get_run_by_id(result.run_id)
        for tag, value in (run.tags if run else {}).items():
            name = tag.removeprefix(prefix)
            if tag.startswith(prefix) and (
                name.startswith("seconds_") or name in ("run_rows", "repaired_rows", "charts")
            ):
                totals[name] = totals.get(name, 0.0) + float(value)
    closes = _stored_closes(settings.home, f"bars_{timeframe.value}")
    passes = _talib_alone(closes, _TALIB)
    alone, bare = min(passes), min(_talib_alone(closes, _BARE))
    bars = sum(len(c) for c in closes)
    rows = totals["run_rows"] + totals["repaired_rows"]
    compute, frames = totals["seconds_compute"], totals["seconds_frames"]
    print(
        f"\n{label}: {len(symbols)} symbols, {bars:,} bars, {len(runs)} runs, {sum(r.keys for r in runs)} partitions"
    )
    print(
        f"  bars materialized first in {bars_seconds:.1f} s (not timed); charts drawn: {totals.get('charts', 0):.0f}"
    )
    print(
        f"  TA-Lib alone on the same arrays: {alone * 1000:.1f} ms (first pass {passes[0] * 1000:.1f} ms);"
        f" bare, without the adaptor: {bare * 1000:.1f} ms"
    )
    print(
        f"  assets' indicator compute:       {compute * 1000:.1f} ms  -> {compute / alone:.2f}x (goal <= 1.2x);"
        f" {compute / bare:.2f}x the bare floor"
    )
    print(
        f"  compute + copies, wide frame:    {(compute + frames) * 1000:.1f} ms  -> {(compute + frames) / alone:.2f}x"
    )
    print(
        f"  end to end: {rows:,.0f} indicator rows ({rows * 15:,.0f} SQL rows) in {wall:.1f} s = {rows / wall:,.0f} rows/s"
    )
    shares = {k.removeprefix("seconds_"): v for k, v in totals.items() if k.startswith("seconds_")}
    other = wall - sum(shares.values())
    print(
        "  where the time went (s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in shares.items())
        + f", checks+dagster {other:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smaller smoke run")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="friren-bench-") as folder:
        home = Path(folder)
        (home / "dagster").mkdir()
        (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        os.environ["FRIREN_HOME"] = str(home / "warehouse")
        os.environ["DAGSTER_HOME"] = str(home / "dagster")
        os.environ["FRIREN_SOURCE"] = "synthetic"
        os.environ["FRIREN_HISTORY_START"] = "2023-01-01"  # the partitions offer 2023-2024
        daily, minute, sessions = (50, 10, 5) if args.quick else (500, 50, 20)
        from friren_pipelines.core import calendar

        recent = calendar.sessions(dt.date(2024, 11, 1), dt.date(2024, 12, 31))[-sessions:]
        store = "postgres" if os.environ.get("FRIREN_POSTGRES_URL") else "duckdb"
        print(f"SQL store: {store}; warehouse: {home / 'warehouse'}")
        _run(
            f"1d, {daily} symbols x 2 years",
            "1d",
            [f"D{i:03d}" for i in range(daily)],
            dt.date(2023, 1, 1),
            dt.date(2024, 12, 31),
        )
        _run(
            f"1min, {minute} symbols x {sessions} sessions",
            "1min",
            [f"M{i:02d}" for i in range(minute)],
            recent[0],
            recent[-1],
        )


if __name__ == "__main__":
    main()
