"""The one write protocol, proven once for every declared table: a killed write leaves both stores
as they were (files whole, SQL rolled back), and writing again heals them to byte-identical files
and the same rows."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from friren_pipelines.storage import warehouse as warehouse_module
from friren_pipelines.storage.sql import Slice, open_sql_store
from friren_pipelines.storage.tables import (
    MONEY,
    STORAGE_JOURNAL,
    SYMBOL_METADATA,
    TABLES,
    Table,
)
from friren_pipelines.storage.warehouse import Warehouse
from friren_pipelines.storage.write import Piece, Refresh, replace
from friren_pipelines_tests.storage.conftest import Stores

PIECES_PER_TABLE = 3
ROWS_PER_PIECE = 4
START = dt.datetime(2024, 3, 4, 14, 30, tzinfo=dt.UTC)
# Every declared table but the journal, which is the write protocol's own.
WRITTEN = [table for table in TABLES if table is not STORAGE_JOURNAL]


def _value(kind: pa.DataType, owner: str, row: int, version: int) -> Any:
    """A value of the column's type; rows differ in every column, versions in every number."""
    if kind == pa.string():
        return f"{owner}-{row}"
    if kind == pa.int64():
        return row + 10 * version
    if kind == pa.float64():
        return row + version / 8
    if kind == MONEY:
        return Decimal(row) + Decimal(version) / 3
    if kind == pa.bool_():
        return row % 2 == 0
    if kind == pa.date32():
        return START.date() + dt.timedelta(days=row)
    return START + dt.timedelta(minutes=row)


def _rows(table: Table, owner: str, version: int) -> pa.Table:
    first_text = next(c.name for c in table.columns if c.type == pa.string())
    return table.to_arrow(
        {
            c.name: owner if c.name == first_text else _value(c.type, owner, row, version)
            for c in table.columns
        }
        for row in range(ROWS_PER_PIECE)
    )


def _pieces(table: Table, version: int) -> list[Piece]:
    """A few slices of the table, each owning the rows whose first text column is its name."""
    first_text = next(c.name for c in table.columns if c.type == pa.string())
    dataset = next(iter(table.datasets), None)
    folders = table.datasets.get(dataset, ()) if dataset else ()
    count = PIECES_PER_TABLE if folders or dataset is None else 1
    pieces = []
    for index in range(count):
        owner = f"P{index}"
        pieces.append(
            Piece(
                table,
                _rows(table, owner, version),
                dataset,
                tuple((folder, f"{owner}{folder}") for folder in folders),
                (Slice(((first_text, owner),)) if folders or dataset is None else Slice(()))
                if table.in_sql
                else None,
            )
        )
    return pieces


def _everything(version: int) -> list[Piece]:
    return [piece for table in WRITTEN for piece in _pieces(table, version)]


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*.parquet"))
    }


def _sql(stores: Stores) -> dict[str, list[str]]:
    """Every SQL row of every table, as text (NULLs and Decimals compare), sorted."""
    return {
        table.name: sorted(map(repr, stores.sql.query(f"SELECT * FROM {table.name}")))
        for table in WRITTEN
        if table.in_sql
    }


def _dies_on_third_call(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    real = getattr(warehouse_module.Warehouse, method)
    calls = {"n": 0}

    def dies(self: Warehouse, *a: Any, **k: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("killed")
        return real(self, *a, **k)

    monkeypatch.setattr(warehouse_module.Warehouse, method, dies)


def test_a_write_killed_before_its_commit_changes_neither_store_and_a_rerun_heals_it(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    replace(stores, _everything(version=1))
    before_files, before_rows = _digests(stores.warehouse.root), _sql(stores)
    assert len(before_files) == sum(len(p) for p in map(_file_pieces, WRITTEN))
    assert all(len(rows) >= ROWS_PER_PIECE for rows in before_rows.values())

    with monkeypatch.context() as patched:
        _dies_on_third_call(patched, "stage")
        with pytest.raises(SystemExit, match="killed"):
            replace(stores, _everything(version=2))
    assert _sql(stores) == before_rows  # one transaction for all tables, rolled back
    assert _digests(stores.warehouse.root) == before_files  # no file replaced either
    assert not list(stores.warehouse.root.rglob(".data.parquet.*"))

    replace(stores, _everything(version=2))
    healed_files, healed_rows = _digests(stores.warehouse.root), _sql(stores)
    assert healed_files.keys() == before_files.keys() and healed_files != before_files
    assert healed_rows != before_rows
    replace(stores, _everything(version=2))  # a re-run changes nothing
    assert _digests(stores.warehouse.root) == healed_files and _sql(stores) == healed_rows


def test_a_write_killed_after_its_commit_is_completed_by_the_next_write(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    replace(stores, _everything(version=2))
    clean_files, clean_rows = _digests(stores.warehouse.root), _sql(stores)
    replace(stores, _everything(version=1))

    with monkeypatch.context() as patched:
        _dies_on_third_call(patched, "publish")
        with pytest.raises(SystemExit, match="killed"):
            replace(stores, _everything(version=2))
    assert _sql(stores) == clean_rows  # committed
    assert _digests(stores.warehouse.root) != clean_files  # two files in place, the rest staged
    assert stores.sql.query("SELECT count(*) FROM storage_journal")[0][0] > 0

    replace(stores, [])  # any later write first puts the committed files in place
    assert _digests(stores.warehouse.root) == clean_files
    assert stores.sql.query("SELECT count(*) FROM storage_journal") == [(0,)]
    assert not list(stores.warehouse.root.rglob(".data.parquet.*"))


def _file_pieces(table: Table) -> list[Piece]:
    """The pieces of a table that have a Parquet file."""
    return [piece for piece in _pieces(table, 1) if piece.dataset is not None]


def test_a_write_replaces_only_its_slices(stores: Stores) -> None:
    fills = next(t for t in TABLES if t.name == "fills")
    replace(stores, _pieces(fills, version=1))
    first = _pieces(fills, version=2)[0]
    replace(stores, [first])
    stored = stores.sql.query("SELECT account, count(*), max(sequence) FROM fills GROUP BY 1")
    assert sorted(stored) == [("P0", 4, 23), ("P1", 4, 13), ("P2", 4, 13)]
    assert len(list((stores.warehouse.root / "fills").rglob("data.parquet"))) == 3


def test_a_refresh_recomputes_a_derived_table_in_the_same_transaction(stores: Stores) -> None:
    replace(stores, _pieces(SYMBOL_METADATA, version=1))
    recount = Refresh(
        SYMBOL_METADATA,
        [Slice((("symbol", "P0"),))],
        "SELECT 'P0', 'all', NULL, NULL, 42, %s",
        [START],
    )
    replace(stores, [], [recount])
    assert stores.sql.query("SELECT symbol, total_bars FROM symbol_metadata ORDER BY 1, 2") == [
        ("P0", 42),
        *[(owner, n) for owner in ("P1", "P2") for n in (10, 11, 12, 13)],
    ]


def test_pieces_refuse_rows_folders_and_slices_their_table_does_not_declare() -> None:
    fills = next(t for t in TABLES if t.name == "fills")
    rows = _rows(fills, "A", 1)
    account = Slice((("account", "A"),))
    folders = (("account", "A"), ("year", "2024"))
    with pytest.raises(ValueError, match="declared schema"):
        Piece(fills, rows.drop_columns(["fee"]), "fills", folders, account)
    with pytest.raises(ValueError, match="declared folders"):
        Piece(fills, rows, "fills", (("year", "2024"),), account)
    with pytest.raises(ValueError, match="needs `where`"):
        Piece(fills, rows, "fills", folders, None)


def test_overlapping_writers_wait_for_each_other_and_both_succeed(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two writers replacing the same slices at once (two backfills of one partition): on
    PostgreSQL each waits for the other's commit instead of failing on the table's key."""
    sql = open_sql_store(postgres_url, tmp_path / "unused.duckdb")
    sql.migrate()
    stores = Stores(Warehouse(tmp_path / "warehouse"), sql)
    bars = next(t for t in TABLES if t.name == "market_data_bars")
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def write(version: int) -> None:
        try:
            start.wait()
            for _ in range(5):
                replace(stores, _pieces(bars, version))
        except BaseException as error:
            failures.append(error)

    writers = [threading.Thread(target=write, args=(version,)) for version in (1, 2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert failures == []
    stored = sql.query(
        "SELECT symbol, count(*), count(DISTINCT open) FROM market_data_bars GROUP BY 1"
    )
    assert sorted(stored) == [(f"P{i}", ROWS_PER_PIECE, ROWS_PER_PIECE) for i in range(3)]


def test_the_next_write_of_a_file_removes_what_a_killed_writer_left_beside_it(
    stores: Stores,
) -> None:
    fills = next(t for t in TABLES if t.name == "fills")
    replace(stores, _pieces(fills, version=1))
    folder = stores.warehouse.path("fills", _pieces(fills, 1)[0].partition).parent
    (folder / ".data.parquet.0123abcd.tmp").write_bytes(b"PAR1 half a file")  # a SIGKILL's
    replace(stores, _pieces(fills, version=2)[:1])
    assert sorted(p.name for p in folder.iterdir()) == ["data.parquet"]
