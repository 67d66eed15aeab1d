import datetime as dt

import pandas as pd

from friren_pipelines.core import calendar


def test_2024_has_252_sessions_and_skips_weekends_and_holidays() -> None:
    sessions = calendar.sessions(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert len(sessions) == 252
    assert dt.date(2024, 7, 4) not in sessions  # Independence Day
    assert dt.date(2024, 3, 29) not in sessions  # Good Friday
    assert all(day.weekday() < 5 for day in sessions)


def test_early_close_after_thanksgiving_has_210_minute_bars() -> None:
    session = dt.date(2024, 11, 29)
    assert calendar.is_early_close(session)
    _, close = calendar.session_bounds(session)
    assert close.tz_convert(calendar.NEW_YORK).hour == 13
    assert len(calendar.bar_starts(session, 1)) == 210
    assert len(calendar.bar_starts(dt.date(2024, 11, 27), 5)) == 78


def test_market_open_follows_new_york_time_across_daylight_saving() -> None:
    assert calendar.is_market_open(pd.Timestamp("2024-03-08 14:30", tz="UTC"))  # EST: 09:30
    assert not calendar.is_market_open(pd.Timestamp("2024-03-11 13:29", tz="UTC"))  # EDT: 09:29
    assert calendar.is_market_open(pd.Timestamp("2024-03-11 13:30", tz="UTC"))
    saturday = pd.Timestamp("2024-03-16 15:00", tz="UTC")
    assert not calendar.is_market_open(saturday)
    assert calendar.next_open(saturday) == pd.Timestamp("2024-03-18 13:30", tz="UTC")


def test_holiday_weekdays_are_the_partition_exclusions() -> None:
    closed = calendar.non_session_weekdays(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert dt.date(2024, 12, 25) in closed and dt.date(2024, 11, 28) in closed
    assert len(closed) == 10
