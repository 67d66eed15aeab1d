"""Portfolio assets: fills and snapshots synced from the broker per trading date; positions,
their events, realized lots, performance and compliance recomputed from the whole ledger.

Partitioning. `fills` and `portfolio_snapshots` hold dated data and are partitioned by XNYS
session (`session_partitions`: weekdays minus exchange holidays), so a sync or a backfill touches only its
dates and a range runs as one (`BackfillPolicy.single_run`). The other assets are functions of
ALL stored fills (lots opened years ago close today), so they are unpartitioned and recomputed
whole: matching a ledger of 100,000 fills takes about a second, far less than keeping per-date
state consistent. The broker's account is a column (`account`), not a partition dimension:
fills imported with `friren fills import --account` live beside the broker's.
"""

import datetime as dt
import warnings
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import dagster as dg
import pandas as pd

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import Timeframe
from friren_pipelines.core.lots import position_events, positions_from_fills
from friren_pipelines.core.performance import drawdowns
from friren_pipelines.market_data.metadata import (
    add_partition_metadata,
    column_schema,
    picture,
    preview,
    record_run_totals,
)
from friren_pipelines.portfolio import charts, rows, store
from friren_pipelines.portfolio.brokers import Broker
from friren_pipelines.portfolio.resources import BrokerResource, LedgerResource
from friren_pipelines.resources import StorageResource
from friren_pipelines.storage.tables import (
    BARS,
    COMPLIANCE,
    FILLS,
    PERFORMANCE,
    PORTFOLIO_SNAPSHOTS,
    POSITION_EVENTS,
    POSITIONS,
    REALIZED_LOTS,
    Table,
)
from friren_pipelines.storage.write import read_rows


def session_partitions(
    start: dt.date = calendar.CALENDAR_START,
) -> dg.TimeWindowPartitionsDefinition:
    """One key per XNYS session from the first on or after `start` (default: every session of
    the calendar; the Definitions start at `Settings.history_start`, `defs.build_defs`)."""
    first = calendar.sessions(start, start + dt.timedelta(days=14))[0]
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * 1-5",
        start=first.isoformat(),
        fmt="%Y-%m-%d",
        timezone=calendar.NEW_YORK,
        end_offset=1,  # today's session is a partition while it trades
        exclusions=[
            dt.datetime.combine(day, dt.time())
            for day in calendar.non_session_weekdays(first, calendar.calendar_end())
        ],
    )


SESSIONS = session_partitions()
GROUP = "portfolio"
OWNERS = ["team:trading-desk"]


def _asset_kwargs(table: Table, by_session: bool = False) -> dict[str, Any]:
    """What every portfolio asset declares besides its description (its docstring);
    `by_session`: partitioned by XNYS session, a range of sessions materialized in one run."""
    sessions = {"partitions_def": SESSIONS, "backfill_policy": dg.BackfillPolicy.single_run()}
    return {
        "name": table.name,
        "group_name": GROUP,
        "owners": OWNERS,
        "kinds": {"parquet"},  # + the SQL store's kind, added by `defs.build_defs`
        "metadata": {"dagster/column_schema": column_schema(table.schema, table.descriptions)},
        **(sessions if by_session else {}),
    }


def _synced_sessions(
    context: dg.AssetExecutionContext, broker: BrokerResource
) -> tuple[Broker, dt.date, dt.date]:
    """The broker a sync reads, and the first and last session of the run's partitions."""
    days = sorted(dt.date.fromisoformat(key) for key in context.partition_keys)
    return broker.open(), days[0], days[-1]


def _table_metadata(table: Table, found: Sequence[dict[str, Any]]) -> dict[str, Any]:
    frame = table.to_arrow(found).to_pandas() if found else pd.DataFrame()
    return {"dagster/row_count": len(found), "preview": preview(frame)}


def _sessions_metadata(
    context: dg.AssetExecutionContext, table: Table, found: Sequence[dict[str, Any]], column: str
) -> dict[str, dict[str, Any]]:
    """Each session partition's own row count and preview (its rows: `column` is that session),
    for `add_partition_metadata`; a session without rows shows 0 rows."""
    by_session: dict[str, list[dict[str, Any]]] = {key: [] for key in context.partition_keys}
    for row in found:
        key = row[column].isoformat()
        if key in by_session:
            by_session[key].append(row)
    return {key: _table_metadata(table, own) for key, own in by_session.items()}


with warnings.catch_warnings():
    # Dagster 1.13 marks `backfill_policy` beta; single-run backfills are what we want.
    warnings.simplefilter("ignore", dg.BetaWarning)

    @dg.asset(**_asset_kwargs(FILLS, by_session=True))
    def fills(
        context: dg.AssetExecutionContext, storage: StorageResource, broker: BrokerResource
    ) -> dg.MaterializeResult:
        """Every execution of the account: order id, execution id, strategy, fees, trade and
        settlement dates. A partition is one XNYS session; its sync replaces that date's broker
        fills. Fills imported by `friren fills import` are added by exec_id (re-importing adds
        nothing)."""
        source, first, last = _synced_sessions(context, broker)
        found = source.fills(first, last)
        written = store.replace_broker_fills(
            storage, account=source.account, source=source.kind, first=first, last=last, fills=found
        )
        context.log.info(f"{len(found)} {source.kind} fills for {first}..{last}")
        shown = [rows.fill_row(fill, source.kind) for fill in found]
        add_partition_metadata(context, _sessions_metadata(context, FILLS, shown, "trade_date"))
        record_run_totals(
            context,
            {
                "run_rows": len(shown),
                "run_partitions": len(context.partition_keys),
                "new_fills": written.added,
                "first_session": first.isoformat(),
                "last_session": last.isoformat(),
            },
        )
        # True of every partition of the run: shown on each.
        return dg.MaterializeResult(metadata={"broker": source.kind, "account": source.account})

    @dg.asset(**_asset_kwargs(PORTFOLIO_SNAPSHOTS, by_session=True))
    def portfolio_snapshots(
        context: dg.AssetExecutionContext, storage: StorageResource, broker: BrokerResource
    ) -> dg.MaterializeResult:
        """Session-close equity, cash, buying power, long and short market value and day P&L.
        History from the broker (Alpaca: portfolio-history endpoint), today's session from the
        live account."""
        source, first, last = _synced_sessions(context, broker)
        values = source.account_values(first, last)
        now = dt.datetime.now(dt.UTC)
        new = rows.snapshot_rows(source.account, values, now)
        store.replace_snapshots(storage, source.account, first, last, new)
        stored = read_rows(storage.sql, PORTFOLIO_SNAPSHOTS, "account = %s", [source.account])
        own = _sessions_metadata(context, PORTFOLIO_SNAPSHOTS, new, "session_date")
        # The account as of the run's last session: the live account's cache (today's row) and
        # the equity curve of every stored session up to it, on that partition only.
        latest = own[max(context.partition_keys)]
        if broker.live_account is not None:
            statistics = broker.live_account.statistics().as_metadata()
            latest.update({f"live_account/{name}": value for name, value in statistics.items()})
        equity, initial = rows.equity_series(stored)
        if initial is not None and initial > 0:
            title = charts.equity_title(source.account, equity)
            png = charts.equity_curve_png(equity, drawdowns(equity, initial), title)
            latest["equity_curve"] = picture(png, title)
        add_partition_metadata(context, own)
        record_run_totals(
            context,
            {
                "run_rows": len(new),
                "run_partitions": len(context.partition_keys),
                "first_session": first.isoformat(),
                "last_session": last.isoformat(),
            },
        )
        # True of every partition of the run: shown on each.
        return dg.MaterializeResult(metadata={"account": source.account})


def _broker_accounts(storage: StorageResource, kind: str) -> dict[str, dt.date]:
    """Accounts a sync of this broker kind stored fills for, with their last synced trade date."""
    found = storage.sql.query(
        "SELECT account, max(trade_date) FROM fills WHERE source = %s GROUP BY account", [kind]
    )
    return dict(found)


@dg.asset(
    **_asset_kwargs(POSITIONS),
    deps=[fills],
)
def positions(
    context: dg.AssetExecutionContext, storage: StorageResource, broker: BrokerResource
) -> dg.MaterializeResult:
    """Net position per account and symbol: the broker's positions for the account it syncs (source
    broker), rebuilt from the fills for imported accounts (source ledger). The blocking check
    `positions_reconciled` compares the broker's with the ledger's."""
    now = dt.datetime.now(dt.UTC)
    ledger = rows.by_account(store.read_fills(storage))
    new: list[dict[str, Any]] = []
    synced = _broker_accounts(storage, broker.kind)
    for account, account_fills in ledger.items():
        held = broker.open().positions(synced[account]) if account in synced else None
        if held is None:
            rebuilt = positions_from_fills(account_fills, store.read_splits(storage))
            new += rows.position_rows(account, rebuilt, "ledger", now)
        else:
            new += rows.position_rows(account, held, "broker", now)
    count = store.replace_whole(storage, POSITIONS, new, ("account", "symbol"))
    context.log.info(f"{count} positions in {len(ledger)} accounts")
    return dg.MaterializeResult(metadata=_table_metadata(POSITIONS, new))


@dg.asset_check(
    asset=positions,
    name="positions_reconciled",
    blocking=True,
    description=(
        "Positions rebuilt from the fills ledger equal the broker's (signed quantity per "
        "symbol). A mismatch names each symbol with both quantities. Blocking: events are not "
        "recorded from positions the ledger cannot explain."
    ),
)
def positions_reconciled(storage: StorageResource) -> dg.AssetCheckResult:
    stored = read_rows(storage.sql, POSITIONS, "source = %s", ["broker"])
    at_broker = rows.positions_from_rows(stored)
    accounts = sorted({row["account"] for row in stored} | set(at_broker))
    ledger = rows.by_account(store.read_fills(storage))
    splits = store.read_splits(storage)
    problems = []
    for account in accounts:
        rebuilt = positions_from_fills(ledger.get(account, []), splits)
        problems += [
            f"{account} {problem}"
            for problem in rows.reconciliation_mismatches(rebuilt, at_broker.get(account, {}))
        ]
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) or f"ledger matches the broker ({len(stored)} positions)",
        metadata={"accounts_checked": len(accounts), "mismatched_symbols": len(problems)},
    )


@dg.asset(
    **_asset_kwargs(POSITION_EVENTS),
    deps=[positions],
)
def position_events_asset(
    context: dg.AssetExecutionContext, storage: StorageResource
) -> dg.MaterializeResult:
    """Append-only lifecycle of each position: open, increase, decrease, close and flip, from
    comparing each positions sync with the state after the previous events."""
    previous = rows.positions_from_rows(store.latest_event_state(storage))
    stored = read_rows(storage.sql, POSITIONS)
    current = rows.positions_from_rows(stored)
    synced_at = max((row["synced_at"] for row in stored), default=dt.datetime.now(dt.UTC))
    new = []
    for account in sorted(set(previous) | set(current)):
        events = position_events(previous.get(account, {}), current.get(account, {}))
        new += rows.event_rows(account, events, synced_at)
    total = store.append_events(storage, new)
    context.log.info(f"{len(new)} new position events ({total} in all)")
    return dg.MaterializeResult(
        metadata={**_table_metadata(POSITION_EVENTS, new), "events_in_all": total}
    )


@dg.asset(
    **_asset_kwargs(REALIZED_LOTS),
    deps=[fills],
)
def realized_lots(
    context: dg.AssetExecutionContext, storage: StorageResource, ledger: LedgerResource
) -> dg.MaterializeResult:
    """Closed lots with realized P&L net of fees, from ALL stored fills: FIFO by default, average
    cost with FRIREN_LOT_METHOD=average. Books per account, symbol and strategy; partial fills
    give partial lots; a fill past flat flips. Replaced whole on each run."""
    new = rows.realized_lot_rows(
        store.read_fills(storage), ledger.method, store.read_splits(storage)
    )
    store.replace_whole(
        storage, REALIZED_LOTS, new, ("account", "close_time", "symbol", "open_time")
    )
    pnl: dict[str, Decimal] = {}
    for lot in new:
        pnl[str(lot["symbol"])] = pnl.get(str(lot["symbol"]), Decimal(0)) + Decimal(
            str(lot["realized_pnl"])
        )
    metadata = {
        **_table_metadata(REALIZED_LOTS, new),
        "lot_method": ledger.method,
        "realized_pnl_usd": float(sum(pnl.values(), Decimal(0))),
    }
    if pnl:
        title = charts.pnl_title(new, ledger.method)
        png = charts.pnl_by_symbol_png(pnl, title)
        metadata["pnl_by_symbol"] = picture(png, title)
    context.log.info(f"{len(new)} closed lots")
    return dg.MaterializeResult(metadata=metadata)


HEADLINE_METRICS = ("total_return", "sharpe", "sortino", "max_drawdown", "win_rate", "realized_pnl")


def headline_metadata(found: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The headline figures of each account (`demo/sharpe`) and strategy (`demo/sma_cross/sharpe`)
    as numbers, so the UI plots them over materializations: fractions to 4 places, P&L (USD) to
    the cent. Undefined ratios (empty) are left out rather than shown as 0."""
    metrics: dict[str, float] = {}
    for row in found:
        if row["scope"] == "account":
            prefix = str(row["account"])
        elif row["scope"] == "strategy":
            prefix = f"{row['account']}/{row['key']}"
        else:
            continue
        for name in HEADLINE_METRICS:
            value = row.get(name)
            if value is not None:
                metrics[f"{prefix}/{name}"] = round(
                    float(value), 2 if name == "realized_pnl" else 4
                )
    return metrics


# Open positions are marked at the daily closes (`store.daily_closes`): every stored year of
# every symbol, so all of bars_1d's partitions. Only lineage: `recompute_ledger` neither
# selects nor waits for the bars, it prices with what is stored.
DAILY_BARS = dg.AssetKey(BARS.dataset_for(Timeframe.DAY1))


@dg.asset(
    **_asset_kwargs(PERFORMANCE),
    deps=[
        realized_lots,
        portfolio_snapshots,
        dg.AssetDep(DAILY_BARS, partition_mapping=dg.AllPartitionMapping()),
    ],
)
def performance(
    context: dg.AssetExecutionContext, storage: StorageResource, ledger: LedgerResource
) -> dg.MaterializeResult:
    """Per account: the whole account, each day, each symbol and each strategy: realized and
    unrealized P&L, total return, Sharpe and Sortino (daily returns, ddof 1, √252, risk-free
    FRIREN_RISK_FREE_RATE compounded per session), max drawdown from a running peak starting at
    initial capital, Calmar, win rate, profit factor, average win/loss. Definitions:
    friren_pipelines/core/performance.py."""
    accounts = rows.by_account(store.read_fills(storage))
    symbols = {fill.symbol for account_fills in accounts.values() for fill in account_fills}
    marks = store.daily_closes(storage, symbols)
    splits = store.read_splits(storage)
    new = []
    for account, account_fills in accounts.items():
        snapshots = read_rows(storage.sql, PORTFOLIO_SNAPSHOTS, "account = %s", [account])
        new += rows.performance_table_rows(
            account,
            fills=account_fills,
            method=ledger.method,
            snapshots=snapshots,
            marks=marks,
            annual_risk_free=ledger.annual_risk_free_rate,
            splits=splits,
        )
    store.replace_whole(storage, PERFORMANCE, new, ("account", "scope", "key"))
    context.log.info(f"{len(new)} performance rows")
    return dg.MaterializeResult(
        metadata={**_table_metadata(PERFORMANCE, new), **headline_metadata(new)}
    )


@dg.asset(
    **_asset_kwargs(COMPLIANCE),
    deps=[fills],
)
def compliance(context: dg.AssetExecutionContext, storage: StorageResource) -> dg.MaterializeResult:
    """Per account: trades, fills and day trades per trade date and per ISO week; on day rows the
    pattern-day-trader test over the last 5 sessions under the rule set in force that date.
    Settlement dates are on each fill (`fills.settlement_date`)."""
    new = []
    splits = store.read_splits(storage)
    for account, account_fills in rows.by_account(store.read_fills(storage)).items():
        new += rows.compliance_rows(account, account_fills, splits)
    store.replace_whole(storage, COMPLIANCE, new, ("account", "start", "period"))
    context.log.info(f"{len(new)} compliance rows")
    return dg.MaterializeResult(metadata=_table_metadata(COMPLIANCE, new))


BROKER_SYNC_ASSETS = [fills, portfolio_snapshots]
LEDGER_ASSETS = [positions, position_events_asset, realized_lots, performance, compliance]
