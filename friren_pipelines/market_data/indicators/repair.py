"""Which partitions a run writes: its own, and every later stored one whose history changed.

When an earlier period changes, later periods change too (EMA, RSI and MACD remember their seed).
Each indicator file records a fingerprint of the history it was computed from (bar starts and
closes from the symbol's first stored bar to the partition's last bar). A run recomputes every
later stored indicator partition of its symbols whose fingerprint no longer matches the stored
bars, rewrites it (Parquet and SQL, in the same writes as its own partitions), logs it and
reports it to Dagster as a materialization with the same provenance as the run's own partitions.
A backfill in reverse order, or in any chunking, therefore ends with every partition equal to
TA-Lib over the full history.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data.indicators.history import (
    FINGERPRINT_KEY,
    SymbolHistory,
    stored_periods,
)
from friren_pipelines.market_data.partitions import BarsPartition, parse_partition
from friren_pipelines.storage.tables import INDICATORS
from friren_pipelines.storage.write import Stores


@dataclass(frozen=True)
class IndicatorWrite:
    """One partition a run writes: its own, or a later one repaired because history changed."""

    partition: BarsPartition
    rows: tuple[int, int]  # [start, end) in the symbol's history
    fingerprint: str
    repaired: bool


def _stored_fingerprint(path: Path) -> str | None:
    metadata = pq.read_metadata(path).metadata or {}
    value = metadata.get(FINGERPRINT_KEY)
    return value.decode() if value else None


def plan_writes(
    storage: Stores,
    timeframe: Timeframe,
    partitions: Sequence[BarsPartition],
    histories: Mapping[str, SymbolHistory],
) -> list[IndicatorWrite]:
    """The run's partitions, plus every later stored indicator partition of their symbols whose
    fingerprint differs from the current stored history. Raises ValueError naming the run's
    partitions that have no stored bars."""
    dataset = INDICATORS.dataset_for(timeframe)
    missing = [
        p.key
        for p in partitions
        if p.symbol not in histories or p.period not in histories[p.symbol].periods
    ]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise ValueError(
            f"no stored {timeframe.value} bars for {shown}; materialize the bars first"
        )
    writes = []
    by_symbol: dict[str, list[BarsPartition]] = {}
    for partition in sorted(partitions):
        by_symbol.setdefault(partition.symbol, []).append(partition)
    for symbol, own in by_symbol.items():
        history = histories[symbol]
        in_run = {p.period for p in own}
        writes += [
            IndicatorWrite(p, history.periods[p.period], history.fingerprints[p.period], False)
            for p in own
        ]
        stored = stored_periods(storage, dataset, symbol)
        for period, path in stored.items():
            if period in in_run or period < own[0].period or period not in history.periods:
                continue
            if _stored_fingerprint(path) != history.fingerprints[period]:
                writes.append(
                    IndicatorWrite(
                        parse_partition(timeframe, f"{symbol}|{period}"),
                        history.periods[period],
                        history.fingerprints[period],
                        True,
                    )
                )
    return sorted(writes, key=lambda w: w.partition)
