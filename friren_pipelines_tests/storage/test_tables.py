"""The migrations create exactly the declared tables: columns in order, types, nullability, keys."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from friren_pipelines.core.indicators import INDICATOR_NAMES
from friren_pipelines.storage.sql import SqlStore, migrations, open_sql_store
from friren_pipelines.storage.tables import INDICATOR_ROWS, MONEY, TABLES, Column, Table

START = dt.datetime(2024, 3, 4, 14, 30, tzinfo=dt.UTC)
# The SQL type each declared Arrow type must have, as information_schema names it.
SQL_TYPES = {
    "postgres": {
        pa.string(): "text",
        pa.float64(): "double precision",
        pa.int64(): "bigint",
        pa.bool_(): "boolean",
        pa.date32(): "date",
        pa.timestamp("us", tz="UTC"): "timestamp with time zone",
        MONEY: "numeric(38,18)",
    },
    "duckdb": {
        pa.string(): "VARCHAR",
        pa.float64(): "DOUBLE",
        pa.int64(): "BIGINT",
        pa.bool_(): "BOOLEAN",
        pa.date32(): "DATE",
        pa.timestamp("us", tz="UTC"): "TIMESTAMP WITH TIME ZONE",
        MONEY: "DECIMAL(38,18)",
    },
}


def _described(store: SqlStore, name: str) -> list[tuple[str, str, bool]]:
    found = store.query(
        "SELECT column_name, data_type, numeric_precision, numeric_scale, is_nullable"
        " FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
        [name],
    )
    # Postgres names a numeric's precision apart from its type.
    return [
        (column, f"numeric({precision},{scale})" if kind == "numeric" else kind, nullable == "YES")
        for column, kind, precision, scale, nullable in found
    ]


def _key(store: SqlStore, name: str) -> tuple[str, ...]:
    found = store.query(
        "SELECT k.column_name FROM information_schema.table_constraints c"
        " JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name"
        " AND k.table_name = c.table_name"
        " WHERE c.table_name = %s AND c.constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
        " ORDER BY k.ordinal_position",
        [name],
    )
    return tuple(row[0] for row in found)


def drift(store: SqlStore, table: Table) -> list[str]:
    """How the migrated SQL table differs from its declaration (empty: not at all)."""
    types = SQL_TYPES[store.backend]
    expected = [(c.name, types[c.type], c.nullable) for c in table.columns]
    actual = _described(store, table.name)
    problems = [
        f"{table.name}: declared {want}, migrated {got}"
        for want, got in zip(expected, actual, strict=False)
        if want != got
    ]
    if len(expected) != len(actual):
        problems.append(f"{table.name}: {len(expected)} columns declared, {len(actual)} migrated")
    if _key(store, table.name) != table.key:
        problems.append(
            f"{table.name}: key {table.key} declared, {_key(store, table.name)} migrated"
        )
    return problems


def test_every_migrated_table_is_exactly_its_declaration(store: SqlStore) -> None:
    assert [problem for table in TABLES if table.in_sql for problem in drift(store, table)] == []


def test_the_migrations_create_no_undeclared_table(store: SqlStore) -> None:
    found = {
        row[0]
        for row in store.query(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema IN ('public', 'main') AND table_type = 'BASE TABLE'"
        )
    }
    assert found == {t.name for t in TABLES if t.in_sql} | {"schema_migrations"}


def test_a_declaration_that_drifts_from_its_migration_is_caught(store: SqlStore) -> None:
    fills = next(t for t in TABLES if t.name == "fills")
    retyped = dataclasses.replace(
        fills,
        columns=tuple(
            dataclasses.replace(c, type=pa.float64()) if c.name == "price" else c
            for c in fills.columns
        ),
    )
    extra = dataclasses.replace(
        fills, columns=(*fills.columns, Column("venue", pa.string(), True, "Exchange"))
    )
    rekeyed = dataclasses.replace(fills, key=("exec_id",))
    assert any("price" in p for p in drift(store, retyped))
    assert any("15 columns declared, 14 migrated" in p for p in drift(store, extra))
    assert any("key ('exec_id',)" in p for p in drift(store, rekeyed))


def test_the_long_indicators_view_has_a_row_per_bar_and_indicator(store: SqlStore) -> None:
    """`market_data_indicators` keeps the long layout readers query by name, over the wide rows;
    warm-up values stay NULL."""
    rows = INDICATOR_ROWS.to_arrow(
        [
            {"symbol": "AAPL", "timeframe": "1d", "timestamp": START, "sma_10": 1.5},
            {"symbol": "AAPL", "timeframe": "1d", "timestamp": START + dt.timedelta(days=1)},
        ]
    )
    with store.transaction() as tx:
        tx.insert(INDICATOR_ROWS.name, rows)
    long = store.query(
        "SELECT timestamp, indicator_name, indicator_value FROM market_data_indicators"
        " ORDER BY timestamp, indicator_name"
    )
    assert len(long) == 2 * len(INDICATOR_NAMES)
    assert {name for _, name, _ in long} == set(INDICATOR_NAMES)
    assert [(name, value) for _, name, value in long if value is not None] == [("sma_10", 1.5)]


@pytest.mark.parametrize("backend", ["postgres", "duckdb"])
def test_indicators_stored_long_before_migration_6_are_kept_wide(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    store = open_sql_store(url, tmp_path / "friren.duckdb")
    with store.transaction() as tx:  # the schema as it was at migration 5
        tx.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
        )
        for version, name, sql in migrations():
            if version < 6:
                code = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
                for statement in filter(str.strip, code.split(";")):
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_migrations VALUES (%s, %s)", [version, name])
        tx.execute(
            "INSERT INTO market_data_indicators VALUES ('AAPL', '1d', %s, 'rsi_14', 55.5),"
            " ('AAPL', '1d', %s, 'sma_10', NULL), ('AAPL', '1d', %s, 'bb_lower', 9.25)",
            [START, START, START],
        )
    assert store.migrate() == [6]
    assert store.query(
        "SELECT symbol, rsi_14, sma_10, bb_lower FROM market_data_indicators_wide"
    ) == [("AAPL", 55.5, None, 9.25)]
    assert store.query(
        "SELECT indicator_value FROM market_data_indicators WHERE indicator_name = 'rsi_14'"
    ) == [(55.5,)]
