"""Backfill throughput: the synthetic target universe through Dagster into Parquet + Postgres,
against a raw floor that writes the same rows with plain pyarrow + COPY in the same process.

    .venv/bin/python -m bench.backfill            # 500 symbols x 2 years daily; 50 x 20 days of 1min
    .venv/bin/python -m bench.backfill --quick    # 50 x 2 years daily; 10 x 5 days of 1min

The Dagster path is `friren backfill`'s (plan, then in-process runs of the bars assets and their
blocking check: generate, validate, write, read back, validate again), timed on two instances:
the desk's (`deploy/postgres/dagster.yaml`: runs and events in PostgreSQL, events batched; the
goal applies to it) and the embedded default (`dagster.yaml`: SQLite, one write per event).
The floor is the best of three runs, each on a fresh database and folder; the Dagster path runs
once per instance.
Needs PostgreSQL (FRIREN_BENCH_POSTGRES_URL, default the local server); uses scratch databases
and a scratch folder, all removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, chdir, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from dagster import DagsterInstance

ADMIN_URL = os.environ.get(
    "FRIREN_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@dataclass(frozen=True)
class Case:
    name: str
    timeframe: str
    symbols: int
    start: dt.date
    end: dt.date


def cases(quick: bool) -> list[Case]:
    daily_symbols, minute_symbols = (50, 10) if quick else (500, 50)
    minute_end = dt.date(2025, 3, 7) if quick else dt.date(2025, 3, 28)
    return [
        Case(
            f"1d: {daily_symbols} symbols x 2 years",
            "1d",
            daily_symbols,
            dt.date(2024, 1, 1),
            dt.date(2025, 12, 31),
        ),
        Case(
            f"1min: {minute_symbols} symbols x sessions {dt.date(2025, 3, 3)}..{minute_end}",
            "1min",
            minute_symbols,
            dt.date(2025, 3, 3),
            minute_end,
        ),
    ]


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"friren_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


FLOOR_REPEATS = 3
INSTANCES = {
    "postgres": Path(__file__).resolve().parent.parent / "deploy" / "postgres",
    "sqlite": Path(__file__).resolve().parent.parent,
}


@contextmanager
def dagster_instance(kind: str, home: Path) -> Iterator[DagsterInstance]:
    """The repository's instance config of that kind, on a scratch database and folder."""
    import dagster as dg

    with ExitStack() as stack:
        if kind == "postgres":
            url = stack.enter_context(scratch_database())
            os.environ["FRIREN_DAGSTER_POSTGRES_URL"] = url.replace(
                "postgresql://", "postgresql+psycopg2://", 1
            )
        stack.enter_context(chdir(home))  # the configs' relative folders land in the scratch
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(INSTANCES[kind])))
        yield instance


def through_dagster(
    case: Case, symbols: list[str], home: Path, postgres_url: str, instance_kind: str
) -> tuple[float, int, int]:
    """Seconds, rows and Parquet bytes of `friren backfill`'s own path (plan + in-process runs),
    for the bars and their checks only: the floor writes bars, not what is computed from them."""

    from friren_pipelines.config import apply_dagster_environment, load_settings
    from friren_pipelines.core.bars import Timeframe
    from friren_pipelines.definitions import build_definitions
    from friren_pipelines.market_data.backfill import execute, plan
    from friren_pipelines.market_data.bars import BARS_ASSETS
    from friren_pipelines.market_data.universe import register, symbol_set

    os.environ.update(
        {
            "FRIREN_HOME": str(home),
            "FRIREN_POSTGRES_URL": postgres_url,
            "FRIREN_SOURCE": "synthetic",
            "FRIREN_HISTORY_START": case.start.isoformat(),  # the partitions offer the case
        }
    )
    timeframe = Timeframe.parse(case.timeframe)
    settings = load_settings()
    apply_dagster_environment(settings)  # the event switches `friren` sets
    defs = build_definitions(settings)
    with dagster_instance(instance_kind, home) as instance:
        register(instance, symbol_set(timeframe), symbols)
        runs = plan(instance, timeframe, symbols, case.start, case.end)
        started = time.perf_counter()
        execute(instance, defs, runs, assets=lambda tf: [BARS_ASSETS[tf].key])
        seconds = time.perf_counter() - started
    rows = psycopg.connect(postgres_url).execute("SELECT count(*) FROM market_data_bars").fetchone()
    files = list((home / f"bars_{timeframe.value}").rglob("data.parquet"))
    return seconds, int(rows[0]) if rows else 0, sum(f.stat().st_size for f in files)


def raw_floor(case: Case, symbols: list[str], home: Path, postgres_url: str) -> float:
    """Seconds to write the same rows, already in memory, as the same files and the same table."""
    import pyarrow.parquet as pq

    from friren_pipelines.core.bars import Timeframe, to_arrow
    from friren_pipelines.market_data.bars import partition_rows
    from friren_pipelines.market_data.partitions import parse_partition, periods_between
    from friren_pipelines.sources.synthetic import SyntheticBarSource
    from friren_pipelines.storage import pg_copy
    from friren_pipelines.storage.sql import PostgresStore

    timeframe = Timeframe.parse(case.timeframe)
    PostgresStore(postgres_url).migrate()
    periods = periods_between(timeframe, case.start, case.end)
    partitions = [parse_partition(timeframe, f"{s}|{p}") for s in symbols for p in periods]
    bars = SyntheticBarSource().fetch_bars(
        symbols,
        timeframe,
        partitions[0].first,
        min(max(p.last for p in partitions), dt.date.today()),
    )
    table = to_arrow(bars)
    pieces = [
        (p, table.slice(rows.start, rows.stop - rows.start))
        for p, rows in partition_rows(bars, partitions)
    ]
    started = time.perf_counter()
    for partition, piece in pieces:
        target = (
            home
            / "floor"
            / "/".join(f"{k}={v}" for k, v in partition.path(timeframe))
            / "data.parquet"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(piece, target, compression="zstd")
    with psycopg.connect(postgres_url) as conn, conn.cursor() as cursor:
        columns = ", ".join(table.column_names)
        with cursor.copy(f"COPY market_data_bars ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(pg_copy.encode(table))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    quick = parser.parse_args().quick
    print(
        f"{'case':<48} {'instance':<9} {'rows':>9} {'dagster s':>9} {'rows/s':>9} {'floor s':>8} "
        f"{'floor rows/s':>12} {'ratio':>6} {'B/bar':>6}"
    )
    for case in cases(quick):
        symbols = [f"S{i:03d}" for i in range(case.symbols)]
        floor = float("inf")
        for _ in range(FLOOR_REPEATS):  # best of: the floor is the strict side of the ratio
            with tempfile.TemporaryDirectory() as folder, scratch_database() as floor_db:
                floor = min(floor, raw_floor(case, symbols, Path(folder), floor_db))
        for kind in INSTANCES:
            with tempfile.TemporaryDirectory() as folder, scratch_database() as bars_db:
                seconds, rows, parquet_bytes = through_dagster(
                    case, symbols, Path(folder), bars_db, kind
                )
            print(
                f"{case.name:<48} {kind:<9} {rows:>9} {seconds:>9.2f} {rows / seconds:>9.0f} "
                f"{floor:>8.2f} {rows / floor:>12.0f} {seconds / floor:>5.1f}x "
                f"{parquet_bytes / rows:>6.1f}",
                flush=True,
            )
    print("goal: ratio <= 3x on the desk's instance (postgres), Dagster's path over the raw floor")


if __name__ == "__main__":
    main()
