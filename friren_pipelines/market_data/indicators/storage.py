"""The indicator partitions in the warehouse and the SQL store: the one writer, replacing a run's
partitions in both, and the readers its checks use."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq

from friren_pipelines.core.bars import BAR_SCHEMA, Timeframe
from friren_pipelines.core.indicators import INDICATOR_NAMES, WIDE_COLUMNS, to_long
from friren_pipelines.market_data.bars import dataset_name as bars_dataset
from friren_pipelines.market_data.bars import partition_slice
from friren_pipelines.market_data.indicators.compute import ComputedIndicators
from friren_pipelines.market_data.indicators.history import stored_periods
from friren_pipelines.market_data.indicators.tables import (
    FINGERPRINT_KEY,
    INDICATORS_SCHEMA,
    INDICATORS_TABLE,
    LONG_SCHEMA,
    indicators_dataset,
)
from friren_pipelines.market_data.partitions import BarsPartition, parse_partition
from friren_pipelines.resources import StorageResource


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
        bar_periods = stored_periods(storage, bars_dataset(timeframe), symbol)
        indicator_periods = stored_periods(storage, indicators_dataset(timeframe), symbol)
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
