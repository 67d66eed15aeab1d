"""The Definitions as the settings deploy them: kinds name the configured SQL store, partitions
start at FRIREN_HISTORY_START, older backfills are refused in one line, and the portfolio's
lineage reaches the daily bars it is priced from."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from friren_pipelines.cli import main
from friren_pipelines.config import load_settings
from friren_pipelines.definitions import build_definitions

DOMAINS = ("market_data", "portfolio")


def _graph(env: dict[str, str]) -> dg.AssetGraph:
    return build_definitions(load_settings(env)).resolve_asset_graph()


def _first_keys(graph: dg.AssetGraph, name: str) -> list[str]:
    partitions = graph.get(dg.AssetKey(name)).partitions_def
    assert partitions is not None, name
    if isinstance(partitions, dg.MultiPartitionsDefinition):
        return [
            str(d.partitions_def.get_first_partition_key())
            for d in partitions.partitions_defs
            if not isinstance(d.partitions_def, dg.DynamicPartitionsDefinition)
        ]
    return [str(partitions.get_first_partition_key())]


@pytest.mark.parametrize(
    ("postgres_url", "kind", "not_kind"),
    [(None, "duckdb", "postgres"), ("postgresql://u:p@127.0.0.1:1/x", "postgres", "duckdb")],
)
def test_every_asset_kind_names_the_configured_sql_store(
    tmp_path: Path, postgres_url: str | None, kind: str, not_kind: str
) -> None:
    env = {"FRIREN_HOME": str(tmp_path)}
    if postgres_url:
        env["FRIREN_POSTGRES_URL"] = postgres_url
    graph = _graph(env)
    nodes = [graph.get(key) for key in graph.materializable_asset_keys]
    ours = [node for node in nodes if node.group_name in DOMAINS]
    assert len(ours) == 13  # 6 market-data assets, 7 portfolio assets
    for node in ours:
        assert {"parquet", kind} <= set(node.kinds), node.key
        assert not_kind not in node.kinds, node.key
    assert "talib" in graph.get(dg.AssetKey("indicators_1d")).kinds


@pytest.mark.parametrize(
    ("start", "year", "week", "session"),
    [
        (None, "2025", "2024-12-30", "2025-01-02"),  # the default, 2025-01-01 (a holiday)
        ("2024-03-13", "2024", "2024-03-11", "2024-03-13"),
        ("2023-07-01", "2023", "2023-06-26", "2023-07-03"),  # a Saturday
    ],
)
def test_partitions_start_at_the_history_start(
    tmp_path: Path, start: str | None, year: str, week: str, session: str
) -> None:
    env = {"FRIREN_HOME": str(tmp_path)}
    if start:
        env["FRIREN_HISTORY_START"] = start
    graph = _graph(env)
    for name in ("bars_1d", "indicators_1d"):
        assert _first_keys(graph, name) == [year]
    for name in ("bars_1min", "bars_5min", "indicators_1min", "indicators_5min"):
        assert _first_keys(graph, name) == [week]
    for name in ("fills", "portfolio_snapshots"):
        assert _first_keys(graph, name) == [session]


def test_a_backfill_before_the_history_start_fails_in_one_line_naming_it(
    friren_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRIREN_HISTORY_START", "2024-01-01")
    result = CliRunner().invoke(
        main, ["backfill", "--symbols", "AAPL", "--start", "2023-12-29", "--end", "2024-01-05"]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "2023-12-29" in lines[0] and "FRIREN_HISTORY_START=2024-01-01" in lines[0]
    # Nothing was registered or run.
    assert not Path(friren_env["FRIREN_HOME"], "bars_1d").exists()


def test_performance_depends_on_the_daily_bars_without_the_ledger_job_running_them(
    tmp_path: Path,
) -> None:
    defs = build_definitions(load_settings({"FRIREN_HOME": str(tmp_path)}))
    graph = defs.resolve_asset_graph()
    bars, performance = dg.AssetKey("bars_1d"), dg.AssetKey("performance")
    assert bars in graph.get(performance).parent_keys
    assert performance in graph.get(bars).child_keys
    ledger = defs.resolve_job_def("recompute_ledger")
    assert bars not in ledger.asset_layer.selected_asset_keys
