"""`friren backfill` replaces exactly the sessions it was asked for and keeps the rest of each
partition (a year for 1d): issue 14, point 1."""

import csv
import dataclasses
import datetime as dt
import hashlib
import io
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from friren_pipelines.cli import main
from friren_pipelines.core import calendar
from friren_pipelines.market_data.backfill import SessionRange

YEAR = calendar.sessions(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
WEEK = [day for day in YEAR if dt.date(2024, 3, 4) <= day <= dt.date(2024, 3, 8)]
NARROW = ("backfill", "--symbols", "GOOD", "--start", "2024-03-04", "--end", "2024-03-08")


def friren(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _write_csv(folder: Path, days: list[dt.date], close: float = 100.0) -> None:
    lines = ["Date,Open,High,Low,Close,Volume"]
    lines += [f"{day},{close},{close + 1},{close - 1},{close},1000" for day in days]
    (folder / "GOOD.csv").write_text("\n".join(lines) + "\n")


def _rows(query: str) -> list[dict[str, str]]:
    result = friren("sql", query)
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


def _stored(table: str) -> dict[str, str]:
    """close by session of GOOD's 2024 bars in `table` (bars_1d: Parquet; SQL otherwise)."""
    rows = _rows(
        f"select session_date, close from {table} where symbol = 'GOOD' and timeframe = '1d'"
        " order by timestamp"
    )
    return {r["session_date"]: r["close"] for r in rows}


def _both_stores() -> dict[str, str]:
    parquet = _stored("bars_1d")
    assert _stored("sql.market_data_bars") == parquet
    return parquet


def _digests(home: Path) -> dict[str, str]:
    return {
        str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((home / "bars_1d").rglob("data.parquet"))
    }


@pytest.fixture
def full_year(csv_source: Path, friren_env: dict[str, str]) -> dict[str, str]:
    """GOOD's 2024 backfilled whole (252 bars at close 100); returns the stored closes."""
    _write_csv(csv_source, YEAR)
    result = friren("backfill", "--symbols", "GOOD", "--start", "2024-01-01", "--end", "2024-12-31")
    assert result.exit_code == 0, result.output
    stored = _both_stores()
    assert len(stored) == len(YEAR) == 252
    return stored


def test_a_narrow_backfill_replaces_its_sessions_and_keeps_the_rest_of_the_year(
    csv_source: Path, friren_env: dict[str, str], full_year: dict[str, str]
) -> None:
    _write_csv(csv_source, WEEK, close=50.0)
    result = friren(*NARROW)
    assert result.exit_code == 0, result.output
    stored = _both_stores()
    assert len(stored) == 252
    week = {day.isoformat() for day in WEEK}
    assert {day: close for day, close in stored.items() if day in week} == dict.fromkeys(
        week, "50.0"
    )
    assert {day: c for day, c in stored.items() if day not in week} == {
        day: c for day, c in full_year.items() if day not in week
    }
    home = Path(friren_env["FRIREN_HOME"])
    digests = _digests(home)
    assert friren(*NARROW).exit_code == 0
    assert _digests(home) == digests  # a re-run writes the same bytes


def test_a_narrow_backfill_leaves_other_sessions_as_stored_whatever_the_source_now_says(
    csv_source: Path, friren_env: dict[str, str], full_year: dict[str, str]
) -> None:
    _write_csv(csv_source, YEAR, close=50.0)
    assert friren(*NARROW).exit_code == 0
    week = {day.isoformat() for day in WEEK}
    assert _both_stores() == {day: "50.0" if day in week else c for day, c in full_year.items()}


def test_a_narrow_backfill_of_unchanged_data_writes_the_bytes_of_the_full_backfill(
    csv_source: Path, friren_env: dict[str, str], full_year: dict[str, str]
) -> None:
    home = Path(friren_env["FRIREN_HOME"])
    digests = _digests(home)
    assert friren(*NARROW).exit_code == 0
    assert _digests(home) == digests
    assert _both_stores() == full_year


def test_stored_sessions_the_source_lacks_are_refused_in_one_line_and_nothing_changes(
    csv_source: Path, friren_env: dict[str, str], full_year: dict[str, str]
) -> None:
    home = Path(friren_env["FRIREN_HOME"])
    digests = _digests(home)
    _write_csv(csv_source, [day for day in WEEK if day.day not in (6, 7)], close=50.0)
    result = friren(*NARROW)
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert "GOOD 2024-03-06, 2024-03-07" in last and "--delete-missing" in last, last
    assert _digests(home) == digests
    assert _both_stores() == full_year


def test_a_source_with_nothing_for_stored_sessions_is_refused_naming_them(
    csv_source: Path, friren_env: dict[str, str], full_year: dict[str, str]
) -> None:
    _write_csv(csv_source, [dt.date(2024, 1, 2)])  # nothing in the requested week
    result = friren(*NARROW)
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert "GOOD 2024-03-04, 2024-03-05, 2024-03-06, 2024-03-07, 2024-03-08" in last, last
    assert _both_stores() == full_year


def test_delete_missing_deletes_the_sessions_the_source_lacks_and_keeps_the_others(
    csv_source: Path, friren_env: dict[str, str], full_year: dict[str, str]
) -> None:
    _write_csv(csv_source, [day for day in WEEK if day.day not in (6, 7)], close=50.0)
    result = friren(*NARROW, "--delete-missing")
    assert result.exit_code == 0, result.output
    stored = _both_stores()
    assert len(stored) == 250
    assert "2024-03-06" not in stored and "2024-03-07" not in stored
    assert stored["2024-03-05"] == "50.0" and stored["2024-03-11"] == full_year["2024-03-11"]


def test_a_run_without_the_session_tags_replaces_its_partitions_whole(
    csv_source: Path, friren_env: dict[str, str], full_year: dict[str, str]
) -> None:
    """A UI backfill or a sensor's run carries no requested sessions: the partition becomes what
    the source returned, as before."""
    from friren_pipelines import cli_support
    from friren_pipelines.core.bars import Timeframe
    from friren_pipelines.market_data.backfill import execute, plan

    _write_csv(csv_source, WEEK, close=50.0)
    settings = cli_support.settings()
    instance = cli_support.instance(settings)
    runs = plan(instance, Timeframe.DAY1, ["GOOD"], WEEK[0], WEEK[-1])
    execute(
        instance,
        cli_support.definitions(settings),
        [dataclasses.replace(run, sessions=None) for run in runs],
    )
    assert _both_stores() == {day.isoformat(): "50.0" for day in WEEK}


def test_the_requested_sessions_travel_as_run_tags() -> None:
    sessions = SessionRange(dt.date(2024, 3, 4), dt.date(2024, 3, 8), delete_missing=True)
    assert SessionRange.from_tags(sessions.tags) == sessions
    assert SessionRange.from_tags({"dagster/backfill": "x"}) is None
    with pytest.raises(ValueError, match="friren/sessions_end is not"):
        SessionRange.from_tags({"friren/sessions_start": "2024-03-04"})
    with pytest.raises(ValueError, match="'2024-13-01' is not a date"):
        SessionRange.from_tags(
            {"friren/sessions_start": "2024-13-01", "friren/sessions_end": "2024-03-08"}
        )
