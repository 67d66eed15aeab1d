import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from friren_pipelines.account.redis_namespace import connect
from friren_pipelines.core.bars import Timeframe, to_arrow
from friren_pipelines.market_data.bar_reader import BarReader
from friren_pipelines.resources import StorageResource
from friren_pipelines.sources.synthetic import SyntheticBarSource

FRIDAY_10AM = pd.Timestamp("2024-03-08 15:00", tz="UTC")  # 10:00 New York


class CountingSource(SyntheticBarSource):
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], str, dt.date, dt.date]] = []

    def fetch_bars(
        self, symbols: Sequence[str], timeframe: Timeframe, start: dt.date, end: dt.date
    ) -> pd.DataFrame:
        self.calls.append((tuple(symbols), timeframe.value, start, end))
        return super().fetch_bars(symbols, timeframe, start, end)


@pytest.fixture
def storage(tmp_path: Path) -> StorageResource:
    return StorageResource(home=str(tmp_path / "warehouse"))


def test_a_gap_is_fetched_once_stored_and_then_read_locally(storage: StorageResource) -> None:
    source = CountingSource()
    reader = BarReader(storage, source)
    first = reader.get_bars(
        "AAPL", Timeframe.MIN1, start=dt.date(2024, 3, 4), end=dt.date(2024, 3, 5)
    )
    second = reader.get_bars(
        "AAPL", Timeframe.MIN1, start=dt.date(2024, 3, 4), end=dt.date(2024, 3, 5)
    )
    assert (first.tier, second.tier) == ("source", "warehouse")
    assert len(source.calls) == 1 and len(second.bars) == 2 * 390
    pd.testing.assert_frame_equal(first.bars, second.bars)
    stored = storage.sql.query("SELECT count(*) FROM market_data_bars WHERE symbol = 'AAPL'")
    assert stored == [(5 * 390,)]  # the whole weekly partition was stored


def test_latest_bars_come_from_redis_within_the_ttl(
    storage: StorageResource, redis_url: str
) -> None:
    source = CountingSource()
    client = connect(redis_url)
    reader = BarReader(storage, source, client, os.environ["FRIREN_REDIS_PREFIX"])
    first = reader.get_bars("MSFT", Timeframe.MIN1, limit=45, now=FRIDAY_10AM)
    second = reader.get_bars("MSFT", Timeframe.MIN1, limit=45, now=FRIDAY_10AM)
    assert (first.tier, second.tier) == ("source", "redis")
    assert second.bars["timestamp"].iloc[-1] == pd.Timestamp("2024-03-08 14:59", tz="UTC")
    pd.testing.assert_frame_equal(first.bars, second.bars)
    ttl = client.ttl(f"{os.environ['FRIREN_REDIS_PREFIX']}bars:MSFT:1min")
    assert 0 < ttl <= 60


def test_a_current_partition_missing_recent_bars_is_refreshed(storage: StorageResource) -> None:
    source = CountingSource()
    reader = BarReader(storage, source)
    reader.get_bars("SPY", Timeframe.MIN5, limit=10, now=FRIDAY_10AM)
    path = storage.warehouse.path("bars_5min", (("symbol", "SPY"), ("week", "2024-03-04")))
    kept = to_arrow(
        reader.get_bars(
            "SPY", Timeframe.MIN5, start=dt.date(2024, 3, 4), end=dt.date(2024, 3, 4)
        ).bars
    )
    storage.warehouse.write("bars_5min", (("symbol", "SPY"), ("week", "2024-03-04")), kept)
    assert path.exists()
    refreshed = reader.get_bars("SPY", Timeframe.MIN5, limit=10, now=FRIDAY_10AM)
    assert refreshed.tier == "source" and len(source.calls) == 2
    assert refreshed.bars["timestamp"].iloc[-1] == pd.Timestamp("2024-03-08 14:55", tz="UTC")


def test_bad_requests_are_refused_with_the_reason(storage: StorageResource) -> None:
    reader = BarReader(storage, CountingSource())
    with pytest.raises(ValueError, match="invalid symbol"):
        reader.get_bars("../x", Timeframe.DAY1, limit=5)
    with pytest.raises(ValueError, match="start and end"):
        reader.get_bars("AAPL", Timeframe.DAY1)
