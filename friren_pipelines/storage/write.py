"""The one way to write a table: replace slices of it in Parquet and in SQL, together.

A `Piece` is one slice of a declared table (`storage.tables`): the rows of one Parquet file and
the SQL rows that mirror them (`where`). `replace` writes many pieces, of one or several tables:

1. each piece's Parquet file is written to a hidden temporary and renamed over the old one
   (`Warehouse.write`), by a thread pool while the SQL work runs; a piece of a partitioned
   dataset with no rows removes its file;
2. one SQL transaction deletes the pieces' slices (one DELETE per table and slice shape),
   inserts their rows (one bulk COPY per table) and recomputes derived tables (`Refresh`);
3. the transaction commits only after every file is in place.

So a killed or failed write leaves every file whole (old or new) and the SQL rows all old or all
new, and writing the same pieces again heals any difference between the two stores. A re-run
with the same rows writes byte-identical files and the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from friren_pipelines.storage.sql import Slice, SqlStore
from friren_pipelines.storage.tables import Table
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


def _write_file(warehouse: Warehouse, piece: Piece) -> int:
    assert piece.dataset is not None
    if piece.rows.num_rows == 0 and piece.partition:
        warehouse.remove(piece.dataset, piece.partition)
        return 0
    rows = piece.rows
    if piece.file_metadata is not None:
        rows = rows.replace_schema_metadata(dict(piece.file_metadata))
    return warehouse.write(piece.dataset, piece.partition, rows)


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


def replace(stores: Stores, pieces: Sequence[Piece], refresh: Sequence[Refresh] = ()) -> list[int]:
    """Replace the pieces' slices in both stores (see the module docstring); returns the bytes of
    each piece's Parquet file, in order (0 for SQL-only pieces and removed files)."""
    in_sql = bool(refresh) or any(piece.where is not None for piece in pieces)
    with ThreadPoolExecutor(max_workers=PARQUET_WRITERS) as pool:
        files = {
            index: pool.submit(_write_file, stores.warehouse, piece)
            for index, piece in enumerate(pieces)
            if piece.dataset is not None
        }
        with stores.sql.transaction() if in_sql else nullcontext() as tx:
            if tx is not None:
                _replace_rows(tx, pieces, refresh)
            # Commit only once every file is in place: a failed file rolls the SQL back.
            sizes = {index: written.result() for index, written in files.items()}
    return [sizes.get(index, 0) for index in range(len(pieces))]


def read_rows(
    sql: SqlStore, table: Table, where: str = "", params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """SQL rows of `table` (all columns, as dicts) matching the `where` clause."""
    names = table.column_names
    query = f"SELECT {', '.join(names)} FROM {table.name}" + (f" WHERE {where}" if where else "")
    return [dict(zip(names, values, strict=True)) for values in sql.query(query, params)]
