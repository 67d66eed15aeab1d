"""Reading and writing the portfolio tables, through `storage.write` like every table.

Dated tables are kept per account and year (`fills/account=<a>/year=<yyyy>/`,
`portfolio_snapshots/account=<a>/year=<yyyy>/`): a write computes the new content of every
(account, year) slice it touches and replaces it in Parquet and SQL together. The tables
recomputed as a whole (positions, position_events, realized_lots, performance, compliance,
splits) are one slice each. Re-running a write heals any difference between the two stores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from friren_pipelines.core import compliance
from friren_pipelines.core.bars import BAR_SCHEMA, Timeframe
from friren_pipelines.core.fills import Fill, Split
from friren_pipelines.portfolio import rows as portfolio_rows
from friren_pipelines.storage.sql import Slice
from friren_pipelines.storage.tables import (
    BARS,
    FILLS,
    PORTFOLIO_SNAPSHOTS,
    POSITION_EVENTS,
    SPLITS,
    Table,
)
from friren_pipelines.storage.write import Piece, Stores, read_rows, replace

Row = dict[str, Any]
# The date column that places a row of a dated table in its year, and the order inside a file.
DATED = {
    FILLS.name: ("trade_date", ("timestamp", "sequence")),
    PORTFOLIO_SNAPSHOTS.name: ("session_date", ("session_date",)),
}


def _sorted(found: Iterable[Row], order: Sequence[str]) -> list[Row]:
    return sorted(found, key=lambda row: tuple("" if row[c] is None else row[c] for c in order))


def _replace_years(
    stores: Stores,
    *,
    table: Table,
    account: str,
    years: Iterable[int],
    kept: Sequence[Row],
    new: Sequence[Row],
) -> None:
    """Replace the account's slices of `years`: each becomes its `kept` and `new` rows."""
    date_column, order = DATED[table.name]
    by_year: dict[int, list[Row]] = {year: [] for year in years}
    for row in [*kept, *new]:
        by_year.setdefault(row[date_column].year, []).append(row)
    replace(
        stores,
        [
            Piece(
                table,
                table.to_arrow(_sorted(chosen, order)),
                table.dataset,
                (("account", account), ("year", str(year))),
                Slice(
                    (("account", account),),
                    date_column,
                    dt.date(year, 1, 1),
                    dt.date(year + 1, 1, 1),
                ),
            )
            for year, chosen in sorted(by_year.items())
        ],
    )


def _stored_in_years(stores: Stores, table: Table, account: str, years: Iterable[int]) -> list[Row]:
    """The account's stored rows of a dated table in `years`."""
    chosen = sorted(set(years))
    if not chosen:
        return []
    date_column, _ = DATED[table.name]
    found = read_rows(
        stores.sql,
        table,
        f"account = %s AND {date_column} >= %s AND {date_column} < %s",
        [account, dt.date(chosen[0], 1, 1), dt.date(chosen[-1] + 1, 1, 1)],
    )
    return [row for row in found if row[date_column].year in chosen]


def replace_whole(stores: Stores, table: Table, new: Sequence[Row], order: Sequence[str]) -> int:
    """A table recomputed as a whole: its one slice (every SQL row, its one file) becomes `new`."""
    replace(
        stores, [Piece(table, table.to_arrow(_sorted(new, order)), table.dataset, (), Slice(()))]
    )
    return len(new)


@dataclass(frozen=True)
class FillsWritten:
    added: int  # fills not stored before
    replaced: int  # stored fills deleted by a broker sync before its fills were inserted


def replace_broker_fills(
    stores: Stores,
    *,
    account: str,
    source: str,
    first: dt.date,
    last: dt.date,
    fills: Sequence[Fill],
) -> FillsWritten:
    """A broker sync: the broker's fills of trade dates [first, last] replace the stored ones; a
    stored fill the broker now dates elsewhere (same exec_id) is replaced too, never doubled."""
    new = [portfolio_rows.fill_row(fill, source) for fill in fills]
    ids = {row["exec_id"] for row in new}
    replaced = read_rows(
        stores.sql,
        FILLS,
        "account = %s AND ((trade_date >= %s AND trade_date <= %s)"
        " OR exec_id IN (SELECT unnest(CAST(%s AS TEXT[]))))",
        [account, first, last, sorted(ids)],
    )
    years = {row["trade_date"].year for row in [*replaced, *new]}
    gone = {row["exec_id"] for row in replaced}
    kept = [
        row for row in _stored_in_years(stores, FILLS, account, years) if row["exec_id"] not in gone
    ]
    _replace_years(stores, table=FILLS, account=account, years=years, kept=kept, new=new)
    return FillsWritten(added=len(ids - gone), replaced=len(replaced))


def import_fills(stores: Stores, account: str, fills: Sequence[Fill]) -> int:
    """Add the fills whose exec_id the account does not have yet; returns how many were added.

    Fills already stored (same account and exec_id) are left as stored, so importing a file
    twice adds nothing. New fills are sequenced after everything stored for the account, so
    fills at the same instant keep file order, and later files come after earlier ones.
    Every year the file touches is rewritten, not only the new fills' years: a re-import heals
    a Parquet file that a killed import left behind its SQL rows.
    """
    if not fills:
        return 0
    ids = [fill.exec_id for fill in fills]
    known = {
        row[0]
        for row in stores.sql.query(
            "SELECT exec_id FROM fills WHERE account = %s"
            " AND exec_id IN (SELECT unnest(CAST(%s AS TEXT[])))",
            [account, ids],
        )
    }
    start = stores.sql.query(
        "SELECT coalesce(max(sequence), -1) + 1 FROM fills WHERE account = %s", [account]
    )[0][0]
    new = [
        portfolio_rows.fill_row(fill, "import") | {"sequence": int(start) + fill.sequence}
        for fill in fills
        if fill.exec_id not in known
    ]
    years = {compliance.trade_date(fill.timestamp).year for fill in fills}
    kept = _stored_in_years(stores, FILLS, account, years)
    _replace_years(stores, table=FILLS, account=account, years=years, kept=kept, new=new)
    return len(new)


def import_splits(stores: Stores, splits: Sequence[Split]) -> int:
    """Store splits keyed by (symbol, effective): a re-import replaces, never duplicates."""
    new = [asdict(split) for split in splits]
    keys = {(row["symbol"], row["effective"]) for row in new}
    kept = [r for r in read_rows(stores.sql, SPLITS) if (r["symbol"], r["effective"]) not in keys]
    replace_whole(stores, SPLITS, [*kept, *new], ("symbol", "effective"))
    return len(splits)


def read_splits(stores: Stores) -> list[Split]:
    """Every stored split, for the ledger assets."""
    return [
        Split(row["symbol"], row["effective"], row["numerator"], row["denominator"])
        for row in read_rows(stores.sql, SPLITS)
    ]


def read_fills(stores: Stores) -> list[Fill]:
    """Every stored fill of every account."""
    return [portfolio_rows.fill_from_row(row) for row in read_rows(stores.sql, FILLS)]


def replace_snapshots(
    stores: Stores, account: str, first: dt.date, last: dt.date, new: Sequence[Row]
) -> None:
    """The account's snapshots of sessions [first, last] become `new`."""
    years = range(first.year, last.year + 1)
    kept = [
        row
        for row in _stored_in_years(stores, PORTFOLIO_SNAPSHOTS, account, years)
        if not first <= row["session_date"] <= last
    ]
    _replace_years(
        stores, table=PORTFOLIO_SNAPSHOTS, account=account, years=years, kept=kept, new=new
    )


def append_events(stores: Stores, new: Sequence[Row]) -> int:
    """Append position events to the stored history; returns the events in all."""
    history = [*read_rows(stores.sql, POSITION_EVENTS), *new]
    return replace_whole(stores, POSITION_EVENTS, history, ("account", "synced_at", "symbol"))


def latest_event_state(stores: Stores) -> list[Row]:
    """Per (account, symbol) the position after its latest event, as `positions`-like rows."""
    found = read_rows(stores.sql, POSITION_EVENTS)
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


def daily_closes(stores: Stores, symbols: Iterable[str]) -> Mapping[dt.date, Mapping[str, Any]]:
    """Marks per session: each symbol's last stored daily close on or before it (Decimal).

    Carried forward, so a symbol without a bar on some date (a gap, a halt, a late load) is still
    marked at its previous close instead of leaving the unrealized P&L of that date empty.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as pa_ds

    files = stores.warehouse.files(BARS.dataset_for(Timeframe.DAY1))
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
