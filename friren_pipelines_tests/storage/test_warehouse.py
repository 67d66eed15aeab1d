from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from friren_pipelines.storage.warehouse import Warehouse

PARTITION = (("symbol", "AAPL"), ("year", "2024"))


def test_rewriting_the_same_rows_gives_byte_identical_files(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path)
    table = pa.table({"x": [1.5, 2.5], "s": ["a", "b"]})
    warehouse.write("bars_1d", PARTITION, table)
    first = warehouse.path("bars_1d", PARTITION).read_bytes()
    warehouse.write("bars_1d", PARTITION, table)
    assert warehouse.path("bars_1d", PARTITION).read_bytes() == first
    assert warehouse.path("bars_1d", PARTITION).parent.name == "year=2024"


def test_a_write_killed_midway_leaves_the_previous_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = Warehouse(tmp_path)
    warehouse.write("bars_1d", PARTITION, pa.table({"x": [1.0]}))

    def dies_halfway(table: pa.Table, where: Path, **_: object) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(pq, "write_table", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        warehouse.write("bars_1d", PARTITION, pa.table({"x": [2.0]}))
    monkeypatch.undo()
    assert warehouse.read("bars_1d", PARTITION).column("x").to_pylist() == [1.0]  # type: ignore[union-attr]
    assert [p.name for p in warehouse.path("bars_1d", PARTITION).parent.iterdir()] == [
        "data.parquet"
    ]


@pytest.mark.parametrize("value", ["../x", "a/b", ".hidden", "A;DROP"])
def test_partition_values_that_could_escape_the_folder_are_refused(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        Warehouse(tmp_path).path("bars_1d", (("symbol", value),))
