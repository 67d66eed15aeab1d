"""The Definitions object Dagster loads (`friren_pipelines.definitions:defs`).

Settings are read here, once: a bad FRIREN_* value fails the load with a message naming it.
"""

from __future__ import annotations

import dagster as dg

from friren_pipelines.config import load_settings
from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data.bars import BARS_ASSETS, BARS_CHECKS
from friren_pipelines.resources import resources_from_settings

defs = dg.Definitions(
    assets=list(BARS_ASSETS.values()),
    asset_checks=list(BARS_CHECKS.values()),
    resources=resources_from_settings(load_settings()),
)


def timeframe_assets(timeframe: Timeframe) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    """What a backfill of one timeframe materializes: its bars and their checks."""
    return [BARS_ASSETS[timeframe], BARS_CHECKS[timeframe]]
