"""`monitoring.status` and `friren status`: totals, most data, staleness against the last
finished XNYS session, last runs, notifications."""

from __future__ import annotations

import csv
import datetime as dt
import io

from click.testing import CliRunner, Result

from friren_pipelines.cli import main
from friren_pipelines.monitoring.status import last_finished_session, staleness

# Friday 2024-03-15: New York is on EDT, the session runs 13:30-20:00 UTC.
AFTER_CLOSE = dt.datetime(2024, 3, 15, 21, 0, tzinfo=dt.UTC)
DURING_SESSION = dt.datetime(2024, 3, 15, 15, 0, tzinfo=dt.UTC)


def friren(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_the_last_finished_session_is_today_only_after_the_close() -> None:
    assert last_finished_session(AFTER_CLOSE)[0] == dt.date(2024, 3, 15)
    assert last_finished_session(DURING_SESSION)[0] == dt.date(2024, 3, 14)
    # Saturday: Friday's session; Monday before the open: still Friday's.
    assert last_finished_session(_utc("2024-03-16 12:00"))[0] == dt.date(2024, 3, 15)
    assert last_finished_session(_utc("2024-03-18 12:00"))[0] == dt.date(2024, 3, 15)


def test_a_series_is_current_when_it_holds_the_last_bar_of_the_last_finished_session() -> None:
    found = {
        (s.symbol, s.timeframe): s
        for s in staleness(
            [
                ("AAPL", "1d", _utc("2024-03-15 13:30")),  # Friday's daily bar: current
                ("MSFT", "1d", _utc("2024-03-13 13:30")),  # Wednesday: 2 sessions behind
                ("AAPL", "1min", _utc("2024-03-15 19:59")),  # the last minute: current
                ("MSFT", "1min", _utc("2024-03-15 19:58")),  # one minute short: stale
                ("AAPL", "5min", _utc("2024-03-15 19:55")),
                ("NVDA", "1d", None),  # no bar at all
            ],
            AFTER_CLOSE,
        )
    }
    assert [(k, s.stale, s.sessions_behind) for k, s in found.items()] == [
        (("AAPL", "1d"), False, 0),
        (("MSFT", "1d"), True, 2),
        (("AAPL", "1min"), False, 0),
        (("MSFT", "1min"), True, 0),
        (("AAPL", "5min"), False, 0),
        (("NVDA", "1d"), True, None),
    ]
    assert found["MSFT", "1d"].expected_bar == _utc("2024-03-15 13:30")
    # During Friday's session, Thursday's last bar is all there can be.
    (during,) = staleness([("AAPL", "1min", _utc("2024-03-14 19:59"))], DURING_SESSION)
    assert not during.stale


def test_status_prints_totals_staleness_and_the_last_runs(friren_env: dict[str, str]) -> None:
    for symbol in ("AAPL", "MSFT"):
        backfill = friren(
            "backfill", "--symbols", symbol, "--start", "2025-03-03", "--end", "2025-03-07"
        )
        assert backfill.exit_code == 0, backfill.output

    text = friren("status")
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert "== Bars per timeframe ==" in lines
    assert any(line.split()[:3] == ["1d", "2", "500"] for line in lines), text.output
    assert "== Last runs ==" in lines and "SUCCESS" in text.output
    assert "none configured (no notifications table)" in lines

    blocks = friren("status", "--csv").stdout.split("\n\n")
    sections = {
        rows[0]["section"]: rows
        for rows in (list(csv.DictReader(io.StringIO(block))) for block in blocks)
        if rows
    }
    assert [(r["timeframe"], r["symbols"], r["bars"]) for r in sections["totals"]] == [
        ("1d", "2", "500")
    ]
    assert [(r["symbol"], r["bars"]) for r in sections["most_data"]] == [
        ("AAPL", "250"),
        ("MSFT", "250"),
    ]
    assert {(r["symbol"], r["latest_bar"]) for r in sections["staleness"]} == {
        ("AAPL", "2025-12-31 14:30:00+00:00"),
        ("MSFT", "2025-12-31 14:30:00+00:00"),
    }
    assert all(
        r["stale"] == "True" and int(r["sessions_behind"]) > 0 for r in sections["staleness"]
    )
    runs = sections["runs"]
    assert len(runs) == 2 and {r["status"] for r in runs} == {"SUCCESS"}
    assert [r["partitions"] for r in runs] == ["MSFT|2025", "AAPL|2025"]  # newest first


def test_status_without_the_runs_section_works_before_anything_is_stored(
    friren_env: dict[str, str],
) -> None:
    result = friren("status", "--section", "totals", "--section", "notifications")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "== Bars per timeframe ==",
        "no bars stored yet",
        "",
        "== Open notifications ==",
        "none configured (no notifications table)",
    ]
