"""What the portfolio domain adds to the Definitions, and how to run it from outside the UI.

Two runs bring the portfolio up to date: a broker sync of `fills` and `portfolio_snapshots` over
a range of sessions (one run for the whole range), then the ledger assets (`positions` and its
blocking reconciliation check, `position_events`, `realized_lots`, `performance`,
`compliance`), recomputed from every stored fill. Both are recorded in the Dagster instance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import dagster as dg
import pandas as pd
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from friren_pipelines.core import calendar
from friren_pipelines.market_data.backfill import BackfillError, run_failure
from friren_pipelines.portfolio.assets import (
    BROKER_SYNC_ASSETS,
    LEDGER_ASSETS,
    PORTFOLIO_HISTORY_START,
    positions_reconciled,
)
from friren_pipelines.portfolio.demo import DEMO_INCEPTION
from friren_pipelines.portfolio.resources import portfolio_resources

PORTFOLIO_ASSETS: list[dg.AssetsDefinition] = [*BROKER_SYNC_ASSETS, *LEDGER_ASSETS]
PORTFOLIO_CHECKS: list[dg.AssetChecksDefinition] = [positions_reconciled]
PORTFOLIO_JOBS: list[dg.UnresolvedAssetJobDefinition] = []
PORTFOLIO_SCHEDULES: list[dg.ScheduleDefinition] = []
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

__all__ = [
    "PORTFOLIO_ASSETS",
    "PORTFOLIO_CHECKS",
    "PORTFOLIO_JOBS",
    "PORTFOLIO_SCHEDULES",
    "materialize_ledger",
    "materialize_portfolio",
    "portfolio_resources",
]


def _run(
    instance: dg.DagsterInstance,
    resources: Mapping[str, object],
    selection: list[dg.AssetsDefinition],
    what: str,
    tags: Mapping[str, str] | None = None,
) -> str:
    keys = [key for asset in selection for key in asset.keys]
    result = dg.materialize(
        [*PORTFOLIO_ASSETS, *PORTFOLIO_CHECKS],
        selection=keys,
        instance=instance,
        resources=dict(resources),
        tags=dict(tags or {}),
        raise_on_error=False,
        run_config=QUIET,
    )
    if not result.success:
        raise BackfillError(f"{what} run {result.run_id} failed: {run_failure(result)}")
    return result.run_id


def materialize_ledger(instance: dg.DagsterInstance, resources: Mapping[str, object]) -> str:
    """Recompute positions (with the reconciliation check), position events, realized lots,
    performance and compliance from the stored fills; returns the run id.

    Raises `BackfillError` naming the failure (a failed reconciliation names the symbols).
    """
    return _run(instance, resources, LEDGER_ASSETS, "portfolio ledger")


def materialize_portfolio(
    instance: dg.DagsterInstance, resources: Mapping[str, object], start: dt.date, end: dt.date
) -> None:
    """Sync the broker's fills and snapshots for the sessions in [start, end] (one run), then
    recompute the ledger assets (a second run). The demo broker is synced from its inception
    so that its positions reconcile. Raises `BackfillError` at the first failed run."""
    broker = resources.get("broker")
    if getattr(broker, "kind", None) == "demo":
        start = min(start, DEMO_INCEPTION)
    today = calendar.session_of(pd.Timestamp.now(tz="UTC"))
    days = calendar.sessions(max(start, PORTFOLIO_HISTORY_START), min(end, today))
    if days:
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: days[0].isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: days[-1].isoformat(),
            "friren/portfolio": "broker-sync",
        }
        _run(instance, resources, BROKER_SYNC_ASSETS, "portfolio broker sync", tags)
    materialize_ledger(instance, resources)
