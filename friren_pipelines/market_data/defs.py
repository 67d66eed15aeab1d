"""What the market-data domain adds to the Definitions (`build_defs(settings)`).

Per timeframe (1d, 1min, 5min): the bars with their checks, the indicators computed from them
with theirs, and the `refresh_<timeframe>` job that materializes both: what one backfill run
(`friren backfill`) or one live refresh (the automation's schedule and sensor) runs.
"""

import dagster as dg

from friren_pipelines.config import Settings
from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data.backfill import refresh_job_name
from friren_pipelines.market_data.bars import BARS_ASSETS, BARS_CHECKS
from friren_pipelines.market_data.indicators import INDICATOR_ASSETS, INDICATOR_CHECKS
from friren_pipelines.market_data.metadata import as_configured
from friren_pipelines.market_data.partitions import bars_partitions

# Selecting an asset selects its checks too.
REFRESH_JOBS = {
    timeframe: dg.define_asset_job(
        refresh_job_name(timeframe),
        selection=dg.AssetSelection.assets(BARS_ASSETS[timeframe], INDICATOR_ASSETS[timeframe]),
        description=f"Materializes the {timeframe.value} bars and what is computed from them.",
    )
    for timeframe in Timeframe
}


def build_defs(settings: Settings) -> dg.Definitions:
    """The domain's assets, checks and jobs for these settings: every asset's periods start at
    `settings.history_start` (`partitions.bars_partitions`), and its kinds name the configured
    SQL store."""
    defs = dg.Definitions(
        assets=[asset for tf in Timeframe for asset in (BARS_ASSETS[tf], INDICATOR_ASSETS[tf])],
        asset_checks=[
            check for tf in Timeframe for check in (BARS_CHECKS[tf], INDICATOR_CHECKS[tf])
        ],
        jobs=list(REFRESH_JOBS.values()),
    )
    partitions = {
        asset.key: bars_partitions(tf, settings.history_start)
        for tf in Timeframe
        for asset in (BARS_ASSETS[tf], INDICATOR_ASSETS[tf])
    }
    return as_configured(defs, settings, partitions)
