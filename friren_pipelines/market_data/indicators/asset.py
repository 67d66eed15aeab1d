"""The indicator assets (1min, 5min, 1d) and their checks, as Dagster sees them: a run reads the
history, plans its writes, computes, stores, and reports every written partition.

Staleness. Each indicator partition depends on the bars of its own period and of the
`LOOKBACK_PERIODS` periods before it (all years for daily bars; about two years of weeks for
minute bars). Re-materializing a bars partition marks the indicator partitions of that period and
of the later periods within that reach stale in the UI; a backfill of the earliest stale one
repairs the rest (`repair`). Dagster ignores edges with 100 or more upstream partitions, and skips
self-dependencies of assets with 100 or more partitions, so the reach cannot be "all earlier
weeks"; beyond it, the repair still happens on the next run over the changed period.
"""

import time
import warnings

import dagster as dg
import pandas as pd

# Private: Dagster names its provenance tags only here, and has no public way to give a data
# version and provenance to a materialization of another partition than the run's own. The
# repaired partitions need the very tags Dagster writes on the run's own ones, or the UI marks
# them stale.
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_TAG,
    get_input_data_version_tag,
    get_input_event_pointer_tag,
)

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data.bars import BARS_ASSETS
from friren_pipelines.market_data.indicator_chart import chart_title, render_indicator_chart
from friren_pipelines.market_data.indicators.checks import build_indicators_checks
from friren_pipelines.market_data.indicators.compute import compute_writes
from friren_pipelines.market_data.indicators.history import SymbolHistory, read_histories
from friren_pipelines.market_data.indicators.repair import IndicatorWrite, plan_writes
from friren_pipelines.market_data.indicators.storage import store_indicators
from friren_pipelines.market_data.metadata import (
    add_partition_metadata,
    column_schema,
    picture,
    preview,
    record_run_totals,
)
from friren_pipelines.market_data.partitions import (
    PERIOD_DIMENSION,
    bars_partitions,
    parse_partition,
)
from friren_pipelines.resources import StorageResource
from friren_pipelines.storage.tables import INDICATOR_ROWS, INDICATORS

# Dagster tracks at most 99 upstream partitions per edge for staleness: the period itself + 98.
LOOKBACK_PERIODS = 98
# A chart costs ~0.1-0.2 s to draw and ~40 KB in the event log: a run of at most this many
# partitions (a partition or a few from the UI, `friren demo`) charts each of them; a larger one (a
# backfill) charts none, as 1,000 charts would cost minutes. Every partition gets its own rows and
# preview whatever the size of the run.
CHARTED_PARTITIONS = 50


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


def _chart(
    timeframe: Timeframe, history: SymbolHistory, write: IndicatorWrite, wide: pd.DataFrame
) -> dg.MetadataValue:
    """The partition's candles with its indicators, as an image for the asset page."""
    title = chart_title(write.partition.symbol, timeframe, write.partition.period)
    start, end = write.rows
    bars = history.bars.slice(start, end - start).to_pandas()
    bars["timeframe"] = timeframe.value
    return picture(render_indicator_chart(bars, wide, title), title)


def build_indicators_asset(timeframe: Timeframe) -> dg.AssetsDefinition:
    name = INDICATORS.dataset_for(timeframe)
    bars_asset = BARS_ASSETS[timeframe]

    @dg.asset(
        name=name,
        group_name="market_data",
        kinds={"parquet", "talib"},  # + the SQL store's kind, added by `defs.build_defs`
        owners=["team:market-data"],
        partitions_def=bars_partitions(timeframe),
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[dg.AssetDep(bars_asset, partition_mapping=_lookback_mapping(timeframe))],
        description=(
            f"RSI(14, 9), SMA(10, 20, 50, 200), EMA(10, 20, 50), MACD(12, 26, 9) and "
            f"Bollinger(20, 2) of every {timeframe.value} bar, computed with TA-Lib over the "
            f"symbol's entire stored history (equal to TA-Lib over the full series at every "
            f"partition boundary). Wide Parquet under `{name}/` (one row per bar, NULL during "
            f"warm-up), the same rows in SQL `{INDICATOR_ROWS.name}` (long: the view `market_data_indicators`). A run also rewrites later stored "
            "partitions of its symbols whose history changed (logged as repairs)."
        ),
        metadata={
            "dagster/column_schema": column_schema(INDICATORS.schema, INDICATORS.descriptions)
        },
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
        own: dict[str, dict[str, object]] = {}
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
                continue
            metadata: dict[str, object] = {
                "dagster/row_count": len(wide),
                "first_timestamp": str(wide["timestamp"].iloc[0]),
                "last_timestamp": str(wide["timestamp"].iloc[-1]),
                "parquet_bytes": written[write.partition.key],
                "preview": preview(wide.tail(5)),
            }
            if len(partitions) <= CHARTED_PARTITIONS:
                history = histories[write.partition.symbol]
                metadata["chart"] = _chart(timeframe, history, write, wide)
            own[write.partition.key] = metadata
        add_partition_metadata(context, own)
        chart_seconds = time.perf_counter() - started
        own_rows = sum(w.rows[1] - w.rows[0] for w in computed.writes if not w.repaired)
        record_run_totals(
            context,
            {
                "run_rows": own_rows,
                "run_partitions": len(partitions),
                "repaired_partitions": len(repaired),
                "repaired_rows": len(computed.wide) - own_rows,
                "history_bars_read": sum(h.bars.num_rows for h in histories.values()),
                "charts": sum("chart" in metadata for metadata in own.values()),
                "seconds_read": round(read_seconds, 4),
                "seconds_compute": round(computed.compute_seconds, 4),
                "seconds_frames": round(computed.frame_seconds, 4),
                "seconds_write": round(write_seconds, 4),
                "seconds_charts": round(chart_seconds, 4),
            },
        )
        # True of every partition of the run: shown on each.
        return dg.MaterializeResult(metadata={"sql_store": storage.sql_kind})

    return indicators_asset


with warnings.catch_warnings():
    # Dagster 1.13 marks `backfill_policy` beta; single-run backfills are what we want.
    warnings.simplefilter("ignore", dg.BetaWarning)
    INDICATOR_ASSETS = {tf: build_indicators_asset(tf) for tf in Timeframe}
INDICATOR_CHECKS = {
    tf: build_indicators_checks(tf, asset) for tf, asset in INDICATOR_ASSETS.items()
}
