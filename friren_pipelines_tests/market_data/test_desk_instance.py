"""The desk's Dagster instance (`deploy/postgres/dagster.yaml`): runs and events in PostgreSQL,
a backfill's per-partition materializations written in one batch."""

from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from friren_pipelines.cli import main

DESK_INSTANCE = Path(__file__).resolve().parents[2] / "deploy" / "postgres"


def test_a_backfill_on_the_desk_instance_records_every_partition(
    friren_env: dict[str, str],
    postgres_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "FRIREN_DAGSTER_POSTGRES_URL",
        postgres_url.replace("postgresql://", "postgresql+psycopg2://"),
    )
    monkeypatch.setenv("DAGSTER_HOME", str(DESK_INSTANCE))
    monkeypatch.chdir(tmp_path)  # the config's relative artifact folders
    backfill = (
        "backfill --symbols AAPL,MSFT,SPY --start 2023-01-01 --end 2024-12-31 --timeframes 1d"
    )
    result = CliRunner().invoke(main, backfill.split(), catch_exceptions=False)
    assert result.exit_code == 0, result.output

    with dg.DagsterInstance.from_config(str(DESK_INSTANCE)) as instance:
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        keys = {f"{s}|{y}" for s in ("AAPL", "MSFT", "SPY") for y in ("2023", "2024")}
        assert instance.get_materialized_partitions(dg.AssetKey("bars_1d")) == keys
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        planned = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ).records
        # One planned event per asset for all six keys, not one per key
        # (DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS).
        by_asset = {}
        for record in planned:
            event = record.event_log_entry.get_dagster_event()
            by_asset[event.asset_key] = event.event_specific_data.partitions_subset  # type: ignore[union-attr]
        assert len(planned) == len(by_asset) == 2
        for subset in by_asset.values():
            assert subset is not None and set(subset.get_partition_keys()) == keys
