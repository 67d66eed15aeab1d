"""Storing and reading back bars partitions, below Dagster: row ranges, empty files."""

import datetime as dt
from pathlib import Path

import pytest

from friren_pipelines.core.bars import Timeframe, to_arrow
from friren_pipelines.market_data.bars import (
    partition_rows,
    read_partitions,
    store_bars,
)
from friren_pipelines.market_data.partitions import parse_partition
from friren_pipelines.resources import StorageResource
from friren_pipelines.sources.synthetic import SyntheticBarSource
from friren_pipelines.storage.tables import BARS

DAILY = Timeframe.DAY1
PARTITIONS = sorted(
    parse_partition(DAILY, f"{s}|{y}") for s in ("AAA", "BBB") for y in ("2023", "2024")
)


def _bars():
    return SyntheticBarSource().fetch_bars(
        ["AAA", "BBB"], DAILY, dt.date(2023, 1, 1), dt.date(2024, 12, 31)
    )


def test_partition_rows_are_each_keys_sessions() -> None:
    bars = _bars()
    ranges = partition_rows(bars, [*PARTITIONS, parse_partition(DAILY, "CCC|2024")])
    for partition, rows in ranges[:-1]:
        expected = bars[
            (bars["symbol"] == partition.symbol)
            & (bars["session_date"] >= partition.first)
            & (bars["session_date"] <= partition.last)
        ]
        assert list(expected.index) == list(range(rows.start, rows.stop))
        assert len(expected) in (250, 252)  # the 2023 and 2024 XNYS sessions
    assert ranges[-1][1] == slice(0, 0)  # a symbol with no bars has no rows
    assert partition_rows(bars.iloc[:0], PARTITIONS) == [(p, slice(0, 0)) for p in PARTITIONS]


def test_partition_rows_refuses_unsorted_bars() -> None:
    bars = _bars()
    with pytest.raises(ValueError, match="sorted by symbol, then timestamp"):
        partition_rows(bars.iloc[::-1].reset_index(drop=True), PARTITIONS)
    shuffled = bars.sort_values("timestamp", kind="stable").reset_index(drop=True)
    with pytest.raises(ValueError, match="sorted by symbol, then timestamp"):
        partition_rows(shuffled, PARTITIONS)


def test_a_file_without_rows_counts_as_missing(tmp_path: Path) -> None:
    storage = StorageResource(home=str(tmp_path))
    bars = _bars()
    written = store_bars(storage, DAILY, PARTITIONS, bars)
    assert set(written) == {p.key for p in PARTITIONS}
    stored, missing = read_partitions(storage, DAILY, PARTITIONS)
    assert missing == []
    assert to_arrow(stored).equals(to_arrow(bars))
    emptied = PARTITIONS[1]
    storage.warehouse.write(BARS.dataset_for(DAILY), emptied.path(DAILY), to_arrow(bars.iloc[:0]))
    gone = PARTITIONS[2]
    storage.warehouse.remove(BARS.dataset_for(DAILY), gone.path(DAILY))
    _, missing = read_partitions(storage, DAILY, PARTITIONS)
    assert sorted(missing) == sorted([emptied.key, gone.key])
