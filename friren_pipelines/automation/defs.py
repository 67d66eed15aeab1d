"""What the automation domain adds to the Definitions: the live cadence (`market_hours`)."""

from pathlib import Path

import dagster as dg

from friren_pipelines.automation.market_hours import (
    build_universe_sensor,
    daily_bars_schedule,
    intraday_bars_sensor,
)


def build_defs(home: Path) -> dg.Definitions:
    """The schedules and sensors; the universe sensor reads its files under `home` (FRIREN_HOME)."""
    return dg.Definitions(
        schedules=[daily_bars_schedule],
        sensors=[intraday_bars_sensor, build_universe_sensor(home)],
    )
