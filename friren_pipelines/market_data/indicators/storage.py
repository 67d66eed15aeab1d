"""The indicator partitions in the warehouse and the SQL store: the one writer, replacing a run's
partitions in both, and the readers its checks use."""

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq

from friren_pipelines.core.bars import BAR_SCHEMA, Timeframe
from friren_pipelines.core.indicators import WIDE_COLUMNS
from friren_pipelines.market_data.bars import partition_slice
from friren_pipelines.market_data.indicators.compute import ComputedIndicators
from friren_pipelines.market_data.indicators.history import FINGERPRINT_KEY, stored_periods
from friren_pipelines.market_data.partitions import BarsPartition, parse_partition
from friren_pipelines.storage.tables import BARS, INDICATOR_ROWS, INDICATORS
from friren_pipelines.storage.write import Piece, Stores, replace


def store_indicators(
    storage: Stores, timeframe: Timeframe, computed: ComputedIndicators
) -> dict[str, int]:
    """Replace the written partitions through `storage.write`: per partition its Parquet file
    (with the fingerprint of the history it was computed from) and its SQL rows (the same rows
    with their timeframe), all in one write. Returns bytes per key."""
    wide = pa.Table.from_pandas(computed.wide, schema=INDICATORS.schema, preserve_index=False)
    values = wide.add_column(
        1, INDICATOR_ROWS.schema.field("timeframe"), pa.repeat(timeframe.value, wide.num_rows)
    ).replace_schema_metadata(None)
    dataset = INDICATORS.dataset_for(timeframe)
    files, slices = [], []
    for index, write in enumerate(computed.writes):
        rows = computed.rows_of(index)
        files.append(
            Piece(
                INDICATORS,
                wide.slice(rows.start, rows.stop - rows.start),
                dataset,
                write.partition.path(timeframe),
                file_metadata={FINGERPRINT_KEY: write.fingerprint.encode()},
            )
        )
        slices.append(
            Piece(
                INDICATOR_ROWS,
                values.slice(rows.start, rows.stop - rows.start),
                where=partition_slice(timeframe, write.partition),
            )
        )
    sizes = replace(storage, [*files, *slices])
    return {write.partition.key: size for write, size in zip(computed.writes, sizes, strict=False)}


def stored_partitions(storage: Stores, timeframe: Timeframe) -> list[BarsPartition]:
    """Every partition with a stored indicators file."""
    folder = storage.warehouse.dataset_dir(INDICATORS.dataset_for(timeframe))
    return (
        sorted(
            parse_partition(
                timeframe, f"{path.parts[-3].split('=', 1)[1]}|{path.parts[-2].split('=', 1)[1]}"
            )
            for path in storage.warehouse.files(INDICATORS.dataset_for(timeframe))
        )
        if folder.is_dir()
        else []
    )


def read_written(
    storage: Stores, timeframe: Timeframe, partitions: Sequence[BarsPartition]
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
        bar_periods = stored_periods(storage, BARS.dataset_for(timeframe), symbol)
        indicator_periods = stored_periods(storage, INDICATORS.dataset_for(timeframe), symbol)
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

    wide = read(indicator_files, INDICATORS.schema, list(WIDE_COLUMNS))
    bars = read(bar_files, BAR_SCHEMA, ["symbol", "timestamp"])
    return wide, bars, bars_before
