"""CSV source throughput: `CsvBarSource.fetch_bars` over a folder of Yahoo-style daily exports,
against a floor that reads the same files with `pyarrow.csv.read_csv` in a plain loop.

    .venv/bin/python -m bench.csv_source              # 500 symbols x 2 years of daily bars
    .venv/bin/python -m bench.csv_source --quick      # 50 symbols x 2 years
    .venv/bin/python -m bench.csv_source --runs 5     # median of 5 runs instead of 3

Each symbol gets one file `S0001.csv` with `Date,Open,High,Low,Close,Adj Close,Volume` (prices
with 6 decimals, oldest first), one row per XNYS session of 2024-01-01..2025-12-31 (501 rows),
written to a scratch folder that is removed at the end. Both paths run in this process, after
one warm-up each (imports, the trading calendar); the figures are medians of `--runs` runs.
The goal (issue 15, item 1) is a source at most ~2x its floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import Timeframe
from friren_pipelines.sources.csv_files import CsvBarSource

START, END = dt.date(2024, 1, 1), dt.date(2025, 12, 31)
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"


def write_exports(folder: Path, symbols: list[str], seed: int = 15) -> None:
    """One Yahoo-style daily export per symbol: a random walk, Adj Close a smooth 0-3 % below."""
    sessions = [day.isoformat() for day in calendar.sessions(START, END)]
    rng = np.random.default_rng(seed)
    for symbol in symbols:
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, len(sessions))))
        open_ = close * np.exp(rng.normal(0, 0.005, len(sessions)))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, len(sessions)))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, len(sessions)))
        adjusted = close * np.linspace(0.97, 1.0, len(sessions))
        volume = rng.integers(100_000, 50_000_000, len(sessions))
        rows = zip(sessions, open_, high, low, close, adjusted, volume, strict=True)
        lines = [
            f"{d},{o:.6f},{h:.6f},{lo:.6f},{c:.6f},{a:.6f},{v}\n" for d, o, h, lo, c, a, v in rows
        ]
        (folder / f"{symbol}.csv").write_text(HEADER + "".join(lines))


def median_seconds(work: Callable[[], object], runs: int) -> float:
    work()  # warm-up: imports, the calendar, the OS page cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 symbols instead of 500")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per path (median)")
    args = parser.parse_args()
    symbols = [f"S{i:04d}" for i in range(1, (50 if args.quick else 500) + 1)]
    with tempfile.TemporaryDirectory(prefix="friren-bench-csv-") as scratch:
        folder = Path(scratch)
        write_exports(folder, symbols)
        paths = sorted(folder.iterdir())
        source = CsvBarSource(folder)
        rows = len(source.fetch_bars(symbols, Timeframe.DAY1, START, END))
        floor = median_seconds(lambda: [pa_csv.read_csv(path) for path in paths], args.runs)
        seconds = median_seconds(
            lambda: source.fetch_bars(symbols, Timeframe.DAY1, START, END), args.runs
        )
    print(f"{len(symbols)} symbols x 2 years of daily CSV ({rows:,} bars), median of {args.runs}:")
    print(f"  floor  pyarrow.csv.read_csv, plain loop   {floor:7.3f} s")
    print(f"  CsvBarSource.fetch_bars                  {seconds:7.3f} s  ({seconds / floor:.1f}x)")


if __name__ == "__main__":
    main()
