"""Storage fixtures: a migrated SQL store of each backend, and the warehouse beside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from friren_pipelines.storage.sql import SqlStore, open_sql_store
from friren_pipelines.storage.warehouse import Warehouse


@pytest.fixture(params=["postgres", "duckdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqlStore:
    """A migrated SQL store: a fresh PostgreSQL database, then an embedded DuckDB file."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    sql = open_sql_store(url, tmp_path / "friren.duckdb")
    sql.migrate()
    return sql


@dataclass
class Stores:
    warehouse: Warehouse
    sql: SqlStore


@pytest.fixture
def stores(store: SqlStore, tmp_path: Path) -> Stores:
    """Both stores a table lives in (`storage.write.Stores`)."""
    return Stores(Warehouse(tmp_path / "warehouse"), store)
