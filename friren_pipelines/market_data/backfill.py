"""Backfills driven from outside the UI (the CLI, benchmarks): plan runs, execute them in Dagster.

Each run is recorded in the Dagster instance like a UI-launched one. Dagster takes a run's keys
as a rectangle (a symbol range × a period range) and orders dynamic symbols by insertion, not
alphabetically, so the plan cuts the requested symbols into blocks that are contiguous in that
order and keeps every run under `MAX_KEYS_PER_RUN` keys.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from friren_pipelines.core.bars import Timeframe, normalize_symbol
from friren_pipelines.market_data.partitions import UNIVERSE, WATCHLIST, periods_between

# A run costs ~0.5 s of Dagster bookkeeping whatever its size, so runs are large: the 500-symbol
# universe's two years fit one run (Dagster's own UI backfills split it by year, 500 keys a run).
MAX_KEYS_PER_RUN = 1000

# Dagster's switches for large single-run backfills, read from the environment when a run is
# created and when its events are stored: the run's plan is one event per asset instead of one per
# partition key, and the per-key materializations are written in batches (one INSERT on
# PostgreSQL storage). Each unbatched event costs 5-30 ms. Cost of the first switch: the asset's
# partition bar shows a failed run's keys as missing, not failed (the run and backfill pages show
# the failure).
DAGSTER_EVENT_SETTINGS = {
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
    "DAGSTER_EVENT_BATCH_SIZE": str(MAX_KEYS_PER_RUN),
}


@dataclass(frozen=True)
class PlannedRun:
    timeframe: Timeframe
    symbols: tuple[str, ...]
    periods: tuple[str, ...]

    @property
    def keys(self) -> int:
        return len(self.symbols) * len(self.periods)

    @property
    def tags(self) -> dict[str, str]:
        return {
            ASSET_PARTITION_RANGE_START_TAG: f"{self.symbols[0]}|{self.periods[0]}",
            ASSET_PARTITION_RANGE_END_TAG: f"{self.symbols[-1]}|{self.periods[-1]}",
            "friren/backfill": f"{self.timeframe.value}",
        }


def default_symbols(file_name: str) -> list[str]:
    text = resources.files("friren_pipelines.market_data").joinpath(file_name).read_text()
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [normalize_symbol(line) for line in lines if line]


def symbol_set(timeframe: Timeframe) -> dg.DynamicPartitionsDefinition:
    return UNIVERSE if timeframe == Timeframe.DAY1 else WATCHLIST


def register(instance: dg.DagsterInstance, set_name: str, symbols: Sequence[str]) -> list[str]:
    """Add symbols to a dynamic key set; returns the ones that were new."""
    known = set(instance.get_dynamic_partitions(set_name))
    new = [s for s in dict.fromkeys(symbols) if s not in known]
    if new:
        instance.add_dynamic_partitions(set_name, new)
    return new


def _blocks(ordered: Sequence[str], wanted: Sequence[str]) -> Iterator[list[str]]:
    """Wanted symbols cut into runs of consecutive positions in the insertion order."""
    position = {symbol: i for i, symbol in enumerate(ordered)}
    block: list[str] = []
    for symbol in sorted(set(wanted), key=position.__getitem__):
        if block and position[symbol] != position[block[-1]] + 1:
            yield block
            block = []
        block.append(symbol)
    if block:
        yield block


def plan(
    instance: dg.DagsterInstance,
    timeframe: Timeframe,
    symbols: Sequence[str],
    start: dt.date,
    end: dt.date,
) -> list[PlannedRun]:
    periods = periods_between(timeframe, start, end)
    if not periods:
        return []
    ordered = instance.get_dynamic_partitions(symbol_set(timeframe).name or "")
    runs = []
    # A symbol's periods stay in one run where they fit: indicators then read its history once.
    periods_per_run = min(len(periods), MAX_KEYS_PER_RUN)
    for block in _blocks(ordered, symbols):
        symbols_per_run = max(1, min(len(block), MAX_KEYS_PER_RUN // periods_per_run))
        for i in range(0, len(block), symbols_per_run):
            for j in range(0, len(periods), periods_per_run):
                runs.append(
                    PlannedRun(
                        timeframe,
                        tuple(block[i : i + symbols_per_run]),
                        tuple(periods[j : j + periods_per_run]),
                    )
                )
    return runs


class BackfillError(RuntimeError):
    pass


def run_failure(result: dg.ExecuteInProcessResult) -> str:
    """What made an in-process run fail: step errors, then failed blocking checks."""
    messages = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data and data.error:
            messages.append(data.error.message.strip())
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            messages.append(f"check {evaluation.check_name} failed: {evaluation.description}")
    return "; ".join(messages) or "the run failed"


def execute(
    instance: dg.DagsterInstance,
    resources: Mapping[str, object],
    runs: Sequence[PlannedRun],
    assets_for: Callable[[Timeframe], Sequence[dg.AssetsDefinition | dg.AssetChecksDefinition]],
    on_run_done: Callable[[PlannedRun, dg.ExecuteInProcessResult], None] | None = None,
) -> list[str]:
    """Execute planned runs in order; returns run ids. Raises BackfillError at the first failure."""
    for name, value in DAGSTER_EVENT_SETTINGS.items():
        os.environ.setdefault(name, value)
    run_ids = []
    for planned in runs:
        result = dg.materialize(
            list(assets_for(planned.timeframe)),
            instance=instance,
            resources=resources,
            tags=planned.tags,
            raise_on_error=False,
            # Step-level events stay in the instance (and the UI); the terminal shows progress.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        run_ids.append(result.run_id)
        if on_run_done:
            on_run_done(planned, result)
        if not result.success:
            raise BackfillError(
                f"{planned.timeframe.value} run {result.run_id} over {planned.symbols[0]}.."
                f"{planned.symbols[-1]} × {planned.periods[0]}..{planned.periods[-1]} failed: "
                f"{run_failure(result)}"
            )
    return run_ids
