"""The read-only DuckDB connection of `friren sql` and `friren status`: the warehouse's Parquet
datasets and the SQL store's tables, side by side.

Names:
- Each Parquet dataset is a view of its name in the default schema (`bars_1d`, `fills`, ...).
- Each SQL table (`storage.tables.TABLES` with `in_sql`) is `sql.<name>` (`sql.symbol_metadata`,
  `sql.market_data_bars`, `sql.fills`, ...). The unqualified name finds it too when no dataset
  has that name: `symbol_metadata` is `sql.symbol_metadata`, but `fills` is the Parquet dataset
  (the portfolio tables exist in both stores with the same rows; `sql.fills` is the SQL copy).

The SQL store is opened only for a query that names one of its tables, so queries over Parquet
never wait for it:
- embedded (`<home>/friren.duckdb`): attached READ_ONLY as the database `sql`. A run writing the
  file holds its lock for the length of one transaction; we retry for `lock_wait` seconds, then
  stop with a one-line error naming the file.
- PostgreSQL: DuckDB's postgres extension cannot be installed here (extensions are downloaded,
  and the PyPI builds target DuckDB 1.4, not 2.0), so each named table is read in a read-only
  transaction (COPY ... TO STDOUT as CSV, parsed by Arrow with the declared schema) and
  registered as the view `sql.<name>`.

Only SELECT and EXPLAIN statements are accepted (`read_only_statements`): nothing is ever written.
Files outside the warehouse cannot be read (DuckDB's external access is off but for the
warehouse folder) and the connection's configuration is locked, so a query cannot undo either.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from friren_pipelines.storage.warehouse import Warehouse

SQL_SCHEMA = "sql"
EMBEDDED_FILE = "friren.duckdb"
DEFAULT_LOCK_WAIT = 10.0  # seconds: a bars write holds the embedded file for well under that


class QueryError(ValueError):
    """A query `friren sql` refuses or cannot run; the message is one line."""


class SqlStoreBusyError(QueryError):
    """The embedded SQL store stayed locked by a writer; the message names the file."""


def sql_tables() -> dict[str, Any]:
    """The SQL store's tables by name, from their one declaration (`storage.tables.TABLES`)."""
    from friren_pipelines.storage.tables import TABLES

    return {table.name: table for table in TABLES if table.in_sql}


def named_sql_tables(query: str, parquet_views: Iterable[str]) -> list[str]:
    """The SQL tables `query` refers to: `sql.<name>` always; a bare `<name>` unless a Parquet
    view already has that name. Over-matching (a word in a string literal) only reads a table
    that is not used."""
    views = set(parquet_views)
    text = query.lower()
    named = []
    for name in sql_tables():
        qualified = re.search(rf'\b{SQL_SCHEMA}"?\s*\.\s*"?{name}\b', text)
        bare = re.search(rf"(?<![\w.]){name}\b", text)
        if qualified or (bare and name not in views):
            named.append(name)
    return named


def read_only_statements(conn: Any, query: str) -> None:
    """Raise QueryError unless every statement of `query` only reads (SELECT, EXPLAIN)."""
    import duckdb

    allowed = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
    for statement in conn.extract_statements(query):
        if statement.type not in allowed:
            kind = str(statement.type).rsplit(".", 1)[-1]
            raise QueryError(f"only SELECT and EXPLAIN are allowed here, not {kind}")


def execute_read_only(
    home: Path,
    query: str,
    *,
    postgres_url: str | None = None,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> Any:
    """Run `query` (SELECT or EXPLAIN only) over the Parquet views and, when it names something
    they lack, over the SQL tables it names too; returns the DuckDB cursor.

    The query is bound on the Parquet views first: a query over Parquet never opens (or waits
    for) the SQL store, nor pays for importing the table declarations."""
    import duckdb

    conn = connect_views(home)
    try:
        read_only_statements(conn, query)
        try:
            return conn.execute(query)
        except duckdb.CatalogException:
            wanted = named_sql_tables(query, object_names(conn))
            if not wanted:
                raise
        open_sql_tables(conn, home, wanted, postgres_url=postgres_url, lock_wait=lock_wait)
        return conn.execute(query)
    except duckdb.Error as error:
        message = str(error).splitlines()[0]
        if "does not exist" in message:
            names = object_names(conn)
            if not any(name.startswith(f"{SQL_SCHEMA}.") for name in names):
                names += [f"{SQL_SCHEMA}.{name}" for name in sql_tables()]
            message += f" (tables: {', '.join(names)}; a dataset appears once materialized)"
        raise QueryError(message) from None


def connect_views(
    home: Path,
    *,
    postgres_url: str | None = None,
    sql_tables: Iterable[str] = (),
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> Any:
    """An in-memory DuckDB connection (UTC) with a view for every dataset in the warehouse, and
    the SQL store's `sql_tables` under `sql` (see `open_sql_tables`)."""
    import duckdb

    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    _create_parquet_views(conn, Warehouse(home))
    _confine(conn, Path(home))
    wanted = list(sql_tables)
    if wanted:
        open_sql_tables(conn, home, wanted, postgres_url=postgres_url, lock_wait=lock_wait)
    return conn


def open_sql_tables(
    conn: Any,
    home: Path,
    names: list[str],
    *,
    postgres_url: str | None = None,
    lock_wait: float = DEFAULT_LOCK_WAIT,
) -> None:
    """Make the SQL store's tables `names` readable on `conn` as `sql.<name>` (and by their bare
    name where no Parquet view has it). The embedded store is attached whole; from PostgreSQL
    only `names` are read. Tables the store does not have yet stay unknown."""
    if postgres_url:
        _register_postgres_tables(conn, postgres_url, names)
    else:
        _attach_embedded(conn, Path(home) / EMBEDDED_FILE, lock_wait)


def object_names(conn: Any) -> list[str]:
    """What a query can name on `conn`: the Parquet views and the `sql.` tables."""
    rows = conn.execute(
        "SELECT CASE WHEN database_name = 'memory' AND schema_name = 'main' THEN table_name "
        "ELSE 'sql.' || table_name END FROM duckdb_tables() WHERE NOT internal "
        "UNION SELECT CASE WHEN schema_name = 'main' THEN view_name ELSE 'sql.' || view_name "
        "END FROM duckdb_views() WHERE NOT internal AND NOT view_name LIKE '\\_\\_%' ESCAPE '\\'"
    ).fetchall()
    return sorted(row[0] for row in rows)


def _create_parquet_views(conn: Any, warehouse: Warehouse) -> list[str]:
    names = []
    if warehouse.root.is_dir():
        for folder in sorted(p for p in warehouse.root.iterdir() if p.is_dir()):
            if folder.name.startswith(".") or not warehouse.files(folder.name):
                continue
            pattern = warehouse.glob(folder.name).replace("'", "''")
            conn.execute(
                f"CREATE VIEW \"{folder.name}\" AS SELECT * FROM read_parquet('{pattern}', "
                "union_by_name = true, hive_partitioning = false)"
            )
            names.append(folder.name)
    return names


def _confine(conn: Any, home: Path) -> None:
    """Only the warehouse's files are readable from here on (no other file, no extension
    download), and no query can change that: the configuration is locked."""
    allowed = f"{home.resolve()}/".replace("'", "''")
    conn.execute(f"SET allowed_directories = ['{allowed}']")
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")


def _attach_embedded(conn: Any, path: Path, lock_wait: float) -> None:
    """Attach the embedded store READ_ONLY as `sql`, waiting up to `lock_wait` s for a writer."""
    import duckdb

    if not path.exists():
        return  # nothing stored in SQL yet: the names stay unknown, and the error says so
    quoted = str(path).replace("'", "''")
    deadline, delay = time.monotonic() + lock_wait, 0.05
    while True:
        try:
            conn.execute(f"ATTACH '{quoted}' AS {SQL_SCHEMA} (READ_ONLY)")
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() > deadline:
                raise SqlStoreBusyError(
                    f"the embedded SQL store {path} is locked by a writer (a run in progress?) "
                    f"for more than {lock_wait:g} s; try again when it finishes, or query the "
                    "Parquet views"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    conn.execute(f"SET search_path = 'memory.main,{SQL_SCHEMA}.main'")


def _register_postgres_tables(conn: Any, url: str, names: list[str]) -> None:
    """Read each named table through psycopg (read-only) into Arrow; register it as `sql.<name>`."""
    import psycopg
    import pyarrow.csv as pa_csv

    from friren_pipelines.storage.sql import redacted, scrubbed

    tables = sql_tables()
    url = url.strip().replace("postgresql+psycopg2://", "postgresql://")
    try:
        pg = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise QueryError(
            f"cannot connect to PostgreSQL at {redacted(url)}: {scrubbed(reason, url)}"
        ) from None
    conn.execute(f"CREATE SCHEMA {SQL_SCHEMA}")
    with pg:
        pg.read_only = True
        with pg.transaction(), pg.cursor() as cursor:
            cursor.execute("SET LOCAL TIME ZONE 'UTC'")
            cursor.execute("SET LOCAL DateStyle = 'ISO'")
            cursor.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
                [names],
            )
            present = {row[0] for row in cursor.fetchall()}
            for name in names:
                if name not in present:
                    continue  # not migrated yet: the name stays unknown
                schema = tables[name].schema
                buffer = io.BytesIO()
                columns = ", ".join(f'"{column}"' for column in schema.names)
                with cursor.copy(
                    f'COPY (SELECT {columns} FROM "{name}") TO STDOUT (FORMAT CSV)'
                ) as copy:
                    for chunk in copy:
                        buffer.write(chunk)
                if buffer.tell() == 0:  # no rows: Arrow refuses an empty CSV
                    rows = schema.empty_table()
                else:
                    buffer.seek(0)
                    rows = pa_csv.read_csv(
                        buffer,
                        read_options=pa_csv.ReadOptions(column_names=schema.names),
                        convert_options=pa_csv.ConvertOptions(
                            column_types=schema,
                            strings_can_be_null=True,  # unquoted empty = NULL; "" = empty text
                            quoted_strings_can_be_null=False,
                            true_values=["t"],
                            false_values=["f"],
                        ),
                    )
                conn.register(f"__pg_{name}", rows)
                conn.execute(f'CREATE VIEW {SQL_SCHEMA}."{name}" AS SELECT * FROM "__pg_{name}"')
    conn.execute(f"SET search_path = 'memory.main,memory.{SQL_SCHEMA}'")
