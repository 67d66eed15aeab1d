"""DuckDB views over the warehouse: one view per dataset, named after it (`bars_1d`, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from friren_pipelines.storage.warehouse import Warehouse


def connect_views(home: Path) -> Any:
    """An in-memory DuckDB connection (UTC) with a view for every dataset in the warehouse."""
    import duckdb

    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    warehouse = Warehouse(home)
    if warehouse.root.is_dir():
        for folder in sorted(p for p in warehouse.root.iterdir() if p.is_dir()):
            if folder.name.startswith(".") or not warehouse.files(folder.name):
                continue
            pattern = warehouse.glob(folder.name).replace("'", "''")
            conn.execute(
                f"CREATE VIEW \"{folder.name}\" AS SELECT * FROM read_parquet('{pattern}', "
                "union_by_name = true, hive_partitioning = false)"
            )
    return conn
