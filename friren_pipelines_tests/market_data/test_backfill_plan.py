import datetime as dt

import dagster as dg
import pytest

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data import backfill
from friren_pipelines.market_data.backfill import plan
from friren_pipelines.market_data.universe import UNIVERSE, WATCHLIST, register


def test_runs_are_rectangles_contiguous_in_insertion_order() -> None:
    with dg.instance_for_test() as instance:
        register(instance, UNIVERSE, ["MSFT", "AAPL", "XOM", "SPY"])
        runs = plan(
            instance,
            Timeframe.DAY1,
            ["SPY", "MSFT", "XOM"],
            dt.date(2023, 6, 1),
            dt.date(2024, 2, 1),
        )
    # AAPL sits between MSFT and XOM in insertion order, so MSFT is a block of its own.
    assert [(r.symbols, r.periods) for r in runs] == [
        (("MSFT",), ("2023", "2024")),
        (("XOM", "SPY"), ("2023", "2024")),
    ]
    assert runs[1].tags["dagster/asset_partition_range_start"] == "XOM|2023"
    assert runs[1].tags["dagster/asset_partition_range_end"] == "SPY|2024"


def test_a_symbols_periods_stay_in_one_run_and_runs_stay_under_the_key_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backfill, "MAX_KEYS_PER_RUN", 10)
    symbols = [f"S{i}" for i in range(7)]
    with dg.instance_for_test() as instance:
        register(instance, WATCHLIST, symbols)
        runs = plan(instance, Timeframe.MIN1, symbols, dt.date(2024, 3, 4), dt.date(2024, 3, 22))
    assert all(len(r.periods) == 3 and r.keys <= 10 for r in runs)
    assert [r.symbols for r in runs] == [("S0", "S1", "S2"), ("S3", "S4", "S5"), ("S6",)]
