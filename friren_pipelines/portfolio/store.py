"""Reading and writing the portfolio tables: SQL store first, then the Parquet mirror.

Every write changes the SQL rows in one transaction, then re-exports the affected Parquet files
from SQL, so the two never disagree for long and re-running a write heals any difference.
Parquet layout: `fills/account=<a>/year=<yyyy>/`, `portfolio_snapshots/account=<a>/year=<yyyy>/`;
the tables recomputed as a whole (positions, position_events, realized_lots, performance,
compliance) are one file each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from friren_pipelines.core import compliance
from friren_pipelines.core.fills import Fill, Split
from friren_pipelines.portfolio import rows as portfolio_rows
from friren_pipelines.portfolio.tables import (
    FILLS,
    PORTFOLIO_SNAPSHOTS,
    POSITION_EVENTS,
    SPLITS,
    Table,
)
from friren_pipelines.resources import StorageResource

Row = dict[str, Any]


def select(
    storage: StorageResource, table: Table, where: str = "", params: Sequence[Any] = ()
) -> list[Row]:
    """Rows of `table` (all columns, as dicts) matching the SQL `where` clause."""
    names = [name for name, _, _, _ in table.columns]
    sql = f"SELECT {', '.join(names)} FROM {table.name}" + (f" WHERE {where}" if where else "")
    return [dict(zip(names, values, strict=True)) for values in storage.sql.query(sql, params)]


def _export_by_year(
    storage: StorageResource, table: Table, date_column: str, keys: Iterable[tuple[str, int]]
) -> None:
    """Rewrite the Parquet file of each (account, year) from SQL (remove it when empty)."""
    warehouse = storage.warehouse
    for account, year in sorted(set(keys)):
        found = select(
            storage,
            table,
            f"account = %s AND {date_column} >= %s AND {date_column} <= %s",
            [account, dt.date(year, 1, 1), dt.date(year, 12, 31)],
        )
        partition = (("account", account), ("year", str(year)))
        if not found:
            warehouse.remove(table.name, partition)
            continue
        order = "timestamp" if table is FILLS else date_column
        found.sort(key=lambda row: (row[order], row.get("sequence", 0)))
        warehouse.write(table.name, partition, table.to_arrow(found))


def _export_whole(storage: StorageResource, table: Table, order: Sequence[str]) -> int:
    found = select(storage, table)
    found.sort(key=lambda row: tuple("" if row[c] is None else row[c] for c in order))
    storage.warehouse.write(table.name, (), table.to_arrow(found))
    return len(found)


@dataclass(frozen=True)
class FillsWritten:
    added: int  # fills not stored before
    replaced: int  # stored fills deleted by a broker sync before its fills were inserted


def replace_broker_fills(
    storage: StorageResource,
    *,
    account: str,
    source: str,
    first: dt.date,
    last: dt.date,
    fills: Sequence[Fill],
) -> FillsWritten:
    """A broker sync: the broker's fills of trade dates [first, last] replace the stored ones."""
    new = [portfolio_rows.fill_row(fill, source) for fill in fills]
    ids = [row["exec_id"] for row in new]
    where = "account = %s AND trade_date >= %s AND trade_date <= %s"
    params: list[Any] = [account, first, last]
    if ids:  # a fill the broker now dates elsewhere must not be stored twice
        where = f"account = %s AND (({where.split(' AND ', 1)[1]}) OR exec_id IN (SELECT unnest(CAST(%s AS TEXT[]))))"
        params.append(ids)
    with storage.sql.transaction() as tx:
        before = tx.query(f"SELECT trade_date, exec_id FROM fills WHERE {where}", params)
        tx.execute(f"DELETE FROM fills WHERE {where}", params)
        tx.insert(FILLS.name, FILLS.to_arrow(new))
    old_ids = {exec_id for _, exec_id in before}
    years = {(account, day.year) for day, _ in before} | {
        (account, r["trade_date"].year) for r in new
    }
    _export_by_year(storage, FILLS, "trade_date", years)
    return FillsWritten(added=len(set(ids) - old_ids), replaced=len(before))


def import_fills(storage: StorageResource, account: str, fills: Sequence[Fill]) -> int:
    """Add the fills whose exec_id the account does not have yet; returns how many were added.

    Fills already stored (same account and exec_id) are left as stored, so importing a file
    twice adds nothing. New fills are sequenced after everything stored for the account, so
    fills at the same instant keep file order, and later files come after earlier ones.
    """
    ids = [fill.exec_id for fill in fills]
    if not ids:
        return 0
    with storage.sql.transaction() as tx:
        known = {
            row[0]
            for row in tx.query(
                "SELECT exec_id FROM fills WHERE account = %s AND exec_id IN (SELECT unnest(CAST(%s AS TEXT[])))",
                [account, ids],
            )
        }
        start = tx.query(
            "SELECT coalesce(max(sequence), -1) + 1 FROM fills WHERE account = %s", [account]
        )[0][0]
        new = [
            portfolio_rows.fill_row(fill, "import") | {"sequence": int(start) + fill.sequence}
            for fill in fills
            if fill.exec_id not in known
        ]
        tx.insert(FILLS.name, FILLS.to_arrow(new))
    # Export every year the file touches, not only the new fills' years: a re-import then heals
    # a Parquet export that a killed import left behind its SQL rows.
    years = {(account, compliance.trade_date(fill.timestamp).year) for fill in fills}
    _export_by_year(storage, FILLS, "trade_date", years)
    return len(new)


def import_splits(storage: StorageResource, splits: Sequence[Split]) -> int:
    """Store splits keyed by (symbol, effective): a re-import replaces, never duplicates."""
    with storage.sql.transaction() as tx:
        for split in splits:
            tx.execute(
                "DELETE FROM splits WHERE symbol = %s AND effective = %s",
                [split.symbol, split.effective],
            )
        tx.insert(SPLITS.name, SPLITS.to_arrow(asdict(split) for split in splits))
    _export_whole(storage, SPLITS, ("symbol", "effective"))
    return len(splits)


def read_splits(storage: StorageResource) -> list[Split]:
    """Every stored split, for the ledger assets."""
    return [
        Split(row["symbol"], row["effective"], row["numerator"], row["denominator"])
        for row in select(storage, SPLITS)
    ]


def read_fills(storage: StorageResource) -> list[Fill]:
    """Every stored fill of every account."""
    return [portfolio_rows.fill_from_row(row) for row in select(storage, FILLS)]


def last_synced_trade_date(storage: StorageResource, account: str, source: str) -> dt.date | None:
    """The latest trade date of the fills a broker sync stored for `account` (None: never)."""
    found = storage.sql.query(
        "SELECT max(trade_date) FROM fills WHERE account = %s AND source = %s", [account, source]
    )
    return found[0][0] if found else None


def replace_snapshots(
    storage: StorageResource, account: str, first: dt.date, last: dt.date, new: Sequence[Row]
) -> None:
    """The account's snapshots of sessions [first, last] become `new`."""
    with storage.sql.transaction() as tx:
        tx.execute(
            "DELETE FROM portfolio_snapshots WHERE account = %s AND session_date >= %s"
            " AND session_date <= %s",
            [account, first, last],
        )
        tx.insert(PORTFOLIO_SNAPSHOTS.name, PORTFOLIO_SNAPSHOTS.to_arrow(new))
    years = {(account, year) for year in range(first.year, last.year + 1)}
    _export_by_year(storage, PORTFOLIO_SNAPSHOTS, "session_date", years)


def replace_table(
    storage: StorageResource, table: Table, new: Sequence[Row], order: Sequence[str]
) -> int:
    """A table recomputed as a whole: every SQL row and its one Parquet file replaced."""
    with storage.sql.transaction() as tx:
        tx.execute(f"DELETE FROM {table.name}")
        tx.insert(table.name, table.to_arrow(new))
    return _export_whole(storage, table, order)


def append_events(storage: StorageResource, new: Sequence[Row]) -> int:
    """Append position events; the Parquet file is rewritten with the whole history."""
    with storage.sql.transaction() as tx:
        tx.insert(POSITION_EVENTS.name, POSITION_EVENTS.to_arrow(new))
    return _export_whole(storage, POSITION_EVENTS, ("account", "synced_at", "symbol"))


def latest_event_state(storage: StorageResource) -> list[Row]:
    """Per (account, symbol) the position after its latest event, as `positions`-like rows."""
    found = select(storage, POSITION_EVENTS)
    latest: dict[tuple[str, str], Row] = {}
    for row in sorted(found, key=lambda r: r["synced_at"]):
        latest[(row["account"], row["symbol"])] = row
    return [
        {
            "account": row["account"],
            "symbol": row["symbol"],
            "qty": row["current_qty"],
            "avg_entry_price": row["current_avg_price"] or 0,
        }
        for row in latest.values()
    ]


def daily_closes(
    storage: StorageResource, symbols: Iterable[str]
) -> Mapping[dt.date, Mapping[str, Any]]:
    """Marks per session: each symbol's last stored daily close on or before it (Decimal).

    Carried forward, so a symbol without a bar on some date (a gap, a halt, a late load) is still
    marked at its previous close instead of leaving the unrealized P&L of that date empty.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as pa_ds

    from friren_pipelines.core.bars import BAR_SCHEMA

    files = storage.warehouse.files("bars_1d")
    wanted = sorted(set(symbols))
    if not files or not wanted:
        return {}
    table = pa_ds.dataset([str(f) for f in files], format="parquet", schema=BAR_SCHEMA).to_table(
        columns=["session_date", "symbol", "close"],
        filter=pc.field("symbol").isin(wanted),
    )
    closes: dict[dt.date, dict[str, Decimal]] = {}
    for row in table.to_pylist():
        closes.setdefault(row["session_date"], {})[row["symbol"]] = Decimal(str(row["close"]))
    marks: dict[dt.date, dict[str, Decimal]] = {}
    carried: dict[str, Decimal] = {}
    for session in sorted(closes):
        carried = {**carried, **closes[session]}
        marks[session] = carried
    return marks
