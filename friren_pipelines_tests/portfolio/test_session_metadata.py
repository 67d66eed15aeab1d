"""Each session partition of `fills` and `portfolio_snapshots` shows its own rows; the run's
totals are run tags; the charts' titles name the account and the period."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pandas as pd

from friren_pipelines.core import calendar
from friren_pipelines.market_data.universe import UNIVERSE, listed_symbols
from friren_pipelines.portfolio import charts, rows
from friren_pipelines.portfolio.defs import materialize_portfolio
from friren_pipelines.portfolio.demo import DemoBroker
from friren_pipelines_tests.portfolio.conftest import definitions

FIRST, LAST = dt.date(2025, 1, 2), dt.date(2025, 1, 31)


def test_each_session_partition_carries_its_own_rows_and_the_run_its_totals(
    friren_env: dict[str, str],
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize_portfolio(instance, definitions(), FIRST, LAST)
    sessions = [day.isoformat() for day in calendar.sessions(FIRST, LAST)]
    expected = DemoBroker(listed_symbols(UNIVERSE)).fills(FIRST, LAST)
    per_session = {
        day: sum(rows.fill_row(f, "demo")["trade_date"].isoformat() == day for f in expected)
        for day in sessions
    }
    for name, own in (("fills", per_session), ("portfolio_snapshots", dict.fromkeys(sessions, 1))):
        records = instance.fetch_materializations(dg.AssetKey(name), limit=1000).records
        events = {
            str(r.partition_key): r.asset_materialization
            for r in records
            if r.asset_materialization is not None
        }
        assert sorted(events) == sessions, name
        for day, materialization in events.items():
            metadata = {key: value.value for key, value in materialization.metadata.items()}
            assert metadata["dagster/row_count"] == own[day], (name, day)
            preview = materialization.metadata["preview"].value
            assert isinstance(preview, dg.TableMetadataValue)
            assert len(preview.records) == min(5, own[day])
            assert "run_rows" not in metadata and "first_session" not in metadata
        run = instance.get_run_by_id(records[0].run_id)
        assert run is not None
        assert run.tags[f"friren/{name}/run_rows"] == str(sum(own.values()))
        assert run.tags[f"friren/{name}/run_partitions"] == str(len(sessions))
        charted = [day for day, m in events.items() if "equity_curve" in m.metadata]
        assert charted == ([sessions[-1]] if name == "portfolio_snapshots" else [])
    assert sum(per_session.values()) == len(expected) > 0


def test_chart_titles_name_the_account_and_the_period() -> None:
    equity = pd.Series(
        [Decimal(100), Decimal(101)], index=[dt.date(2025, 1, 2), dt.date(2025, 1, 3)]
    )
    assert charts.equity_title("demo", equity) == (
        "demo: equity and drawdown, 2025-01-02 to 2025-01-03 (XNYS session closes, USD)"
    )
    lots = [
        {"account": "demo", "close_time": pd.Timestamp("2025-01-10 15:00", tz="UTC")},
        {"account": "csv", "close_time": pd.Timestamp("2025-02-03 15:00", tz="UTC")},
    ]
    assert charts.pnl_title(lots, "fifo") == (
        "csv, demo: realized P&L by symbol, lots closed 2025-01-10 to 2025-02-03 "
        "(fifo, net of fees)"
    )
