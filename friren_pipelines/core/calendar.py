"""The XNYS trading calendar: sessions, their open/close instants (early closes included).

All instants are UTC `pd.Timestamp`s; session labels are `datetime.date`s in New York time.
Backed by exchange_calendars, built once per process for 1990 through next year.
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import cache
from typing import cast

import pandas as pd

NEW_YORK = "America/New_York"
CALENDAR_START = dt.date(1990, 1, 2)


@cache
def _schedule() -> pd.DataFrame:
    """Session → (open, close) in UTC, indexed by naive session dates."""
    with warnings.catch_warnings():
        # exchange_calendars still uses pandas APIs deprecated in pandas 3.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        import exchange_calendars as xcals

        end = dt.date.today().replace(month=12, day=31) + dt.timedelta(days=366)
        calendar = xcals.get_calendar("XNYS", start=CALENDAR_START.isoformat(), end=end.isoformat())
        schedule = calendar.schedule[["open", "close"]].copy()
    schedule.index = pd.DatetimeIndex(schedule.index).tz_localize(None).normalize()
    return schedule


def calendar_end() -> dt.date:
    """The last date the calendar knows; later dates raise."""
    return _schedule().index[-1].date()


def _check_range(start: dt.date, end: dt.date) -> None:
    if start < CALENDAR_START or end > calendar_end():
        raise ValueError(
            f"dates {start}..{end} are outside the XNYS calendar ({CALENDAR_START}..{calendar_end()})"
        )


def sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    """Trading sessions from `start` to `end`, both inclusive."""
    if end < start:
        return []
    _check_range(start, end)
    index = _schedule().index
    chosen = index[(index >= pd.Timestamp(start)) & (index <= pd.Timestamp(end))]
    return [ts.date() for ts in chosen]


def is_session(day: dt.date) -> bool:
    return pd.Timestamp(day) in _schedule().index


def non_session_weekdays(start: dt.date, end: dt.date) -> list[dt.date]:
    """Weekdays the exchange is closed (holidays): exclusions for weekday partition schedules."""
    weekdays = pd.bdate_range(start, end)
    closed = weekdays.difference(pd.DatetimeIndex(_schedule().index))
    return [ts.date() for ts in closed]


def session_bounds(session: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(open, close) of one session as UTC instants; raises KeyError for a non-session."""
    schedule, label = _schedule(), pd.Timestamp(session)
    if label not in schedule.index:
        raise KeyError(f"{session} is not an XNYS trading session")
    bounds = schedule.loc[label]
    return cast(pd.Timestamp, bounds["open"]), cast(pd.Timestamp, bounds["close"])


def session_table(start: dt.date, end: dt.date) -> pd.DataFrame:
    """Sessions in [start, end] with `open` and `close` (UTC) columns, for vectorised joins."""
    _check_range(start, end)
    schedule = _schedule()
    return schedule.loc[pd.Timestamp(start) : pd.Timestamp(end)]


def is_early_close(session: dt.date) -> bool:
    """True when the session closes before 16:00 New York time (e.g. the day after Thanksgiving)."""
    _, close = session_bounds(session)
    return close.tz_convert(NEW_YORK).hour < 16


def session_of(instant: pd.Timestamp) -> dt.date:
    """The New York calendar date of an instant (its session label if the market was open)."""
    return instant.tz_convert(NEW_YORK).date()


def is_market_open(instant: pd.Timestamp) -> bool:
    """Whether the regular session is in progress at `instant` (open inclusive, close exclusive)."""
    day = session_of(instant)
    if not is_session(day):
        return False
    open_, close = session_bounds(day)
    return open_ <= instant < close


def next_open(instant: pd.Timestamp) -> pd.Timestamp:
    """The first session open strictly after `instant`, or now if the market is open."""
    schedule = _schedule()
    later = schedule[schedule["close"] > instant]
    first = later.iloc[0]
    return max(pd.Timestamp(first["open"]), instant)


def bar_starts(session: dt.date, minutes: int) -> pd.DatetimeIndex:
    """UTC starts of the `minutes`-long regular-session bars of one session (early closes honoured)."""
    open_, close = session_bounds(session)
    return pd.date_range(open_, close, freq=f"{minutes}min", inclusive="left")
