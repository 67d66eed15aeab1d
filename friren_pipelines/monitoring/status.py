"""The platform's monitoring answers, computed in one place for `friren status` and the
`platform_status` asset: totals (bars and symbols per timeframe), the symbols with most data,
staleness per symbol and timeframe, the last runs and their outcome, and open notifications.

Bars figures come from the SQL store's `symbol_metadata` (refreshed in the same transaction as
the bars), read as `sql.symbol_metadata` on a `storage.views` connection. Runs come from the
Dagster instance, passed in: this module imports neither Dagster nor a database driver.

Staleness: a series (symbol, timeframe) is current when its latest bar is the last bar of the
last *finished* XNYS session (the session open for daily bars, `close - bar length` for intraday
bars); `sessions_behind` counts the finished sessions after the session of its latest bar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

SECTION_NAMES = ("totals", "most_data", "staleness", "runs", "notifications")
SQL_TABLES = ("symbol_metadata", "notifications")  # what `collect` reads from the SQL store
METADATA_TABLE = "sql.symbol_metadata"
NOTIFICATIONS_TABLE = "notifications"  # not declared yet: `open_notifications` is the hook
MOST_DATA_LIMIT = 10
RUNS_LIMIT = 10
_LOOKBACK = dt.timedelta(days=14)  # wider than any XNYS closure, to find the last session


@dataclass(frozen=True)
class Section:
    """One answer as a table: what `friren status` prints, `--csv` writes, the asset previews."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    note: str = ""  # shown instead of an empty table


@dataclass(frozen=True)
class Staleness:
    symbol: str
    timeframe: str
    latest_bar: dt.datetime | None  # UTC bar start
    expected_bar: dt.datetime  # the last bar of the last finished session, UTC
    sessions_behind: int | None  # None: no bar at all

    @property
    def stale(self) -> bool:
        return self.latest_bar is None or self.latest_bar < self.expected_bar


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    job: str
    status: str  # Dagster's run status: SUCCESS, FAILURE, STARTED, QUEUED, CANCELED, ...
    started: dt.datetime | None  # UTC
    seconds: float | None  # wall time, None while running
    partitions: str  # the partition or range of the run, "" when unpartitioned


@dataclass(frozen=True)
class PlatformStatus:
    as_of: dt.datetime  # UTC
    last_finished_session: dt.date
    totals: list[tuple[str, int, int, dt.datetime | None, dt.datetime | None]]
    most_data: list[tuple[str, int, int]]  # symbol, timeframes, bars
    staleness: list[Staleness]
    runs: list[RunOutcome] | None = None  # None: not asked for
    notifications: list[dict[str, Any]] | None = None  # None: none configured
    store_note: str = ""  # why there are no bar figures, when there are none

    @property
    def stale_series(self) -> int:
        return sum(1 for s in self.staleness if s.stale)

    @property
    def failed_runs(self) -> int:
        return sum(1 for r in self.runs or [] if r.status == "FAILURE")


def last_finished_session(now: dt.datetime) -> tuple[dt.date, Any, Any]:
    """(session, open, close) of the last XNYS session closed at `now` (UTC, aware)."""
    import pandas as pd

    from friren_pipelines.core import calendar

    instant = pd.Timestamp(now)
    for session in reversed(calendar.sessions(now.date() - _LOOKBACK, now.date())):
        open_, close = calendar.session_bounds(session)
        if close <= instant:
            return session, open_, close
    raise ValueError(f"no XNYS session closed in the {_LOOKBACK.days} days before {now}")


def staleness(
    rows: Iterable[tuple[str, str, dt.datetime | None]], now: dt.datetime
) -> list[Staleness]:
    """Staleness of each (symbol, timeframe, latest bar start) at `now` (UTC, aware)."""
    import pandas as pd

    from friren_pipelines.core import calendar
    from friren_pipelines.core.bars import Timeframe

    session, open_, close = last_finished_session(now)
    found = []
    for symbol, timeframe, latest in rows:
        minutes = Timeframe.parse(timeframe).minutes
        expected = open_ if minutes is None else close - dt.timedelta(minutes=minutes)
        behind = None
        if latest is not None:
            latest_session = calendar.session_of(pd.Timestamp(latest))
            later = calendar.sessions(latest_session + dt.timedelta(days=1), session)
            behind = len(later)
        found.append(Staleness(symbol, timeframe, latest, expected.to_pydatetime(), behind))
    return found


def bar_figures(conn: Any, now: dt.datetime, most_data: int = MOST_DATA_LIMIT) -> PlatformStatus:
    """Totals, most data and staleness from `sql.symbol_metadata` on a `storage.views`
    connection opened with that table (`connect_views(..., sql_tables=["symbol_metadata"])`)."""
    session, _, _ = last_finished_session(now)
    if not _has_table(conn, METADATA_TABLE):
        return PlatformStatus(now, session, [], [], [], store_note="no bars stored yet")
    totals = conn.execute(
        f"SELECT timeframe, count(*)::BIGINT, sum(total_bars)::BIGINT, min(earliest_bar), "
        f"max(latest_bar) FROM {METADATA_TABLE} GROUP BY 1 ORDER BY 1"
    ).fetchall()
    top = conn.execute(
        f"SELECT symbol, count(*)::BIGINT, sum(total_bars)::BIGINT FROM {METADATA_TABLE} "
        "GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT ?",
        [most_data],
    ).fetchall()
    latest = conn.execute(
        f"SELECT symbol, timeframe, latest_bar FROM {METADATA_TABLE} ORDER BY timeframe, symbol"
    ).fetchall()
    return PlatformStatus(now, session, totals, top, staleness(latest, now))


def collect(
    conn: Any,
    now: dt.datetime,
    instance: Any = None,
    *,
    most_data: int = MOST_DATA_LIMIT,
    runs: int = RUNS_LIMIT,
) -> PlatformStatus:
    """Every answer: bar figures and notifications from `conn` (a `storage.views` connection with
    `SQL_TABLES`), the last `runs` runs from a Dagster `instance` (left out without one)."""
    figures = bar_figures(conn, now, most_data)
    return replace(
        figures,
        runs=None if instance is None else last_runs(instance, runs),
        notifications=open_notifications(conn),
    )


def last_runs(instance: Any, limit: int = RUNS_LIMIT) -> list[RunOutcome]:
    """The `limit` most recent runs of a Dagster instance, newest first."""
    outcomes = []
    for record in instance.get_run_records(limit=limit):
        run = record.dagster_run
        tags = run.tags
        partitions = _partitions(tags)
        started = _utc(record.start_time)
        seconds = (
            record.end_time - record.start_time if record.start_time and record.end_time else None
        )
        outcomes.append(
            RunOutcome(run.run_id, run.job_name, run.status.value, started, seconds, partitions)
        )
    return outcomes


def open_notifications(conn: Any) -> list[dict[str, Any]] | None:
    """Open notifications, or None while no notifications table is declared (none configured).

    Hook: once `storage.tables` declares `notifications` (in SQL), its rows are read here, and
    `friren status` and the asset show them; narrow the query to the open ones then."""
    from friren_pipelines.storage.views import sql_tables

    if NOTIFICATIONS_TABLE not in sql_tables():
        return None
    qualified = f"sql.{NOTIFICATIONS_TABLE}"
    if not _has_table(conn, qualified):
        return []
    cursor = conn.execute(f"SELECT * FROM {qualified}")
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def sections(status: PlatformStatus) -> list[Section]:
    """The answers as tables, in the order `friren status` prints them."""
    note = status.store_note
    found = [
        Section(
            "totals",
            "Bars per timeframe",
            ("timeframe", "symbols", "bars", "earliest_bar", "latest_bar"),
            list(status.totals),
            note,
        ),
        Section(
            "most_data",
            "Symbols with most data",
            ("symbol", "timeframes", "bars"),
            list(status.most_data),
            note,
        ),
        Section(
            "staleness",
            f"Staleness (last finished XNYS session: {status.last_finished_session})",
            ("symbol", "timeframe", "latest_bar", "expected_bar", "sessions_behind", "stale"),
            [
                (s.symbol, s.timeframe, s.latest_bar, s.expected_bar, s.sessions_behind, s.stale)
                for s in status.staleness
            ],
            note,
        ),
    ]
    if status.runs is not None:
        found.append(
            Section(
                "runs",
                "Last runs",
                ("run_id", "job", "status", "started", "seconds", "partitions"),
                [
                    (
                        r.run_id,
                        r.job,
                        r.status,
                        r.started,
                        None if r.seconds is None else round(r.seconds, 1),
                        r.partitions,
                    )
                    for r in status.runs
                ],
                "no runs recorded",
            )
        )
    notifications = status.notifications
    found.append(
        Section(
            "notifications",
            "Open notifications",
            tuple(notifications[0]) if notifications else ("notification",),
            [tuple(n.values()) for n in notifications or []],
            "none configured (no notifications table)" if notifications is None else "none open",
        )
    )
    return found


def render_text(found: Sequence[Section]) -> str:
    """Sections as aligned plain-text tables, one after another."""
    blocks = []
    for section in found:
        lines = [f"== {section.title} =="]
        if not section.rows:
            lines.append(section.note or "none")
        else:
            cells = [list(section.columns)] + [[_text(v) for v in row] for row in section.rows]
            widths = [max(len(row[i]) for row in cells) for i in range(len(section.columns))]
            lines += [
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                for row in cells
            ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def metadata_figures(status: PlatformStatus) -> dict[str, int | float | str]:
    """The numeric figures the monitoring asset records, so the UI plots them over time."""
    figures: dict[str, int | float | str] = {
        "last_finished_session": status.last_finished_session.isoformat(),
        "stale_series": status.stale_series,
        "max_sessions_behind": max(
            (s.sessions_behind for s in status.staleness if s.sessions_behind is not None),
            default=0,
        ),
    }
    for timeframe, symbols, bars, _, _ in status.totals:
        figures[f"bars_{timeframe}"] = int(bars)
        figures[f"symbols_{timeframe}"] = int(symbols)
    if status.runs is not None:
        figures["failed_runs"] = status.failed_runs  # of the last RUNS_LIMIT runs
    return figures


def _partitions(tags: Any) -> str:
    """A run's partition, or its range `first...last` (a single-run backfill), or ""."""
    first = tags.get("dagster/asset_partition_range_start")
    last = tags.get("dagster/asset_partition_range_end")
    if first is None:
        return str(tags.get("dagster/partition", ""))
    return first if first == last else f"{first}...{last}"


def _has_table(conn: Any, qualified: str) -> bool:
    from friren_pipelines.storage.views import object_names

    return qualified in object_names(conn)


def _utc(timestamp: float | None) -> dt.datetime | None:
    return None if timestamp is None else dt.datetime.fromtimestamp(timestamp, dt.UTC)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
    return str(value)
