"""What the monitoring domain adds to the Definitions: the `platform_status` asset, the figures
of `friren status` recorded as metadata, so the UI plots them over time."""

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg

from friren_pipelines.resources import StorageResource


@dg.asset(
    group_name="monitoring",
    kinds={"duckdb"},
    owners=["team:platform"],
)
def platform_status(
    context: dg.AssetExecutionContext, storage: StorageResource
) -> dg.MaterializeResult:
    """The platform's health at materialization time, as `friren status` prints it: bars and
    symbols per timeframe, stale series (latest bar before the last bar of the last finished XNYS
    session) and how many sessions behind the worst is, failures among the last runs. Numbers
    are metadata (plotted over time); the staleness table is the preview. Read-only: it reads
    `symbol_metadata` from the SQL store and the run history from the instance."""
    from friren_pipelines.monitoring import status as monitoring
    from friren_pipelines.storage.views import connect_views

    conn = connect_views(
        Path(storage.home), postgres_url=storage.postgres_url, sql_tables=monitoring.SQL_TABLES
    )
    try:
        found = monitoring.collect(conn, dt.datetime.now(dt.UTC), context.instance)
    finally:
        conn.close()
    metadata: dict[str, Any] = dict(monitoring.metadata_figures(found))
    for section in monitoring.sections(found):
        if section.name in ("staleness", "totals"):
            metadata[section.name] = _table(section)
    return dg.MaterializeResult(metadata=metadata)


def _table(section: Any) -> dg.TableMetadataValue:
    """A section as a Dagster table: values as text, except integers and flags."""
    kinds = {int: "int", bool: "bool", float: "float"}
    first = section.rows[0] if section.rows else ()
    columns = [
        dg.TableColumn(name, kinds.get(type(value), "string"))
        for name, value in zip(section.columns, first or [None] * len(section.columns), strict=True)
    ]
    records = [
        dg.TableRecord(
            {
                name: value if isinstance(value, int | float | bool) else str(value or "")
                for name, value in zip(section.columns, row, strict=True)
            }
        )
        for row in section.rows
    ]
    return dg.MetadataValue.table(records, schema=dg.TableSchema(columns))


defs = dg.Definitions(assets=[platform_status])
