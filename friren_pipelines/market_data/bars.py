"""Bars assets (1min, 5min, 1d) and their checks: source → validation → Parquet + SQL.

A run covers many (symbol, period) keys and reads the source once for all of them. Bars that
break an ERROR rule of `core.bars` stop the run before anything is written; real-data quirks
(WARNING rules) are stored as delivered and reported. After the write, a blocking check reads the
stored partitions back and validates them again, so downstream assets never read bad bars.
"""

import datetime as dt
import warnings
from collections.abc import Iterator, Sequence

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.dataset as pa_ds

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import (
    BAR_SCHEMA,
    BarIssue,
    Severity,
    Timeframe,
    from_arrow,
    last_finished_bar,
    raise_on_errors,
    to_arrow,
    validate_bars,
)
from friren_pipelines.market_data.metadata import column_schema, preview
from friren_pipelines.market_data.partitions import (
    BarsPartition,
    bars_partitions,
    parse_partition,
    run_partitions,
)
from friren_pipelines.resources import BarSourceResource, StorageResource
from friren_pipelines.sources.base import BarSource
from friren_pipelines.storage.sql import Slice
from friren_pipelines.storage.tables import BARS, SYMBOL_METADATA
from friren_pipelines.storage.write import Piece, Refresh, Stores, replace

# Dagster's add_asset_metadata re-reads the run's keys from the instance on every call (~20 ms
# each, measured), as much again as the materialization events; above this many keys a run
# records its summary on every partition instead.
PER_PARTITION_METADATA_LIMIT = 50
QUIRKS_LOGGED = 20


def fetch_partitions(
    source: BarSource,
    timeframe: Timeframe,
    partitions: Sequence[BarsPartition],
    now: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One bulk read covering every partition, cut back to exactly the partitions' rows.

    Bars still forming at `now` (default: the current time) are left out, so a partial bar is
    never stored as final; their count is in `attrs["unfinished_bars"]`. Raises ValueError naming
    the partitions the source had no bars for (missing bars).
    """
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    symbols = sorted({p.symbol for p in partitions})
    start = min(p.first for p in partitions)
    end = min(max(p.last for p in partitions), calendar.session_of(now))
    fetched = source.fetch_bars(symbols, timeframe, start, end)
    last = last_finished_bar(timeframe, now)
    finished = fetched["timestamp"] <= last if last is not None else fetched["timestamp"].isna()
    bars = fetched[finished.to_numpy()].reset_index(drop=True)
    bars.attrs = {**fetched.attrs, "unfinished_bars": int((~finished).sum())}
    ranges = partition_rows(bars, partitions)
    missing = [partition.key for partition, rows in ranges if rows.start == rows.stop]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise ValueError(f"{source.name} returned no {timeframe.value} bars for {shown}")
    chosen = bars.take(np.concatenate([np.arange(r.start, r.stop) for _, r in ranges]))
    chosen = chosen.reset_index(drop=True)
    chosen.attrs = dict(bars.attrs)
    return chosen


def _window(partition: BarsPartition) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The partition's bars as a UTC time range: its days from New York midnight to midnight."""
    start = pd.Timestamp(partition.first, tz=calendar.NEW_YORK)
    end = pd.Timestamp(partition.last + dt.timedelta(days=1), tz=calendar.NEW_YORK)
    return start.tz_convert("UTC"), end.tz_convert("UTC")


def partition_slice(timeframe: Timeframe, partition: BarsPartition) -> Slice:
    start, end = _window(partition)
    return Slice(
        (("symbol", partition.symbol), ("timeframe", timeframe.value)),
        "timestamp",
        start.to_pydatetime(),
        end.to_pydatetime(),
    )


def partition_rows(
    bars: pd.DataFrame, partitions: Sequence[BarsPartition]
) -> list[tuple[BarsPartition, slice]]:
    """Each partition's rows in `bars`, which must be sorted by symbol then timestamp (as sources
    and `fetch_partitions` deliver them): a binary search per partition instead of a mask."""
    if bars.empty:
        return [(partition, slice(0, 0)) for partition in partitions]
    symbols = bars["symbol"].to_numpy()
    stamps = pd.DatetimeIndex(bars["timestamp"]).as_unit("ns").asi8
    starts = np.flatnonzero(np.concatenate(([True], symbols[1:] != symbols[:-1])))
    ends = np.append(starts[1:], len(symbols)).astype(np.int64)
    falls = stamps[1:] < stamps[:-1]
    falls[ends[:-1] - 1] = False  # a new symbol may start earlier than the last one ended
    runs = {symbols[s]: (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
    if len(runs) != len(starts) or falls.any():
        raise ValueError("bars must be sorted by symbol, then timestamp")
    ranges = []
    for partition in partitions:
        first, last = runs.get(partition.symbol, (0, 0))
        bounds = [edge.value for edge in _window(partition)]  # ns, like `stamps`
        lo, hi = np.searchsorted(stamps[first:last], bounds, side="left")
        ranges.append((partition, slice(first + int(lo), first + int(hi))))
    return ranges


def store_bars(
    storage: Stores,
    timeframe: Timeframe,
    partitions: Sequence[BarsPartition],
    bars: pd.DataFrame,
) -> dict[str, int]:
    """Replace the partitions' slices of the bars (one Parquet file each, the SQL rows in one
    transaction, `storage.write.replace`) and refresh their symbols' `symbol_metadata` in it.
    Returns bytes written per partition key."""
    table = to_arrow(bars)
    dataset = BARS.dataset_for(timeframe)
    ranges = partition_rows(bars, partitions)
    symbols = sorted({p.symbol for p in partitions})
    coverage = Refresh(
        SYMBOL_METADATA,
        [Slice((("symbol", symbol), ("timeframe", timeframe.value))) for symbol in symbols],
        "SELECT symbol, timeframe, min(timestamp), max(timestamp), count(*), %s"
        f" FROM {BARS.name} WHERE timeframe = %s AND symbol IN (SELECT unnest(%s::text[]))"
        " GROUP BY symbol, timeframe",
        [dt.datetime.now(dt.UTC), timeframe.value, symbols],
    )
    sizes = replace(
        storage,
        [
            Piece(
                BARS,
                table.slice(rows.start, rows.stop - rows.start),
                dataset,
                partition.path(timeframe),
                partition_slice(timeframe, partition),
            )
            for partition, rows in ranges
        ],
        [coverage],
    )
    return {partition.key: size for (partition, _), size in zip(ranges, sizes, strict=True)}


def read_partitions(
    storage: Stores, timeframe: Timeframe, partitions: Sequence[BarsPartition] | None
) -> tuple[pd.DataFrame, list[str]]:
    """Stored bars of the partitions (all stored ones if None), sorted by symbol and timestamp,
    and the keys with no stored bars (no file, or a file without rows)."""
    warehouse = storage.warehouse
    dataset = BARS.dataset_for(timeframe)
    if partitions is None:
        files, missing = warehouse.files(dataset), []
    else:
        paths = {p.key: warehouse.path(dataset, p.path(timeframe)) for p in partitions}
        files = [path for path in paths.values() if path.exists()]
        missing = [key for key, path in paths.items() if not path.exists()]
    if not files:
        return from_arrow(BAR_SCHEMA.empty_table()), missing
    table = pa_ds.dataset([str(f) for f in files], format="parquet", schema=BAR_SCHEMA).to_table()
    bars = from_arrow(table.sort_by([("symbol", "ascending"), ("timestamp", "ascending")]))
    if partitions is not None:
        absent = set(missing)
        stored = [p for p in partitions if p.key not in absent]
        missing += [p.key for p, rows in partition_rows(bars, stored) if rows.start == rows.stop]
    return bars, missing


def _issue_list(issues: Sequence[BarIssue], limit: int) -> str:
    lines = [f"- {issue}" for issue in issues[:limit]]
    if len(issues) > limit:
        lines.append(f"- … and {len(issues) - limit} more")
    return "\n".join(lines)


def _issues_metadata(issues: Sequence[BarIssue]) -> dict[str, dg.MetadataValue]:
    return {"issues": dg.MetadataValue.md(_issue_list(issues, 50))} if issues else {}


def _partition_metadata(rows: pd.DataFrame, size: int) -> dict[str, object]:
    return {
        "dagster/row_count": len(rows),
        "first_timestamp": str(rows["timestamp"].min()),
        "last_timestamp": str(rows["timestamp"].max()),
        "parquet_bytes": size,
        "preview": preview(rows.drop(columns=["timeframe", "source"])),
    }


def build_bars_asset(timeframe: Timeframe) -> dg.AssetsDefinition:
    name = BARS.dataset_for(timeframe)
    partitions_def = bars_partitions(timeframe)

    @dg.asset(
        name=name,
        group_name="market_data",
        kinds={"parquet", "postgres"},
        owners=["team:market-data"],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=(
            f"{timeframe.value} OHLCV bars of the regular XNYS session, one Parquet file per "
            f"partition under `{name}/` and rows in SQL `{BARS.name}`. Prices are as the source "
            "delivers them; the `adjustment` column says whether they are raw or adjusted."
        ),
        metadata={"dagster/column_schema": column_schema(BARS.schema, BARS.descriptions)},
    )
    def bars_asset(
        context: dg.AssetExecutionContext, storage: StorageResource, bar_source: BarSourceResource
    ) -> dg.MaterializeResult:
        partitions = sorted(parse_partition(timeframe, key) for key in context.partition_keys)
        source = bar_source.open()
        context.log.info(
            f"reading {timeframe.value} bars of {len({p.symbol for p in partitions})} symbols "
            f"({len(partitions)} partitions) from {source.name}"
        )
        bars = fetch_partitions(source, timeframe, partitions)
        warnings = raise_on_errors(validate_bars(bars, timeframe))
        if warnings:
            # One event, not one per quirk: each stored log event costs milliseconds.
            context.log.warning(
                f"{len(warnings)} data quirks kept as delivered (see bars_quality):\n"
                + _issue_list(warnings, QUIRKS_LOGGED)
            )
        context.log.info(f"validated {len(bars)} bars; writing Parquet and {storage.sql_kind}")
        written = store_bars(storage, timeframe, partitions, bars)
        if len(partitions) <= PER_PARTITION_METADATA_LIMIT:
            for partition, rows in partition_rows(bars, partitions):
                context.add_asset_metadata(
                    _partition_metadata(bars.iloc[rows], written[partition.key]),
                    partition_key=partition.key,
                )
        return dg.MaterializeResult(
            metadata={
                "run_rows": len(bars),
                "run_partitions": len(partitions),
                "source": source.name,
                "sql_store": storage.sql_kind,
                "excluded_extended_hours": int(bars.attrs.get("excluded_extended_hours", 0)),
                "unfinished_bars_left_out": int(bars.attrs.get("unfinished_bars", 0)),
                "quirks_reported": len(warnings),
            }
        )

    return bars_asset


def build_bars_checks(timeframe: Timeframe, asset: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    valid = dg.AssetCheckSpec(
        "bars_valid",
        asset=asset.key,
        blocking=True,
        description=(
            "Stored bars have the required columns, no null or non-positive price, high ≥ low, "
            "unique timestamps, only times inside the XNYS session, and a file per partition. "
            "Blocking: downstream assets do not run on bars that fail."
        ),
    )
    quality = dg.AssetCheckSpec(
        "bars_quality",
        asset=asset.key,
        description=(
            "Real-data quirks kept as delivered: open/close outside [low, high], close-to-close "
            "jumps over 50%, volume over 3x the previous bar (Qlib's health thresholds)."
        ),
    )

    @dg.multi_asset_check(specs=[valid, quality], name=f"{asset.key.to_python_identifier()}_checks")
    def bars_checks(
        context: dg.AssetCheckExecutionContext, storage: StorageResource
    ) -> Iterator[dg.AssetCheckResult]:
        bars, missing = read_partitions(storage, timeframe, run_partitions(context, timeframe))
        issues = validate_bars(bars, timeframe)
        errors = [i for i in issues if i.severity == Severity.ERROR]
        warnings = [i for i in issues if i.severity == Severity.WARNING]
        described = [str(e) for e in errors] + [f"no stored bars for {key}" for key in missing]
        yield dg.AssetCheckResult(
            check_name="bars_valid",
            asset_key=asset.key,
            passed=not described,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(described[:5]) if described else "all stored bars are valid",
            metadata={"rows_checked": len(bars), "missing_partitions": len(missing)},
        )
        yield dg.AssetCheckResult(
            check_name="bars_quality",
            asset_key=asset.key,
            passed=not warnings,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(str(w) for w in warnings[:5]) or "no quirks",
            metadata={"rows_checked": len(bars), **_issues_metadata(warnings)},
        )

    return bars_checks


with warnings.catch_warnings():
    # Dagster 1.13 marks `backfill_policy` beta; single-run backfills are what we want.
    warnings.simplefilter("ignore", dg.BetaWarning)
    BARS_ASSETS = {tf: build_bars_asset(tf) for tf in Timeframe}
BARS_CHECKS = {tf: build_bars_checks(tf, asset) for tf, asset in BARS_ASSETS.items()}
