"""The Definitions object Dagster loads (`friren_pipelines.definitions:defs`).

Settings are read here, once: a bad FRIREN_* value fails the load with a message naming it.
"""

import dagster as dg

from friren_pipelines.automation.market_hours import SCHEDULES, SENSORS
from friren_pipelines.config import load_settings
from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data.pipeline import timeframe_assets, timeframe_job
from friren_pipelines.portfolio.defs import (
    PORTFOLIO_ASSETS,
    PORTFOLIO_CHECKS,
    PORTFOLIO_JOBS,
    PORTFOLIO_SCHEDULES,
    portfolio_resources,
)
from friren_pipelines.resources import resources_from_settings

settings = load_settings()
market_data = [item for timeframe in Timeframe for item in timeframe_assets(timeframe)]

defs = dg.Definitions(
    assets=[
        *(a for a in market_data if not isinstance(a, dg.AssetChecksDefinition)),
        *PORTFOLIO_ASSETS,
    ],
    asset_checks=[
        *(c for c in market_data if isinstance(c, dg.AssetChecksDefinition)),
        *PORTFOLIO_CHECKS,
    ],
    jobs=[*(timeframe_job(timeframe) for timeframe in Timeframe), *PORTFOLIO_JOBS],
    schedules=[*SCHEDULES, *PORTFOLIO_SCHEDULES],
    sensors=SENSORS,
    resources={**resources_from_settings(settings), **portfolio_resources(settings)},
)
