"""Indicator assets (1min, 5min, 1d) and their checks: stored bars → TA-Lib → Parquet + SQL.

Look-back: every stored value is TA-Lib over the symbol's entire stored history at that timeframe
(`core.indicators`, bit-identical at every partition boundary). A run reads the stored bars of its
symbols from the warehouse in one scan, calls the core once per symbol over the history up to the
last bar it writes, and writes its partitions.

When an earlier period changes, later periods change too (EMA, RSI and MACD remember their seed).
Two mechanisms keep that visible and repaired, whatever order or chunking a backfill uses:

- Repair. Each indicator file records a fingerprint of the history it was computed from (bar
  starts and closes from the symbol's first stored bar to the partition's last bar). A run
  recomputes every later stored indicator partition of its symbols whose fingerprint no longer
  matches the stored bars, rewrites it (Parquet and SQL, in the same writes as its own
  partitions), logs it and reports it to Dagster as a materialization with the same provenance as
  the run's own partitions. A backfill in reverse order therefore ends with every partition equal
  to TA-Lib over the full history.
- Staleness. Each indicator partition depends on the bars of its own period and of the
  `LOOKBACK_PERIODS` periods before it (all years for daily bars; about two years of weeks for
  minute bars). Re-materializing a bars partition marks the indicator partitions of that period and
  of the later periods within that reach stale in the UI; a backfill of the earliest stale one
  repairs the rest. Dagster ignores edges with 100 or more upstream partitions, and skips
  self-dependencies of assets with 100 or more partitions, so the reach cannot be "all earlier
  weeks"; beyond it, the repair above still happens on the next run over the changed period.
"""

import hashlib
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_TAG,
    get_input_data_version_tag,
    get_input_event_pointer_tag,
)

from friren_pipelines.core.bars import BAR_SCHEMA, Timeframe
from friren_pipelines.core.indicators import (
    INDICATOR_NAMES,
    WIDE_COLUMNS,
    IndicatorIssue,
    IndicatorRule,
    indicators_for_window,
    to_long,
    to_wide,
    validate_indicators,
)
from friren_pipelines.market_data.bars import (
    BARS_ASSETS,
    PER_PARTITION_METADATA_LIMIT,
    partition_slice,
)
from friren_pipelines.market_data.bars import dataset_name as bars_dataset
from friren_pipelines.market_data.indicator_chart import render_indicator_chart
from friren_pipelines.market_data.metadata import column_schema, picture, preview
from friren_pipelines.market_data.partitions import (
    PERIOD_DIMENSION,
    BarsPartition,
    bars_partitions,
    parse_partition,
    period_bounds,
    run_partitions,
)
from friren_pipelines.resources import StorageResource
from friren_pipelines.storage.warehouse import PARTITION_FILE

INDICATORS_TABLE = "market_data_indicators"
# Dagster tracks at most 99 upstream partitions per edge for staleness: the period itself + 98.
LOOKBACK_PERIODS = 98
FINGERPRINT_KEY = b"friren.history_fingerprint"

INDICATORS_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        *(pa.field(name, pa.float64()) for name in INDICATOR_NAMES),
    ]
)
LONG_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("timeframe", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("indicator_name", pa.string(), nullable=False),
        pa.field("indicator_value", pa.float64()),
    ]
)

COLUMN_DESCRIPTIONS = {
    "symbol": "Exchange ticker",
    "timestamp": "Bar start, UTC (the bar's own timestamp in bars_<timeframe>)",
    "rsi_14": "Wilder RSI(14), points 0-100, seeded with the simple mean of the first 14 changes",
    "rsi_9": "Wilder RSI(9), points 0-100",
    "sma_10": "Mean of the last 10 closes, price units",
    "sma_20": "Mean of the last 20 closes",
    "sma_50": "Mean of the last 50 closes",
    "sma_200": "Mean of the last 200 closes",
    "ema_10": "EMA(10), alpha 2/11, seeded with the SMA of the first 10 closes",
    "ema_20": "EMA(20), seeded with the SMA of the first 20 closes",
    "ema_50": "EMA(50), seeded with the SMA of the first 50 closes",
    "macd": "talib.MACD(12, 26, 9) line, price units",
    "macd_signal": "EMA(9) of the MACD line",
    "macd_hist": "macd - macd_signal",
    "bb_upper": "Bollinger(20, 2): SMA20 + 2 population standard deviations",
    "bb_middle": "Bollinger middle band: SMA20",
    "bb_lower": "Bollinger(20, 2): SMA20 - 2 population standard deviations",
}
_HISTORY_COLUMNS = ["symbol", "timestamp", "session_date", "open", "high", "low", "close", "volume"]


def indicators_dataset(timeframe: Timeframe) -> str:
    return f"indicators_{timeframe.value}"


@dataclass
class SymbolHistory:
    """One symbol's stored bars, oldest first, and the row range of each stored period."""

    symbol: str
    bars: pa.Table  # `_HISTORY_COLUMNS`, sorted by timestamp
    periods: dict[str, tuple[int, int]]  # period → [start, end) rows, in time order
    fingerprints: dict[str, str] = field(default_factory=dict)  # period → history fingerprint

    @property
    def close(self) -> np.ndarray:
        return self.bars.column("close").to_numpy()


def _stored_periods(storage: StorageResource, dataset: str, symbol: str) -> dict[str, Path]:
    """Period → file of a symbol's stored partitions in a dataset (`<dim>=<period>` folders)."""
    folder = storage.warehouse.dataset_dir(dataset) / f"symbol={symbol}"
    files = sorted(folder.glob(f"*/{PARTITION_FILE}")) if folder.is_dir() else []
    return {path.parent.name.split("=", 1)[1]: path for path in files}


def _fingerprints(history: SymbolHistory) -> dict[str, str]:
    """Period → digest of the bar starts and closes from the first stored bar to its last bar.

    Indicator values of a period are a function of exactly these bytes (TA-Lib is deterministic),
    so equal fingerprints mean equal stored values.
    """
    stamps = history.bars.column("timestamp").cast(pa.int64()).to_numpy()
    closes = history.close
    digest = hashlib.blake2b(digest_size=16)
    found = {}
    for period, (start, end) in history.periods.items():
        digest.update(stamps[start:end].tobytes())
        digest.update(closes[start:end].tobytes())
        found[period] = digest.hexdigest()
    return found


def read_histories(
    storage: StorageResource, timeframe: Timeframe, symbols: Sequence[str]
) -> dict[str, SymbolHistory]:
    """Every stored bar of the symbols at the timeframe, in one scan of the bars Parquet files."""
    dataset = bars_dataset(timeframe)
    stored = {symbol: _stored_periods(storage, dataset, symbol) for symbol in symbols}
    paths = [str(path) for files in stored.values() for path in files.values()]
    if not paths:
        return {}
    table = (
        pa_ds.dataset(paths, format="parquet", schema=BAR_SCHEMA)
        .to_table(columns=_HISTORY_COLUMNS)
        .sort_by([("symbol", "ascending"), ("timestamp", "ascending")])
    )
    codes = pc.dictionary_encode(table.column("symbol")).combine_chunks()
    names = codes.dictionary.to_pylist()
    indices = codes.indices.to_numpy()
    starts = np.flatnonzero(np.diff(indices, prepend=-1))
    ends = np.append(starts[1:], len(indices))
    histories = {}
    for start, end in zip(starts, ends, strict=True):
        symbol = names[indices[start]]
        bars = table.slice(start, end - start)
        sessions = bars.column("session_date").to_numpy()
        periods = {}
        for period in stored[symbol]:
            first, last = period_bounds(timeframe, period)
            periods[period] = (
                int(np.searchsorted(sessions, np.datetime64(first, "D"), side="left")),
                int(np.searchsorted(sessions, np.datetime64(last, "D"), side="right")),
            )
        history = SymbolHistory(symbol, bars, periods)
        history.fingerprints = _fingerprints(history)
        histories[symbol] = history
    return histories


def _stored_fingerprint(path: Path) -> str | None:
    metadata = pq.read_metadata(path).metadata or {}
    value = metadata.get(FINGERPRINT_KEY)
    return value.decode() if value else None


@dataclass(frozen=True)
class IndicatorWrite:
    """One partition a run writes: its own, or a later one repaired because history changed."""

    partition: BarsPartition
    rows: tuple[int, int]  # [start, end) in the symbol's history
    fingerprint: str
    repaired: bool


def plan_writes(
    storage: StorageResource,
    timeframe: Timeframe,
    partitions: Sequence[BarsPartition],
    histories: Mapping[str, SymbolHistory],
) -> list[IndicatorWrite]:
    """The run's partitions, plus every later stored indicator partition of their symbols whose
    fingerprint differs from the current stored history. Raises ValueError naming the run's
    partitions that have no stored bars."""
    dataset = indicators_dataset(timeframe)
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
        stored = _stored_periods(storage, dataset, symbol)
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


@dataclass
class ComputedIndicators:
    """The wide values of every written partition, concatenated in `writes` order."""

    writes: list[IndicatorWrite]
    wide: pd.DataFrame
    offsets: list[int]  # start row of each write in `wide`
    compute_seconds: float
    frame_seconds: float

    def rows_of(self, index: int) -> slice:
        return slice(self.offsets[index], self.offsets[index + 1])


def compute_writes(
    timeframe: Timeframe, writes: Sequence[IndicatorWrite], histories: Mapping[str, SymbolHistory]
) -> ComputedIndicators:
    """One `indicators_for_window` call per symbol, over its history up to the last written bar,
    whose written rows are copied into the run's columns before the next symbol's call.

    Copying at once frees each call's TA-Lib outputs for the next call to reuse, still in cache,
    as when calling TA-Lib alone; keeping every symbol's outputs to the end costs a fresh page
    (a page fault) for each, up to TA-Lib's own time again on minute histories.
    `compute_seconds` times the calls alone; `frame_seconds` the copies and the wide frame."""
    by_symbol: dict[str, list[IndicatorWrite]] = {}
    for write in writes:
        by_symbol.setdefault(write.partition.symbol, []).append(write)
    ordered = [write for chosen in by_symbol.values() for write in chosen]
    sizes = [write.rows[1] - write.rows[0] for write in ordered]
    offsets = np.cumsum([0, *sizes]).tolist()
    closes = {symbol: histories[symbol].close for symbol in by_symbol}
    columns = {name: np.empty(offsets[-1]) for name in INDICATOR_NAMES}
    stamps = []
    compute_seconds = 0.0
    started = time.perf_counter()
    row = 0
    for symbol, chosen in by_symbol.items():
        first = min(w.rows[0] for w in chosen)
        last = max(w.rows[1] for w in chosen)
        called = time.perf_counter()
        values = indicators_for_window(closes[symbol][:last], first)
        compute_seconds += time.perf_counter() - called
        all_stamps = histories[symbol].bars.column("timestamp").to_numpy()
        for write in chosen:
            start, end = write.rows
            for name in INDICATOR_NAMES:
                columns[name][row : row + end - start] = values[name][start - first : end - first]
            stamps.append(all_stamps[start:end])
            row += end - start
        del values  # before the next call, which can then reuse its memory
    code = {symbol: i for i, symbol in enumerate(by_symbol)}
    wide = to_wide(
        pd.Categorical.from_codes(
            np.repeat([code[w.partition.symbol] for w in ordered], sizes),
            categories=pd.Index(list(by_symbol)),
        ),
        pd.DatetimeIndex(
            np.concatenate(stamps) if stamps else np.empty(0, "datetime64[us]")
        ).tz_localize("UTC"),
        columns,
    )
    return ComputedIndicators(
        ordered,
        wide,
        offsets,
        compute_seconds=compute_seconds,
        frame_seconds=time.perf_counter() - started - compute_seconds,
    )


def store_indicators(
    storage: StorageResource, timeframe: Timeframe, computed: ComputedIndicators
) -> dict[str, int]:
    """Replace the written partitions: one Parquet file each, then one SQL transaction that deletes
    their slices of `market_data_indicators` and inserts their long rows. Returns bytes per key."""
    wide = pa.Table.from_pandas(computed.wide, schema=INDICATORS_SCHEMA, preserve_index=False)
    wide = wide.replace_schema_metadata(None)
    written = {}
    for index, write in enumerate(computed.writes):
        rows = computed.rows_of(index)
        piece = wide.slice(rows.start, rows.stop - rows.start).replace_schema_metadata(
            {FINGERPRINT_KEY: write.fingerprint.encode()}
        )
        written[write.partition.key] = storage.warehouse.write(
            indicators_dataset(timeframe), write.partition.path(timeframe), piece
        )
    frame = computed.wide
    long = to_long(
        frame["symbol"],
        timeframe,
        frame["timestamp"],
        {name: frame[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in INDICATOR_NAMES},
    )
    rows = pa.Table.from_pandas(long, schema=LONG_SCHEMA, preserve_index=False)
    with storage.sql.transaction() as tx:
        tx.delete_slices(
            INDICATORS_TABLE, [partition_slice(timeframe, w.partition) for w in computed.writes]
        )
        tx.insert(INDICATORS_TABLE, rows.replace_schema_metadata(None))
    return written


def _chart_bars(
    history: SymbolHistory, rows: tuple[int, int], timeframe: Timeframe
) -> pd.DataFrame:
    bars = history.bars.slice(rows[0], rows[1] - rows[0]).to_pandas()
    bars["timeframe"] = timeframe.value
    return bars


def _chart(
    timeframe: Timeframe, history: SymbolHistory, write: IndicatorWrite, wide: pd.DataFrame
) -> dg.MetadataValue:
    title = f"{write.partition.symbol} {timeframe.value} {write.partition.period}"
    png = render_indicator_chart(_chart_bars(history, write.rows, timeframe), wide, title)
    return picture(png, title)


def _provenance_tags(context: dg.AssetExecutionContext, bars_key: dg.AssetKey) -> dict[str, str]:
    """The provenance Dagster records for the run's own partitions, for the repaired ones: the code
    version (the run id, as no code version is set) and the latest bars materialization read."""
    records = context.instance.fetch_materializations(bars_key, limit=1).records
    tags = {CODE_VERSION_TAG: context.run.run_id}
    if records:
        entry_tags = records[0].event_log_entry.tags or {}
        tags[get_input_data_version_tag(bars_key)] = entry_tags.get(DATA_VERSION_TAG, "INITIAL")
        tags[get_input_event_pointer_tag(bars_key)] = str(records[0].storage_id)
    return tags


def _lookback_mapping(timeframe: Timeframe) -> dg.MultiPartitionMapping:
    period = PERIOD_DIMENSION[timeframe]
    return dg.MultiPartitionMapping(
        {
            "symbol": dg.DimensionPartitionMapping("symbol", dg.IdentityPartitionMapping()),
            period: dg.DimensionPartitionMapping(
                period,
                dg.TimeWindowPartitionMapping(
                    start_offset=-LOOKBACK_PERIODS,
                    end_offset=0,
                    allow_nonexistent_upstream_partitions=True,
                ),
            ),
        }
    )


def build_indicators_asset(timeframe: Timeframe) -> dg.AssetsDefinition:
    name = indicators_dataset(timeframe)
    bars_asset = BARS_ASSETS[timeframe]

    @dg.asset(
        name=name,
        group_name="market_data",
        kinds={"parquet", "postgres", "talib"},
        owners=["team:market-data"],
        partitions_def=bars_partitions(timeframe),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[dg.AssetDep(bars_asset, partition_mapping=_lookback_mapping(timeframe))],
        description=(
            f"RSI(14, 9), SMA(10, 20, 50, 200), EMA(10, 20, 50), MACD(12, 26, 9) and "
            f"Bollinger(20, 2) of every {timeframe.value} bar, computed with TA-Lib over the "
            f"symbol's entire stored history (equal to TA-Lib over the full series at every "
            f"partition boundary). Wide Parquet under `{name}/` (one row per bar, NULL during "
            f"warm-up), long rows in SQL `{INDICATORS_TABLE}`. A run also rewrites later stored "
            "partitions of its symbols whose history changed (logged as repairs)."
        ),
        metadata={"dagster/column_schema": column_schema(INDICATORS_SCHEMA, COLUMN_DESCRIPTIONS)},
    )
    def indicators_asset(
        context: dg.AssetExecutionContext, storage: StorageResource
    ) -> dg.MaterializeResult:
        partitions = sorted(parse_partition(timeframe, key) for key in context.partition_keys)
        provenance = _provenance_tags(context, bars_asset.key)
        started = time.perf_counter()
        histories = read_histories(storage, timeframe, sorted({p.symbol for p in partitions}))
        writes = plan_writes(storage, timeframe, partitions, histories)
        read_seconds = time.perf_counter() - started
        computed = compute_writes(timeframe, writes, histories)
        started = time.perf_counter()
        written = store_indicators(storage, timeframe, computed)
        write_seconds = time.perf_counter() - started

        repaired = [w for w in computed.writes if w.repaired]
        if repaired:
            context.log.info(
                f"repaired {len(repaired)} later {name} partitions whose history changed: "
                + ", ".join(w.partition.key for w in repaired[:20])
                + (" …" if len(repaired) > 20 else "")
            )
        started = time.perf_counter()
        charted = 0
        for index, write in enumerate(computed.writes):
            wide = computed.wide.iloc[computed.rows_of(index)]
            if write.repaired:
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=context.asset_key,
                        partition=write.partition.key,
                        tags={**provenance, DATA_VERSION_TAG: write.fingerprint},
                        metadata={
                            "dagster/row_count": len(wide),
                            "repaired": "an earlier period of the history changed",
                            "parquet_bytes": written[write.partition.key],
                        },
                    )
                )
            elif len(partitions) <= PER_PARTITION_METADATA_LIMIT:
                context.add_asset_metadata(
                    {
                        "dagster/row_count": len(wide),
                        "first_timestamp": str(wide["timestamp"].iloc[0]),
                        "last_timestamp": str(wide["timestamp"].iloc[-1]),
                        "parquet_bytes": written[write.partition.key],
                        "preview": preview(wide.tail(5)),
                        "chart": _chart(timeframe, histories[write.partition.symbol], write, wide),
                    },
                    partition_key=write.partition.key,
                )
                charted += 1
        run_chart = {}
        if len(partitions) > PER_PARTITION_METADATA_LIMIT:
            index, write = next((i, w) for i, w in enumerate(computed.writes) if not w.repaired)
            wide = computed.wide.iloc[computed.rows_of(index)]
            run_chart["chart"] = _chart(timeframe, histories[write.partition.symbol], write, wide)
            charted = 1
        chart_seconds = time.perf_counter() - started
        own_rows = sum(w.rows[1] - w.rows[0] for w in computed.writes if not w.repaired)
        return dg.MaterializeResult(
            metadata={
                "run_rows": own_rows,
                "run_partitions": len(partitions),
                "repaired_partitions": len(repaired),
                "repaired_rows": len(computed.wide) - own_rows,
                "history_bars_read": sum(h.bars.num_rows for h in histories.values()),
                "sql_store": storage.sql_kind,
                "seconds_read": round(read_seconds, 4),
                "seconds_compute": round(computed.compute_seconds, 4),
                "seconds_frames": round(computed.frame_seconds, 4),
                "seconds_write": round(write_seconds, 4),
                "seconds_charts": round(chart_seconds, 4),
                "charts": charted,
                **run_chart,
            }
        )

    return indicators_asset


CHECK_RULES: Mapping[str, tuple[tuple[IndicatorRule, ...], str]] = {
    "indicators_rsi_in_range": (
        (IndicatorRule.RSI_OUT_OF_RANGE,),
        "rsi_14 and rsi_9 lie within [0, 100].",
    ),
    "indicators_bands_ordered": (
        (IndicatorRule.BANDS_OUT_OF_ORDER,),
        "bb_lower ≤ bb_middle ≤ bb_upper on every bar.",
    ),
    "indicators_one_row_per_bar": (
        (IndicatorRule.MISSING_ROW, IndicatorRule.ROW_WITHOUT_BAR, IndicatorRule.DUPLICATE_ROW),
        "Exactly one indicator row per stored bar, with the bar's timestamp.",
    ),
    "indicators_warmup": (
        (IndicatorRule.NULL_AFTER_WARMUP, IndicatorRule.VALUE_BEFORE_WARMUP),
        "NULL exactly during each indicator's warm-up (TA-Lib lookback from the symbol's first "
        "stored bar), never NULL after it.",
    ),
}


def stored_partitions(storage: StorageResource, timeframe: Timeframe) -> list[BarsPartition]:
    """Every partition with a stored indicators file."""
    folder = storage.warehouse.dataset_dir(indicators_dataset(timeframe))
    return (
        sorted(
            parse_partition(
                timeframe, f"{path.parts[-3].split('=', 1)[1]}|{path.parts[-2].split('=', 1)[1]}"
            )
            for path in storage.warehouse.files(indicators_dataset(timeframe))
        )
        if folder.is_dir()
        else []
    )


def read_written(
    storage: StorageResource, timeframe: Timeframe, partitions: Sequence[BarsPartition]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """What a run over `partitions` may have written, read back: the stored indicators and bars of
    its partitions and of the later stored indicator partitions of its symbols, and per symbol the
    number of stored bars before them."""
    first_period: dict[str, str] = {}
    in_run: dict[str, set[str]] = {}
    for p in partitions:
        first_period[p.symbol] = min(first_period.get(p.symbol, p.period), p.period)
        in_run.setdefault(p.symbol, set()).add(p.period)
    indicator_files, bar_files, bars_before = [], [], {}
    for symbol, first in first_period.items():
        bar_periods = _stored_periods(storage, bars_dataset(timeframe), symbol)
        indicator_periods = _stored_periods(storage, indicators_dataset(timeframe), symbol)
        chosen = [
            p for p in bar_periods if p >= first and (p in in_run[symbol] or p in indicator_periods)
        ]
        indicator_files += [indicator_periods[p] for p in chosen if p in indicator_periods]
        bar_files += [bar_periods[p] for p in chosen]
        bars_before[symbol] = sum(
            pq.read_metadata(bar_periods[p]).num_rows for p in bar_periods if p < first
        )

    def read(files: list[Path], schema: pa.Schema, columns: list[str]) -> pd.DataFrame:
        if not files:
            return schema.empty_table().select(columns).to_pandas()
        scanned = pa_ds.dataset([str(f) for f in files], format="parquet", schema=schema)
        return scanned.to_table(columns=columns).to_pandas()

    wide = read(indicator_files, INDICATORS_SCHEMA, list(WIDE_COLUMNS))
    bars = read(bar_files, BAR_SCHEMA, ["symbol", "timestamp"])
    return wide, bars, bars_before


def build_indicators_checks(
    timeframe: Timeframe, asset: dg.AssetsDefinition
) -> dg.AssetChecksDefinition:
    specs = [
        dg.AssetCheckSpec(name, asset=asset.key, blocking=True, description=description)
        for name, (_, description) in CHECK_RULES.items()
    ]

    @dg.multi_asset_check(specs=specs, name=f"{asset.key.to_python_identifier()}_checks")
    def indicators_checks(
        context: dg.AssetCheckExecutionContext, storage: StorageResource
    ) -> Iterator[dg.AssetCheckResult]:
        # Checks launched on their own (not with a materialization) run unpartitioned: all stored.
        partitions = run_partitions(context, timeframe) or stored_partitions(storage, timeframe)
        wide, bars, bars_before = read_written(storage, timeframe, partitions)
        issues = validate_indicators(wide, bars, bars_before)
        for name, (rules, _) in CHECK_RULES.items():
            found: list[IndicatorIssue] = [i for i in issues if i.rule in rules]
            yield dg.AssetCheckResult(
                check_name=name,
                asset_key=asset.key,
                passed=not found,
                severity=dg.AssetCheckSeverity.ERROR,
                description="; ".join(str(i) for i in found[:5]) or "passed",
                metadata={"rows_checked": len(wide), "symbols": len(bars_before)},
            )

    return indicators_checks


with warnings.catch_warnings():
    # Dagster 1.13 marks `backfill_policy` beta; single-run backfills are what we want.
    warnings.simplefilter("ignore", dg.BetaWarning)
    INDICATOR_ASSETS = {tf: build_indicators_asset(tf) for tf in Timeframe}
INDICATOR_CHECKS = {
    tf: build_indicators_checks(tf, asset) for tf, asset in INDICATOR_ASSETS.items()
}
