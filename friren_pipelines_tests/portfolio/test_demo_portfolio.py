"""The embedded default: the demo broker fills every portfolio asset offline, reconciled."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner, Result

from friren_pipelines.market_data.universe import UNIVERSE, listed_symbols
from friren_pipelines.portfolio.assets import BROKER_SYNC_ASSETS, LEDGER_ASSETS
from friren_pipelines.portfolio.defs import materialize_portfolio
from friren_pipelines.portfolio.demo import DEMO_INITIAL_CAPITAL, DemoBroker
from friren_pipelines_tests.portfolio.conftest import definitions

FIRST, LAST = dt.date(2025, 1, 2), dt.date(2025, 2, 28)


def _rows(friren: Callable[..., Result], query: str) -> list[dict[str, str]]:
    result = friren("sql", query)
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.output)))


def test_demo_account_materializes_every_portfolio_asset_and_reconciles(
    friren_env: dict[str, str], friren: Callable[..., Result]
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize_portfolio(instance, definitions(), FIRST, LAST)

    for asset in [*BROKER_SYNC_ASSETS, *LEDGER_ASSETS]:
        assert instance.get_latest_materialization_event(asset.key) is not None, asset.key
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("positions"), "positions_reconciled")]
    )
    assert (
        check[dg.AssetCheckKey(dg.AssetKey("positions"), "positions_reconciled")].status.value
        == "SUCCEEDED"
    )

    fills = _rows(friren, "select * from fills order by timestamp, sequence")
    expected = DemoBroker(listed_symbols(UNIVERSE)).fills(FIRST, LAST)
    assert sorted(row["exec_id"] for row in fills) == sorted(fill.exec_id for fill in expected)
    assert len(fills) > 10
    assert {row["settlement_date"] for row in fills if row["trade_date"] == "2025-01-31"} <= {
        "2025-02-03"
    }  # T+1: the Friday's trades settle on Monday

    snapshots = _rows(friren, "select * from portfolio_snapshots order by session_date")
    assert len(snapshots) == 39  # XNYS sessions in Jan–Feb 2025 (Jan 9 closed for Carter)
    last = snapshots[-1]
    assert Decimal(last["equity"]) == Decimal(last["cash"]) + Decimal(
        last["long_market_value"]
    ) + Decimal(last["short_market_value"])
    first_day = snapshots[0]
    assert Decimal(first_day["equity"]) - Decimal(first_day["day_pnl"]) == DEMO_INITIAL_CAPITAL

    (account,) = _rows(friren, "select * from performance where scope = 'account'")
    lots = _rows(friren, "select sum(realized_pnl) as pnl from realized_lots")
    cent = Decimal("0.01")  # each stored value is rounded at 18 places: sums agree to far less
    assert Decimal(account["realized_pnl"]).quantize(cent) == Decimal(lots[0]["pnl"]).quantize(cent)
    assert Decimal(account["equity"]) == Decimal(last["equity"])

    positions = _rows(friren, "select * from positions")
    opened = _rows(friren, "select * from position_events where kind = 'open'")
    assert {row["source"] for row in positions} == {"broker"}
    assert {row["symbol"] for row in opened} == {row["symbol"] for row in positions}

    snapshot_event = instance.get_latest_materialization_event(dg.AssetKey("portfolio_snapshots"))
    assert snapshot_event is not None and snapshot_event.asset_materialization is not None
    assert "equity_curve" in snapshot_event.asset_materialization.metadata


def test_the_demo_refuses_a_history_start_after_its_inception_before_storing_anything(
    friren_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from friren_pipelines.cli import main

    monkeypatch.setenv("FRIREN_HISTORY_START", "2026-06-01")
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 1
    assert "set FRIREN_HISTORY_START=2025-01-02 or earlier" in result.output.splitlines()[-1]
    assert not Path(friren_env["FRIREN_HOME"]).exists()
