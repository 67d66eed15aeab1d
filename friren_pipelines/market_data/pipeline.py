"""Per-timeframe selections: what one backfill or live refresh of a timeframe materializes."""

from functools import cache

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data.bars import BARS_ASSETS, BARS_CHECKS
from friren_pipelines.market_data.indicators import INDICATOR_ASSETS, INDICATOR_CHECKS


def timeframe_assets(timeframe: Timeframe) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    """The bars of a timeframe with their checks, and everything computed from them."""
    return [
        BARS_ASSETS[timeframe],
        BARS_CHECKS[timeframe],
        INDICATOR_ASSETS[timeframe],
        INDICATOR_CHECKS[timeframe],
    ]


@cache
def timeframe_job(timeframe: Timeframe) -> UnresolvedAssetJobDefinition:
    assets = [a for a in timeframe_assets(timeframe) if not isinstance(a, dg.AssetChecksDefinition)]
    return dg.define_asset_job(
        f"refresh_{timeframe.value}",
        selection=dg.AssetSelection.assets(*assets),
        description=f"Materializes the {timeframe.value} bars and what is computed from them.",
    )
