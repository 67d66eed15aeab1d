"""What the portfolio domain adds to the Definitions, and how to run it from outside the UI.

Two jobs bring the portfolio up to date: `sync_broker` stores the broker's `fills` and
`portfolio_snapshots` over a range of sessions (one run for the whole range), then
`recompute_ledger` recomputes `positions` (with its blocking reconciliation check),
`position_events`, `realized_lots`, `performance` and `compliance` from every stored fill.
Both are recorded in the Dagster instance.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from friren_pipelines.config import Settings
from friren_pipelines.core import calendar
from friren_pipelines.market_data.backfill import (
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    BackfillError,
    run_failure,
    run_job,
)
from friren_pipelines.market_data.metadata import as_configured
from friren_pipelines.portfolio.assets import (
    BROKER_SYNC_ASSETS,
    LEDGER_ASSETS,
    fills,
    positions_reconciled,
    session_partitions,
)
from friren_pipelines.portfolio.demo import DEMO_INCEPTION

# Selecting an asset selects its checks too.
SYNC_BROKER = dg.define_asset_job(
    "sync_broker",
    selection=dg.AssetSelection.assets(*BROKER_SYNC_ASSETS),
    description="Stores the broker's fills and account snapshots for a range of sessions.",
)
RECOMPUTE_LEDGER = dg.define_asset_job(
    "recompute_ledger",
    selection=dg.AssetSelection.assets(*LEDGER_ASSETS),
    description="Recomputes positions, lots, performance and compliance from every stored fill.",
)


def build_defs(settings: Settings) -> dg.Definitions:
    """The domain's assets, check and jobs for these settings: the dated assets' sessions start
    at `settings.history_start`, and every asset's kinds name the configured SQL store."""
    defs = dg.Definitions(
        assets=[*BROKER_SYNC_ASSETS, *LEDGER_ASSETS],
        asset_checks=[positions_reconciled],
        jobs=[SYNC_BROKER, RECOMPUTE_LEDGER],
    )
    sessions = session_partitions(settings.history_start)
    return as_configured(defs, settings, {asset.key: sessions for asset in BROKER_SYNC_ASSETS})


def first_session(definitions: dg.Definitions) -> dt.date:
    """The first session the loaded Definitions offer to the dated assets (`fills`)."""
    partitions_def = definitions.resolve_assets_def(fills.key).partitions_def
    assert partitions_def is not None
    first = partitions_def.get_first_partition_key()
    assert first is not None
    return dt.date.fromisoformat(first)


def _run(
    instance: dg.DagsterInstance,
    definitions: dg.Definitions,
    job: str,
    what: str,
    tags: dict[str, str] | None = None,
) -> str:
    result = run_job(definitions, job, instance, tags or {})
    if not result.success:
        raise BackfillError(f"{what} run {result.run_id} failed: {run_failure(result)}")
    return result.run_id


def materialize_ledger(instance: dg.DagsterInstance, definitions: dg.Definitions) -> str:
    """Run `recompute_ledger` of the loaded Definitions; returns the run id.

    Raises `BackfillError` naming the failure (a failed reconciliation names the symbols).
    """
    return _run(instance, definitions, RECOMPUTE_LEDGER.name, "portfolio ledger")


def materialize_portfolio(
    instance: dg.DagsterInstance, definitions: dg.Definitions, start: dt.date, end: dt.date
) -> None:
    """Run `sync_broker` of the loaded Definitions for the sessions in [start, end] (one run), then
    `recompute_ledger` (a second run). The demo broker is synced from its inception so that its
    positions reconcile. Raises `BackfillError` at the first failed run."""
    if getattr((definitions.resources or {}).get("broker"), "kind", None) == "demo":
        start = min(start, DEMO_INCEPTION)
    today = calendar.session_of(pd.Timestamp.now(tz="UTC"))
    days = calendar.sessions(max(start, first_session(definitions)), min(end, today))
    if days:
        tags = {
            PARTITION_RANGE_START_TAG: days[0].isoformat(),
            PARTITION_RANGE_END_TAG: days[-1].isoformat(),
            "friren/portfolio": "broker-sync",
        }
        _run(instance, definitions, SYNC_BROKER.name, "portfolio broker sync", tags)
    materialize_ledger(instance, definitions)
