"""Partitions of the market-data assets: symbol × a period of XNYS sessions.

Granularity per timeframe (arithmetic in the README):
- 1d bars: universe symbol × calendar year (the sessions of that year). 500 symbols × 37 years (1990–2026)
  = 18,500 keys; a year is ~252 bars, one request to any source.
- 1min / 5min bars: watchlist symbol × week (the sessions from Monday to Friday, keyed by the Monday).
  50 symbols × 52 weeks × 22 years (2005–2026) = 57,200 keys; a week is ≤ 1,950 minute bars and
  one yfinance request (its 1m limit is 7 days per request).
The periods start where the deployment's data starts (`FRIREN_HISTORY_START`, `Settings.history_start`):
the year of that day, the week of the Monday on or before it. The assets are declared over every
session of the trading calendar (`core.calendar.CALENDAR_START`) and the domain's `build_defs`
narrows them to the settings' start, so the UI offers no period that can never be filled.
Dagster stores a materialization event per key whatever its rows (batched on the desk's PostgreSQL
instance, ~20 ms each on SQLite), so coarse keys keep backfills fast; both granularities stay under
Dagster's recommended 100,000 keys per asset.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data.universe import UNIVERSE, WATCHLIST

PERIOD_DIMENSION = {Timeframe.DAY1: "year", Timeframe.MIN1: "week", Timeframe.MIN5: "week"}


def first_period(timeframe: Timeframe, start: dt.date) -> str:
    """The first period key of partitions starting at `start`: its year (1d), or the Monday on
    or before it (1min, 5min)."""
    return period_of(timeframe, start)


def bars_partitions(
    timeframe: Timeframe, start: dt.date = calendar.CALENDAR_START
) -> dg.MultiPartitionsDefinition:
    """Symbol × period keys from the period holding `start` (default: every calendar session);
    the current, unfinished period is a key too."""
    if timeframe == Timeframe.DAY1:
        years = dg.TimeWindowPartitionsDefinition(
            cron_schedule="0 0 1 1 *",
            start=first_period(timeframe, start),
            fmt="%Y",
            timezone=calendar.NEW_YORK,
            end_offset=1,
        )
        return dg.MultiPartitionsDefinition({"symbol": UNIVERSE, "year": years})
    weeks = dg.WeeklyPartitionsDefinition(
        start_date=first_period(timeframe, start),
        day_offset=1,  # weeks start on Monday
        timezone=calendar.NEW_YORK,
        end_offset=1,
    )
    return dg.MultiPartitionsDefinition({"symbol": WATCHLIST, "week": weeks})


@dataclass(frozen=True, order=True)
class BarsPartition:
    """One (symbol, period) key: the bars of one symbol in the sessions from `first` to `last`."""

    symbol: str
    period: str  # "2024" or the Monday "2024-03-11"
    first: dt.date
    last: dt.date

    @property
    def key(self) -> str:
        return f"{self.symbol}|{self.period}"

    def path(self, timeframe: Timeframe) -> tuple[tuple[str, str], ...]:
        """The warehouse partition path segments."""
        return (("symbol", self.symbol), (PERIOD_DIMENSION[timeframe], self.period))


def period_bounds(timeframe: Timeframe, period: str) -> tuple[dt.date, dt.date]:
    """First and last calendar day of a period key."""
    if timeframe == Timeframe.DAY1:
        year = int(period)
        return dt.date(year, 1, 1), dt.date(year, 12, 31)
    monday = dt.date.fromisoformat(period)
    return monday, monday + dt.timedelta(days=6)


def period_of(timeframe: Timeframe, day: dt.date) -> str:
    if timeframe == Timeframe.DAY1:
        return str(day.year)
    return (day - dt.timedelta(days=day.weekday())).isoformat()


def parse_partition(timeframe: Timeframe, key: str | dg.MultiPartitionKey) -> BarsPartition:
    if isinstance(key, dg.MultiPartitionKey):
        symbol, period = (
            key.keys_by_dimension["symbol"],
            key.keys_by_dimension[PERIOD_DIMENSION[timeframe]],
        )
    else:
        # Multi-partition keys join dimension values in dimension-name order: symbol before period.
        symbol, period = str(key).split("|", 1)
    first, last = period_bounds(timeframe, period)
    return BarsPartition(symbol=symbol, period=period, first=first, last=last)


def periods_between(timeframe: Timeframe, start: dt.date, end: dt.date) -> list[str]:
    """Period keys that hold sessions between `start` and `end` (inclusive), in time order."""
    periods: list[str] = []
    for session in calendar.sessions(start, end):
        period = period_of(timeframe, session)
        if not periods or periods[-1] != period:
            periods.append(period)
    return periods


def run_partitions(
    context: dg.AssetCheckExecutionContext, timeframe: Timeframe
) -> list[BarsPartition] | None:
    """The partitions a check's run covers, sorted; None when the check was launched unpartitioned."""
    op_context = context.op_execution_context
    if not (op_context.has_partition_key_range or op_context.has_partition_key):
        return None
    return sorted(parse_partition(timeframe, key) for key in op_context.partition_keys)
