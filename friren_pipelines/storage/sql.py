"""The SQL store: Postgres when FRIREN_POSTGRES_URL is set, an embedded DuckDB file otherwise.

Both speak the same small interface so assets never branch on the backend:
`with store.transaction() as tx:` then `tx.delete_slices(...)`, `tx.insert(table, arrow_rows)`,
`tx.execute(sql, params)`; everything inside commits together or not at all. SQL text is written
once with `%s` placeholders and the DuckDB backend translates them. Bulk loads use COPY on
Postgres and Arrow scans on DuckDB, never row-by-row INSERT. The schema comes from versioned
migrations (`migrations/NNNN_name.sql`), applied once each, in order, under a lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.csv as pa_csv

from friren_pipelines.config import redact
from friren_pipelines.storage import pg_copy

MIGRATIONS_PACKAGE = "friren_pipelines.storage.migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
DEFAULT_TIMEOUT_SECONDS = 300.0  # config's FRIREN_SQL_TIMEOUT_SECONDS
MIGRATION_LOCK_ID = 7_461_002  # pg advisory lock key that serialises concurrent migrators


class StoreUnavailableError(RuntimeError):
    """The SQL store cannot be reached; the message names the server without credentials."""


def redacted(url: str) -> str:
    """`scheme://host:port/db` of a database URL: no user, no password, no query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def scrubbed(text: str, url: str) -> str:
    """`text` with the URL and its password (raw or decoded) replaced by ***."""
    return redact(text, url)


@dataclass(frozen=True)
class Slice:
    """The rows one partition owns: columns equal to values, and optionally a half-open range of a
    time or date column. No columns and no range: the whole table."""

    equals: tuple[tuple[str, Any], ...]
    time_column: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None

    def columns(self) -> tuple[str, ...]:
        names = tuple(name for name, _ in self.equals)
        return (*names, "__start", "__end") if self.time_column else names


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"unsafe SQL identifier {name!r}")
    return name


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration file, in version order."""
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    versions = [version for version, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a version number: {sorted(versions)}")
    return sorted(found)


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


class Transaction(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def insert(self, table: str, rows: pa.Table) -> None: ...
    def delete_slices(self, table: str, slices: Sequence[Slice]) -> None: ...


class SqlStore(Protocol):
    backend: str

    def migrate(self) -> list[int]: ...
    def transaction(self) -> Any: ...
    def exclusive(self, keys: Sequence[int]) -> AbstractContextManager[None]: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table: ...


def _slices_join(table: str, slices: Sequence[Slice]) -> tuple[str, str, list[Any]]:
    """(`VALUES` list of the slices as `s`, the condition joining `table` as `t` to it, params)
    for many slices of one shape; each slice's row starts with its index (`s.__slice`)."""
    shapes = {(s.columns(), s.time_column) for s in slices}
    if len(shapes) != 1:
        raise ValueError("slices of one shape only")
    (columns, time_column) = shapes.pop()
    params: list[Any] = []
    rows = []
    for index, piece in enumerate(slices):
        values = [index, *(value for _, value in piece.equals)]
        if time_column:
            values += [piece.start, piece.end]
        params += values
        rows.append("(" + ", ".join(["%s"] * len(values)) + ")")
    conditions = [f"t.{_identifier(c)} = s.{c}" for c, _ in slices[0].equals]
    if time_column:
        column = _identifier(time_column)
        conditions += [f"t.{column} >= s.__start", f"t.{column} < s.__end"]
    names = ", ".join(["__slice", *columns])
    values_list = f"(VALUES {', '.join(rows)}) AS s({names})"
    return values_list, " AND ".join(conditions), params


def _delete_slices_sql(table: str, slices: Sequence[Slice]) -> tuple[str, list[Any]]:
    """One DELETE for many slices of the same shape, joined against a VALUES list."""
    values_list, joined, params = _slices_join(table, slices)
    sql = (
        f"DELETE FROM {_identifier(table)} AS t WHERE EXISTS (SELECT 1 FROM {values_list}"
        f" WHERE {joined})"
    )
    return sql, params


def count_slices(store: SqlStore, table: str, slices: Sequence[Slice]) -> list[int]:
    """How many rows each slice (of one shape) holds, in order: one query for all of them."""
    if not slices:
        return []
    values_list, joined, params = _slices_join(table, slices)
    found = dict(
        store.query(
            f"SELECT s.__slice, count(t.{_identifier(slices[0].equals[0][0])}) FROM {values_list}"
            f" LEFT JOIN {_identifier(table)} AS t ON {joined} GROUP BY s.__slice",
            params,
        )
    )
    return [int(found.get(index, 0)) for index in range(len(slices))]


def lock_key(name: object) -> int:
    """A stable signed 64-bit key for what a writer locks (a slice, a file)."""
    digest = hashlib.blake2b(repr(name).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _SliceDeletes:
    """The part of a transaction both backends share: deleting partitions' slices."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def delete_slices(self, table: str, slices: Sequence[Slice]) -> None:
        if any(not piece.columns() for piece in slices):
            self.execute(f"DELETE FROM {_identifier(table)}")
        elif slices:
            self.execute(*_delete_slices_sql(table, slices))


class _PostgresTransaction(_SliceDeletes):
    def __init__(self, cursor: Any):
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(sql, list(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql, list(params))
        return list(self._cursor.fetchall())

    def insert(self, table: str, rows: pa.Table) -> None:
        """COPY the Arrow rows: binary when every column has a fixed binary form, else CSV."""
        if rows.num_rows == 0:
            return
        columns = ", ".join(_identifier(name) for name in rows.column_names)
        if pg_copy.encodable(rows):
            statement = f"COPY {_identifier(table)} ({columns}) FROM STDIN (FORMAT BINARY)"
            with self._cursor.copy(statement) as copy:
                copy.write(pg_copy.encode(rows))
            return
        buffer = io.BytesIO()
        pa_csv.write_csv(
            rows, buffer, pa_csv.WriteOptions(include_header=False, quoting_style="needed")
        )
        statement = f"COPY {_identifier(table)} ({columns}) FROM STDIN (FORMAT CSV)"
        with self._cursor.copy(statement) as copy:
            copy.write(buffer.getbuffer())


class PostgresStore:
    """PostgreSQL. Every connection and transaction is bounded by `timeout_seconds`: connecting,
    the server's statement timeout, and a watchdog that cuts a connection that has stalled (a
    server or network that stops answering mid-COPY), so a write fails naming the store instead
    of waiting forever."""

    backend = "postgres"

    def __init__(self, url: str, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        self._url = url.strip().replace("postgresql+psycopg2://", "postgresql://")
        self._timeout = timeout_seconds

    def __repr__(self) -> str:
        return f"PostgresStore({redacted(self._url)})"

    def _failure(self, error: BaseException, doing: str) -> StoreUnavailableError:
        # psycopg quotes the URL in some messages; name the server, never the password.
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return StoreUnavailableError(
            f"PostgreSQL at {redacted(self._url)}: {doing}: {scrubbed(reason, self._url)}"
        )

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(
                self._url,
                connect_timeout=max(1, round(self._timeout)),
                options=f"-c statement_timeout={round(self._timeout * 1000)}",
            )
        except psycopg.Error as error:
            raise self._failure(error, "cannot connect") from None

    @contextmanager
    def _watched(self) -> Iterator[Any]:
        """A connection cut (its socket shut down) if the block outlasts the timeout."""
        import psycopg

        conn = self._connect()
        expired = threading.Event()

        def cut() -> None:
            expired.set()
            with contextlib.suppress(OSError):
                socket.socket(fileno=os.dup(conn.fileno())).shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(self._timeout, cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            with conn:
                yield conn
        except psycopg.Error as error:
            if expired.is_set():
                raise self._failure(
                    error, f"no answer within {self._timeout:g} s (FRIREN_SQL_TIMEOUT_SECONDS)"
                ) from None
            raise
        finally:
            watchdog.cancel()

    @contextmanager
    def transaction(self) -> Iterator[_PostgresTransaction]:
        with self._watched() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.execute("SET LOCAL TIME ZONE 'UTC'")
            yield _PostgresTransaction(cursor)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.transaction() as tx:
            return tx.query(sql, params)

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        with self._watched() as conn, conn.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.execute(sql, list(params))
            names = [column.name for column in cursor.description or []]
            rows = cursor.fetchall()
        return pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in rows])

    def migrate(self) -> list[int]:
        with self.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK_ID])
            return _apply_migrations(tx)

    @contextmanager
    def exclusive(self, keys: Sequence[int]) -> Iterator[None]:
        """Hold session advisory locks on `keys` (taken in sorted order, so two holders never
        deadlock) until the block ends; a killed holder's locks go with its connection."""
        import psycopg

        with self._connect() as conn:
            conn.autocommit = True
            try:
                conn.execute(
                    "SELECT count(pg_advisory_lock(key)) FROM"
                    " (SELECT unnest(CAST(%s AS BIGINT[])) AS key ORDER BY 1) AS keys",
                    [sorted(set(keys))],
                )
            except psycopg.errors.QueryCanceled as error:
                raise self._failure(
                    error,
                    f"another writer of the same partitions held them over {self._timeout:g} s",
                ) from None
            yield


def _apply_migrations(tx: Transaction) -> list[int]:
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    applied = {row[0] for row in tx.query("SELECT version FROM schema_migrations")}
    newly = []
    for version, name, sql in migrations():
        if version in applied:
            continue
        for statement in _statements(sql):
            tx.execute(statement)
        tx.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", [version, name])
        newly.append(version)
    return newly


class _DuckDBTransaction(_SliceDeletes):
    def __init__(self, conn: Any):
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql.replace("%s", "?"), list(params))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql.replace("%s", "?"), list(params)).fetchall())

    def insert(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        columns = ", ".join(_identifier(name) for name in rows.column_names)
        # On failure the connection is rolled back and closed, which drops the registration too;
        # unregistering inside an aborted transaction would hide the real error.
        self._conn.register("__friren_rows", rows)
        self._conn.execute(
            f"INSERT INTO {_identifier(table)} ({columns}) SELECT {columns} FROM __friren_rows"
        )
        self._conn.unregister("__friren_rows")


class DuckDBStore:
    """The embedded store. DuckDB lets one process write a file at a time, so a writer that finds
    the file locked by another run waits (up to `lock_timeout` seconds) instead of failing."""

    backend = "duckdb"

    def __init__(self, path: Any, lock_timeout: float = DEFAULT_TIMEOUT_SECONDS):
        self._path = str(path)
        self._lock_timeout = lock_timeout

    def _connect(self) -> Any:
        import duckdb

        deadline = time.monotonic() + self._lock_timeout
        delay = 0.05
        while True:
            try:
                conn = duckdb.connect(self._path)
                conn.execute("SET TimeZone = 'UTC'")
                return conn
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @contextmanager
    def transaction(self) -> Iterator[_DuckDBTransaction]:
        conn = self._connect()
        try:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield _DuckDBTransaction(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.transaction() as tx:
            return tx.query(sql, params)

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        conn = self._connect()
        try:
            return conn.execute(sql.replace("%s", "?"), list(params)).to_arrow_table()
        finally:
            conn.close()

    def migrate(self) -> list[int]:
        with self.transaction() as tx:
            return _apply_migrations(tx)

    @contextmanager
    def exclusive(self, keys: Sequence[int]) -> Iterator[None]:
        """One writer of this store at a time (a file lock beside it, released by a killed
        holder's exit), whatever the keys: the embedded store has one writer process anyway."""
        deadline = time.monotonic() + self._lock_timeout
        with open(f"{self._path}.write.lock", "a") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreUnavailableError(
                            f"DuckDB file {self._path}: another writer held it over"
                            f" {self._lock_timeout:g} s (FRIREN_SQL_TIMEOUT_SECONDS)"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def open_sql_store(
    postgres_url: str | None,
    embedded_path: Any,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> SqlStore:
    """Postgres when a URL is given, else the embedded DuckDB file (its folder is created); every
    wait on it (connecting, a statement, another writer's lock) is bounded by `timeout_seconds`."""
    if postgres_url:
        return PostgresStore(postgres_url, timeout_seconds)
    from pathlib import Path

    Path(embedded_path).parent.mkdir(parents=True, exist_ok=True)
    return DuckDBStore(embedded_path, lock_timeout=timeout_seconds)
