"""The Definitions object Dagster loads (`friren_pipelines.definitions:defs`): each domain's
Definitions merged, with the resources built from the settings.

Settings are read here, once: a bad value fails the load with a message naming the variable.
The CLI builds the same object with `build_definitions` and runs its jobs.

Every job runs its steps in the run's own process (`in_process_executor`): a step is seconds of
work, while a process per step (Dagster's default) re-imports the project for each one
(README, "Dagster instance").
"""

import dagster as dg

from friren_pipelines.automation import defs as automation
from friren_pipelines.config import Settings, load_settings
from friren_pipelines.market_data import defs as market_data
from friren_pipelines.monitoring import defs as monitoring
from friren_pipelines.portfolio import defs as portfolio
from friren_pipelines.resources import build_resources


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions.merge(
        market_data.build_defs(settings),
        portfolio.build_defs(settings),
        monitoring.defs,
        automation.build_defs(settings.home),
        dg.Definitions(resources=build_resources(settings), executor=dg.in_process_executor),
    )


defs = build_definitions(load_settings())
