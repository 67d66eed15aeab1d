"""The `platform_status` asset records `friren status`'s figures as metadata."""

from __future__ import annotations

import dagster as dg
from click.testing import CliRunner

from friren_pipelines.cli import main
from friren_pipelines.config import load_settings
from friren_pipelines.definitions import build_definitions
from friren_pipelines.monitoring.defs import platform_status
from friren_pipelines.resources import StorageResource


def test_platform_status_materializes_with_the_figures_as_numeric_metadata(
    friren_env: dict[str, str],
) -> None:
    backfill = CliRunner().invoke(
        main, ["backfill", "--symbols", "AAPL", "--start", "2025-03-03", "--end", "2025-03-07"]
    )
    assert backfill.exit_code == 0, backfill.output
    defs = build_definitions(load_settings())
    assert defs.resolve_assets_def("platform_status").group_names_by_key == {
        platform_status.key: "monitoring"
    }
    instance = dg.DagsterInstance.get()
    storage = StorageResource(home=friren_env["FRIREN_HOME"])
    result = dg.materialize([platform_status], instance=instance, resources={"storage": storage})
    assert result.success
    (materialization,) = result.asset_materializations_for_node("platform_status")
    metadata = materialization.metadata
    assert metadata["bars_1d"] == dg.IntMetadataValue(250)
    assert metadata["symbols_1d"] == dg.IntMetadataValue(1)
    assert metadata["stale_series"] == dg.IntMetadataValue(1)
    assert metadata["failed_runs"] == dg.IntMetadataValue(0)
    assert isinstance(metadata["max_sessions_behind"], dg.IntMetadataValue)
    table = metadata["staleness"]
    assert isinstance(table, dg.TableMetadataValue)
    (record,) = table.records
    assert record.data["symbol"] == "AAPL" and record.data["stale"] is True
