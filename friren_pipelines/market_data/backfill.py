"""Backfills driven from outside the UI (the CLI, benchmarks): plan runs, execute them in Dagster.

Each run is a run of the `refresh_<timeframe>` job of the loaded Definitions, recorded in the
Dagster instance like a UI-launched one. Dagster takes a run's keys as a rectangle (a symbol
range × a period range) and orders dynamic symbols by insertion, not alphabetically, so the plan
cuts the requested symbols into blocks that are contiguous in that order and keeps every run
under `MAX_KEYS_PER_RUN` keys (`DAGSTER_EVENT_BATCH_SIZE`, set by the CLI, batches its events).

A partition is a year or a week, wider than most requested ranges, so each run also carries the
requested sessions as run tags (`SESSIONS_START_TAG`, `SESSIONS_END_TAG`): the bars asset then
replaces exactly those sessions and keeps the partition's other stored bars (`SessionRange`). A run
without them (a UI backfill, a sensor's run) replaces its partitions whole.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

import dagster as dg

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data.partitions import periods_between
from friren_pipelines.market_data.universe import symbol_set

# A run costs ~0.5 s of Dagster bookkeeping whatever its size, so runs are large: the 500-symbol
# universe's two years fit one run (Dagster's own UI backfills split it by year, 500 keys a run).
MAX_KEYS_PER_RUN = 1000

# Dagster's run tags for a range of partition keys (not exported by the `dagster` namespace).
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
# "<host>:<pid>" of the process running an in-process run: a run whose process is gone was
# killed with it, and `fail_abandoned_runs` marks it failed instead of STARTED forever.
RUNNER_TAG = "friren/runner"
# The sessions a `friren backfill` asked for (ISO dates, inclusive), and whether stored sessions
# its source no longer has are deleted ("true") instead of refused (`SessionRange`).
SESSIONS_START_TAG = "friren/sessions_start"
SESSIONS_END_TAG = "friren/sessions_end"
DELETE_MISSING_TAG = "friren/delete_missing"
# What a run's Dagster logger prints on the terminal. Every event stays in the instance (and the
# UI); the terminal shows progress and, on failure, one line with the cause. `friren --verbose`
# sets INFO: step logs and tracebacks.
CONSOLE_LOG_LEVEL: ContextVar[str] = ContextVar("console_log_level", default="CRITICAL")


def refresh_job_name(timeframe: Timeframe) -> str:
    """The job of `market_data.defs` that materializes a timeframe's bars and indicators."""
    return f"refresh_{timeframe.value}"


@dataclass(frozen=True)
class SessionRange:
    """The sessions a backfill replaces: New York session dates from `first` to `last`, inclusive.

    Stored bars of those sessions are replaced by the source's; the partitions' other stored bars
    are kept. A stored session the source no longer has is an error, unless `delete_missing`.
    """

    first: dt.date
    last: dt.date
    delete_missing: bool = False

    @property
    def tags(self) -> dict[str, str]:
        tags = {SESSIONS_START_TAG: self.first.isoformat(), SESSIONS_END_TAG: self.last.isoformat()}
        if self.delete_missing:
            tags[DELETE_MISSING_TAG] = "true"
        return tags

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> SessionRange | None:
        """The range a run's tags carry, or None when they carry none (replace whole partitions).
        Raises ValueError naming the tag that is half there or not a date."""
        start, end = tags.get(SESSIONS_START_TAG), tags.get(SESSIONS_END_TAG)
        if start is None and end is None:
            return None
        if start is None or end is None:
            given, lacking = (
                (SESSIONS_START_TAG, SESSIONS_END_TAG)
                if end is None
                else (SESSIONS_END_TAG, SESSIONS_START_TAG)
            )
            raise ValueError(f"run tag {given} is set but {lacking} is not; set both or neither")
        dates = []
        for name, text in ((SESSIONS_START_TAG, start), (SESSIONS_END_TAG, end)):
            try:
                dates.append(dt.date.fromisoformat(text))
            except ValueError:
                raise ValueError(f"run tag {name}={text!r} is not a date (YYYY-MM-DD)") from None
        if dates[1] < dates[0]:
            raise ValueError(
                f"run tag {SESSIONS_END_TAG}={end} is before {SESSIONS_START_TAG}={start}"
            )
        delete = tags.get(DELETE_MISSING_TAG, "false")
        if delete not in ("true", "false"):
            raise ValueError(f"run tag {DELETE_MISSING_TAG}={delete!r} is not true or false")
        return cls(dates[0], dates[1], delete_missing=delete == "true")


@dataclass(frozen=True)
class PlannedRun:
    timeframe: Timeframe
    symbols: tuple[str, ...]
    periods: tuple[str, ...]
    # The requested sessions, when narrower replacement is wanted (see the module docstring).
    sessions: SessionRange | None = None

    @property
    def keys(self) -> int:
        return len(self.symbols) * len(self.periods)

    @property
    def tags(self) -> dict[str, str]:
        return {
            PARTITION_RANGE_START_TAG: f"{self.symbols[0]}|{self.periods[0]}",
            PARTITION_RANGE_END_TAG: f"{self.symbols[-1]}|{self.periods[-1]}",
            "friren/backfill": f"{self.timeframe.value}",
            **(self.sessions.tags if self.sessions else {}),
        }


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
    *,
    delete_missing: bool = False,
) -> list[PlannedRun]:
    """Runs over the symbols' periods holding sessions from `start` to `end`; each run replaces
    exactly those sessions (`SessionRange`, carried as run tags)."""
    sessions = SessionRange(start, end, delete_missing=delete_missing)
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
                        sessions,
                    )
                )
    return runs


class BackfillError(RuntimeError):
    pass


def check_history_start(start: dt.date, history_start: dt.date) -> None:
    """Refuse a backfill from before the partitions' first day (`Settings.history_start`), in
    one line naming both dates and the variable, instead of Dagster's invariant error."""
    if start < history_start:
        raise BackfillError(
            f"start {start} is before FRIREN_HISTORY_START={history_start}, the first day the "
            f"partitions offer; set FRIREN_HISTORY_START={start} (or earlier) to backfill it"
        )


class ErrorInfo(Protocol):
    """What Dagster records of an exception (its `SerializableErrorInfo`)."""

    @property
    def message(self) -> str: ...
    @property
    def cls_name(self) -> str | None: ...
    @property
    def cause(self) -> ErrorInfo | None: ...


def root_cause(error: ErrorInfo) -> str:
    """The innermost error of a chain, in words: Dagster wraps the asset's own exception (the one
    naming the bad input) in "Error occurred while executing op ...", with it as the cause."""
    while error.cause is not None:
        error = error.cause
    kind, _, words = error.message.strip().partition(": ")
    return words if words and kind.rsplit(".", 1)[-1] == error.cls_name else error.message.strip()


def run_failure(result: dg.ExecuteInProcessResult) -> str:
    """What made an in-process run fail: step errors' root causes, then failed blocking checks."""
    messages = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data and data.error:
            messages.append(root_cause(data.error))
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            messages.append(f"check {evaluation.check_name} failed: {evaluation.description}")
    return "; ".join(messages) or "the run failed"


def run_job(
    defs: dg.Definitions,
    job_name: str,
    instance: dg.DagsterInstance,
    tags: Mapping[str, str],
    asset_selection: Sequence[dg.AssetKey] | None = None,
) -> dg.ExecuteInProcessResult:
    """One in-process run of a job of `defs` (with its resources), quiet on the console."""
    return defs.resolve_job_def(job_name).execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": CONSOLE_LOG_LEVEL.get()}}}},
        instance=instance,
        raise_on_error=False,
        asset_selection=asset_selection,
        tags={**tags, RUNNER_TAG: f"{socket.gethostname()}:{os.getpid()}"},
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the in-process runs of this host whose process is gone (killed mid-run), so
    they do not stay STARTED forever; returns their ids."""
    host = socket.gethostname()
    active = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])
    failed = []
    for record in instance.get_run_records(filters=active):
        run = record.dagster_run
        runner_host, _, pid = run.tags.get(RUNNER_TAG, "").rpartition(":")
        if runner_host == host and pid.isdigit() and not _alive(int(pid)):
            instance.report_run_failed(
                run, message=f"the process that ran it (pid {pid}) ended without finishing it"
            )
            failed.append(run.run_id)
    return failed


def execute(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    runs: Sequence[PlannedRun],
    on_run_done: Callable[[PlannedRun, dg.ExecuteInProcessResult], None] | None = None,
    assets: Callable[[Timeframe], Sequence[dg.AssetKey]] | None = None,
) -> list[str]:
    """Execute planned runs in order; returns run ids. Raises BackfillError at the first failure.

    Each run is its timeframe's refresh job; `assets` narrows it to some of the job's assets (and
    their checks): the benchmarks time the bars and the indicators apart.
    """
    run_ids = []
    for planned in runs:
        result = run_job(
            defs,
            refresh_job_name(planned.timeframe),
            instance,
            planned.tags,
            assets(planned.timeframe) if assets else None,
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
