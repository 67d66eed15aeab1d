"""The one way to write a table: replace slices of it in Parquet and in SQL, together.

A `Piece` is one slice of a declared table (`storage.tables`): the rows of one Parquet file and
the SQL rows that mirror them (`where`). `replace` writes many pieces, of one or several tables:

1. each piece's Parquet file is staged: written as a hidden temporary beside its target, by a
   thread pool while the SQL work runs (a piece of a partitioned dataset with no rows stages the
   removal of its file);
2. one SQL transaction deletes the pieces' slices (one DELETE per table and slice shape),
   inserts their rows (one bulk COPY per table), recomputes derived tables (`Refresh`) and, once
   every file is staged, records the staged files in `storage_journal`;
3. after the commit, the staged files are renamed over their targets and the journal emptied.

A write that fails or is killed before its commit changes neither store (its temporaries are
removed, or swept later as stale). One killed after its commit has its SQL rows and its journal:
the next write (or the first use of the SQL store by a run, `publish_journaled`) renames the
staged files into place, so the two stores never disagree for longer than that. A re-run with
the same rows writes byte-identical files and the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from friren_pipelines.storage.sql import Slice, SqlStore, lock_key
from friren_pipelines.storage.tables import STORAGE_JOURNAL, Table
from friren_pipelines.storage.warehouse import Partition, Warehouse

# Parquet encoding and zstd release the GIL: files are written in parallel with the SQL COPY.
PARQUET_WRITERS = 4


class Stores(Protocol):
    """Where tables live: the Parquet warehouse and the SQL store."""

    @property
    def warehouse(self) -> Warehouse: ...

    @property
    def sql(self) -> SqlStore: ...


@dataclass(frozen=True)
class Piece:
    """The new content of one slice of a table.

    `dataset` and `partition` name its Parquet file (None for a table kept in SQL only); `where`
    names the SQL rows it replaces (None for a table kept in Parquet only). `file_metadata` is
    stored in the file's schema (the indicators' history fingerprint).
    """

    table: Table
    rows: pa.Table
    dataset: str | None = None
    partition: Partition = ()
    where: Slice | None = None
    file_metadata: Mapping[bytes, bytes] | None = None

    def __post_init__(self) -> None:
        table = self.table
        if not self.rows.schema.remove_metadata().equals(table.schema):
            raise ValueError(
                f"rows for {table.name} do not have its declared schema:\n{self.rows.schema}"
            )
        if (self.dataset is None) != (not table.datasets):
            raise ValueError(f"a piece of {table.name} needs a dataset of {sorted(table.datasets)}")
        if self.dataset is not None:
            expected = table.datasets.get(self.dataset)
            if expected is None or tuple(k for k, _ in self.partition) != expected:
                raise ValueError(
                    f"{table.name}: partition {self.partition} of dataset {self.dataset} is not"
                    f" one of its declared folders {dict(table.datasets)}"
                )
        if (self.where is None) == table.in_sql:
            raise ValueError(f"a piece of {table.name} needs `where` exactly when it is in SQL")


@dataclass(frozen=True)
class Refresh:
    """A derived SQL table recomputed, in the write's transaction, from what was just written:
    its rows in `where` are deleted and replaced by `select` (which yields its columns in order).
    """

    table: Table
    where: Sequence[Slice]
    select: str
    params: Sequence[Any] = ()


def _replace_rows(tx: Any, pieces: Sequence[Piece], refresh: Sequence[Refresh]) -> None:
    """Inside the transaction: delete the SQL pieces' slices, insert their rows, refresh."""
    by_table: dict[str, list[Piece]] = {}
    for piece in pieces:
        if piece.where is not None:
            by_table.setdefault(piece.table.name, []).append(piece)
    for name, chosen in by_table.items():
        shapes: dict[tuple[str, ...], list[Slice]] = {}
        for piece in chosen:
            assert piece.where is not None
            shapes.setdefault(piece.where.columns(), []).append(piece.where)
        for slices in shapes.values():
            tx.delete_slices(name, slices)
        rows = pa.concat_tables([piece.rows for piece in chosen])
        tx.insert(name, rows.replace_schema_metadata(None))
    for derived in refresh:
        tx.delete_slices(derived.table.name, derived.where)
        columns = ", ".join(derived.table.column_names)
        tx.execute(f"INSERT INTO {derived.table.name} ({columns}) {derived.select}", derived.params)


def _stage(warehouse: Warehouse, piece: Piece) -> tuple[Path, Path | None]:
    """(target file, staged temporary or None for a removal) of a piece's Parquet file."""
    assert piece.dataset is not None
    target = warehouse.path(piece.dataset, piece.partition)
    if piece.rows.num_rows == 0 and piece.partition:
        return target, None
    rows = piece.rows
    if piece.file_metadata is not None:
        rows = rows.replace_schema_metadata(dict(piece.file_metadata))
    return target, warehouse.stage(piece.dataset, piece.partition, rows)


def _publish(warehouse: Warehouse, target: Path, staged: Path | None) -> int:
    if staged is None:
        target.unlink(missing_ok=True)
        return 0
    return warehouse.publish(staged)


def _file_key(target: str) -> int:
    return lock_key(("file", target))


def _slice_key(table: Table, where: Slice) -> int:
    return lock_key((table.name, where.equals, where.time_column, where.start, where.end))


def _forget(stores: Stores, write_id: str) -> None:
    """Empty a write's journal once its files are in place."""
    with stores.sql.transaction() as tx:
        tx.execute(f"DELETE FROM {STORAGE_JOURNAL.name} WHERE write_id = %s", [write_id])


def publish_journaled(stores: Stores) -> int:
    """Put in place the files of writes committed but killed before their files were renamed;
    returns how many were. Idempotent; waits for a writer still publishing the same files."""
    root = stores.warehouse.root
    journal = f"SELECT write_id, target, staged FROM {STORAGE_JOURNAL.name}"
    pending: dict[str, list[str]] = {}
    for write_id, target, _ in stores.sql.query(journal):
        pending.setdefault(write_id, []).append(target)
    done = 0
    for write_id, targets in sorted(pending.items()):
        with stores.sql.exclusive([_file_key(target) for target in targets]):
            rows = stores.sql.query(f"{journal} WHERE write_id = %s", [write_id])
            for _, target, staged in rows:  # none left if its writer finished meanwhile
                if staged is None or (root / staged).exists():  # else put in place already
                    _publish(stores.warehouse, root / target, staged and root / staged)
            _forget(stores, write_id)
            done += len(rows)
    return done


def replace(stores: Stores, pieces: Sequence[Piece], refresh: Sequence[Refresh] = ()) -> list[int]:
    """Replace the pieces' slices in both stores (see the module docstring); returns the bytes of
    each piece's Parquet file, in order (0 for SQL-only pieces and removed files).

    Writers of the same files or slices take turns (`SqlStore.exclusive`, held from before the
    transaction until the files are in place), so the stores end with the last writer's rows."""
    warehouse = stores.warehouse
    publish_journaled(stores)
    keys = [
        _file_key(str(warehouse.path(p.dataset, p.partition).relative_to(warehouse.root)))
        for p in pieces
        if p.dataset is not None
    ]
    keys += [_slice_key(p.table, p.where) for p in pieces if p.where is not None]
    keys += [_slice_key(derived.table, where) for derived in refresh for where in derived.where]
    with stores.sql.exclusive(keys):
        write_id, files = _commit(stores, pieces, refresh)
        sizes = {
            index: _publish(warehouse, target, temp) for index, (target, temp) in files.items()
        }
        if files:
            _forget(stores, write_id)
    return [sizes.get(index, 0) for index in range(len(pieces))]


def _commit(
    stores: Stores, pieces: Sequence[Piece], refresh: Sequence[Refresh]
) -> tuple[str, dict[int, tuple[Path, Path | None]]]:
    """Stage the files while one transaction replaces the SQL rows; journal the staged files and
    commit. Returns the write's id and each piece's (target, staged) file. On any failure before
    the commit, the staged files are removed and nothing has changed."""
    warehouse = stores.warehouse
    write_id = uuid.uuid4().hex
    staging: dict[int, Future[tuple[Path, Path | None]]] = {}
    try:
        with ThreadPoolExecutor(max_workers=PARQUET_WRITERS) as pool:
            staging = {
                index: pool.submit(_stage, warehouse, piece)
                for index, piece in enumerate(pieces)
                if piece.dataset is not None
            }
            with stores.sql.transaction() as tx:
                _replace_rows(tx, pieces, refresh)
                files = {index: staged.result() for index, staged in staging.items()}
                journal = [
                    {
                        "write_id": write_id,
                        "target": str(target.relative_to(warehouse.root)),
                        "staged": None if temp is None else str(temp.relative_to(warehouse.root)),
                    }
                    for target, temp in files.values()
                ]
                tx.insert(STORAGE_JOURNAL.name, STORAGE_JOURNAL.to_arrow(journal))
    except BaseException:
        # Nothing was committed: drop what was staged (the pool has finished every file).
        for staged in staging.values():
            temp = None if staged.exception() else staged.result()[1]
            if temp is not None:
                temp.unlink(missing_ok=True)
        raise
    return write_id, files


def read_rows(
    sql: SqlStore, table: Table, where: str = "", params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """SQL rows of `table` (all columns, as dicts) matching the `where` clause."""
    names = table.column_names
    query = f"SELECT {', '.join(names)} FROM {table.name}" + (f" WHERE {where}" if where else "")
    return [dict(zip(names, values, strict=True)) for values in sql.query(query, params)]
