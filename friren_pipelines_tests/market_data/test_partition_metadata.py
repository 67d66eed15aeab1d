"""Each partition's materialization carries its own figures, whatever the size of the run; the
run's totals go to the run (tags), not to every partition; previews show prices at their tick."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pandas as pd

from friren_pipelines.config import load_settings
from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data.bars import BARS_ASSETS, BARS_CHECKS
from friren_pipelines.market_data.metadata import number_cell, preview
from friren_pipelines.market_data.universe import UNIVERSE
from friren_pipelines.resources import build_resources
from friren_pipelines.sources.synthetic import SyntheticBarSource

SYMBOLS = [f"P{i:02d}" for i in range(30)]  # 30 symbols x 2 years = 60 keys: more than 50


def test_a_run_of_more_than_50_keys_gives_each_partition_its_own_rows_span_and_quirks_and_passes_quality(
    friren_env: dict[str, str],
) -> None:
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions(UNIVERSE.name or "", SYMBOLS)
    result = dg.materialize(
        [BARS_ASSETS[Timeframe.DAY1], BARS_CHECKS[Timeframe.DAY1]],
        instance=instance,
        resources=build_resources(load_settings()),
        tags={
            "dagster/asset_partition_range_start": f"{SYMBOLS[0]}|2023",
            "dagster/asset_partition_range_end": f"{SYMBOLS[-1]}|2024",
        },
    )
    events = result.asset_materializations_for_node("bars_1d")
    assert len(events) == 60
    expected = SyntheticBarSource().fetch_bars(
        SYMBOLS, Timeframe.DAY1, dt.date(2023, 1, 1), dt.date(2024, 12, 31)
    )
    expected["year"] = pd.DatetimeIndex(expected["timestamp"]).year.astype(str)
    for event in events:
        symbol, year = str(event.partition).split("|")
        own = expected[(expected["symbol"] == symbol) & (expected["year"] == year)]
        metadata = {name: value.value for name, value in event.metadata.items()}
        assert metadata["dagster/row_count"] == len(own)
        assert metadata["first_timestamp"] == str(own["timestamp"].min())
        assert metadata["last_timestamp"] == str(own["timestamp"].max())
        assert isinstance(metadata["quirks"], int)
        assert "run_rows" not in metadata and "quirks_reported" not in metadata
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    tags = run.tags
    quirks = [e.metadata["quirks"].value for e in events]
    assert sum(q for q in quirks if isinstance(q, int)) == int(
        tags["friren/bars_1d/quirks_reported"]
    )
    assert tags["friren/bars_1d/run_rows"] == str(len(expected))
    # Quirks kept on purpose read as a passed check with its findings, not "Failed".
    quality = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "bars_quality"
    )
    assert quality.passed and quality.severity == dg.AssetCheckSeverity.WARN
    assert quality.metadata["quirky_bars"].value == int(tags["friren/bars_1d/quirks_reported"])
    assert tags["friren/bars_1d/run_partitions"] == "60"


def test_previews_show_prices_at_their_tick_money_to_the_cent_and_no_exponent() -> None:
    assert number_cell("close", Decimal("1935.250000000000000000")) == "1935.25"
    assert number_cell("price", Decimal("0.123456")) == "0.1235"  # sub-dollar: 4 places
    assert number_cell("fee", Decimal("0E-18")) == "0.00"
    assert number_cell("realized_pnl", Decimal("-12.345")) == "-12.34"  # half-even, to the cent
    assert number_cell("qty", Decimal("100.000000000000000000")) == "100"
    assert number_cell("sharpe", 1e-9) == "0.0000"
    table = preview(pd.DataFrame({"close": [101.23456], "equity": [Decimal("1E+5")]}))
    assert isinstance(table, dg.TableMetadataValue)
    assert table.records[0].data == {"close": "101.23", "equity": "100000.00"}
