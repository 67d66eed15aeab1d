"""The live cadence: what runs when, driven by the XNYS calendar.

- `intraday_bars_sensor`: while the regular session is open, every 5 minutes, refresh the current
  week's 1min and 5min partitions of the whole watchlist (one run per timeframe; the week is one
  request per symbol to the source). Outside the session it skips and says when the market next opens.
- `daily_bars_schedule`: on weekdays at 17:30 New York, after the close (and after early closes),
  refresh the current year's daily partitions of the whole universe, if today was a session.
- `universe_sensor` (`build_universe_sensor(home)`): keeps the dynamic key sets in line with
  the universe and watchlist files (`<FRIREN_HOME>/universe.txt` / `watchlist.txt` when present,
  else the packaged defaults); it only adds symbols, removal is explicit (`friren symbols remove`).
"""

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pandas as pd

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data.backfill import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from friren_pipelines.market_data.defs import REFRESH_JOBS
from friren_pipelines.market_data.partitions import period_of
from friren_pipelines.market_data.universe import SYMBOL_SETS, UNIVERSE, WATCHLIST, listed_symbols


def range_request(
    symbols: Sequence[str], period: str, run_key: str, job_name: str | None = None
) -> dg.RunRequest:
    """One run over every symbol (in insertion order) of one period."""
    return dg.RunRequest(
        run_key=run_key,
        job_name=job_name,
        tags={
            PARTITION_RANGE_START_TAG: f"{symbols[0]}|{period}",
            PARTITION_RANGE_END_TAG: f"{symbols[-1]}|{period}",
        },
    )


def intraday_requests(watchlist: Sequence[str], now: pd.Timestamp) -> list[dg.RunRequest] | str:
    """Run requests for the current week's intraday partitions, or why there are none."""
    if not calendar.is_market_open(now):
        return f"market closed; next open {calendar.next_open(now).tz_convert(calendar.NEW_YORK)}"
    if not watchlist:
        return "the watchlist is empty (friren symbols add X --watchlist)"
    period = period_of(Timeframe.MIN1, calendar.session_of(now))
    slot = now.floor("5min").isoformat()
    return [
        range_request(
            watchlist, period, f"{timeframe.value}:{period}@{slot}", REFRESH_JOBS[timeframe].name
        )
        for timeframe in (Timeframe.MIN1, Timeframe.MIN5)
    ]


def daily_request(universe: Sequence[str], today: dt.date) -> dg.RunRequest | str:
    if not calendar.is_session(today):
        return f"{today} is not a trading session"
    if not universe:
        return "the universe is empty (friren symbols add X)"
    return range_request(universe, period_of(Timeframe.DAY1, today), today.isoformat())


@dg.sensor(
    jobs=[REFRESH_JOBS[Timeframe.MIN1], REFRESH_JOBS[Timeframe.MIN5]],
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Every 5 minutes while XNYS is open: the watchlist's current-week 1min and 5min bars.",
)
def intraday_bars_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    outcome = intraday_requests(
        context.instance.get_dynamic_partitions(WATCHLIST.name or ""), pd.Timestamp.now(tz="UTC")
    )
    if isinstance(outcome, str):
        return dg.SensorResult(skip_reason=outcome)
    return dg.SensorResult(run_requests=outcome)


@dg.schedule(
    job=REFRESH_JOBS[Timeframe.DAY1],
    cron_schedule="30 17 * * 1-5",
    execution_timezone=calendar.NEW_YORK,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="After the close, refreshes the universe's daily bars for the current year.",
)
def daily_bars_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    day = context.scheduled_execution_time.astimezone(pd.Timestamp.now(tz=calendar.NEW_YORK).tzinfo)
    outcome = daily_request(
        context.instance.get_dynamic_partitions(UNIVERSE.name or ""), day.date()
    )
    return dg.SkipReason(outcome) if isinstance(outcome, str) else outcome


def build_universe_sensor(home: Path) -> dg.SensorDefinition:
    """`universe_sensor`, reading the universe and watchlist files under `home` (FRIREN_HOME)."""

    @dg.sensor(minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.RUNNING)
    def universe_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        """Adds symbols listed in the universe/watchlist files that the instance does not know yet."""
        requests = []
        for symbols in SYMBOL_SETS:
            known = set(context.instance.get_dynamic_partitions(symbols.name or ""))
            new = [s for s in listed_symbols(symbols, home) if s not in known]
            if new:
                requests.append(symbols.build_add_request(new))
        if not requests:
            return dg.SensorResult(
                skip_reason="universe and watchlist are in line with their files"
            )
        return dg.SensorResult(dynamic_partitions_requests=requests)

    return universe_sensor
