"""The stored bars a run computes from: each symbol's whole history at a timeframe, read in one
scan of the bars Parquet files, and the fingerprint of that history at the end of each period."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pa_ds

from friren_pipelines.core.bars import BAR_SCHEMA, Timeframe
from friren_pipelines.market_data.partitions import period_bounds
from friren_pipelines.storage.tables import BARS
from friren_pipelines.storage.warehouse import PARTITION_FILE
from friren_pipelines.storage.write import Stores

# Parquet metadata key under which each indicator file records the fingerprint of the history it
# was computed from; `repair` compares it with the stored bars.
FINGERPRINT_KEY = b"friren.history_fingerprint"
_HISTORY_COLUMNS = ["symbol", "timestamp", "session_date", "open", "high", "low", "close", "volume"]


@dataclass
class SymbolHistory:
    """One symbol's stored bars, oldest first, and the row range of each stored period."""

    symbol: str
    bars: pa.Table  # `_HISTORY_COLUMNS`, sorted by timestamp
    periods: dict[str, tuple[int, int]]  # period → [start, end) rows, in time order
    fingerprints: dict[str, str] = field(default_factory=dict)  # period → history fingerprint

    @property
    def close(self) -> np.ndarray:
        return self.bars.column("close").to_numpy()


def stored_periods(storage: Stores, dataset: str, symbol: str) -> dict[str, Path]:
    """Period → file of a symbol's stored partitions in a dataset (`<dim>=<period>` folders)."""
    folder = storage.warehouse.dataset_dir(dataset) / f"symbol={symbol}"
    files = sorted(folder.glob(f"*/{PARTITION_FILE}")) if folder.is_dir() else []
    return {path.parent.name.split("=", 1)[1]: path for path in files}


def _fingerprints(history: SymbolHistory) -> dict[str, str]:
    """Period → digest of the bar starts and closes from the first stored bar to its last bar.

    Indicator values of a period are a function of exactly these bytes (TA-Lib is deterministic),
    so equal fingerprints mean equal stored values.
    """
    stamps = history.bars.column("timestamp").cast(pa.int64()).to_numpy()
    closes = history.close
    digest = hashlib.blake2b(digest_size=16)
    found = {}
    for period, (start, end) in history.periods.items():
        digest.update(stamps[start:end].tobytes())
        digest.update(closes[start:end].tobytes())
        found[period] = digest.hexdigest()
    return found


def read_histories(
    storage: Stores, timeframe: Timeframe, symbols: Sequence[str]
) -> dict[str, SymbolHistory]:
    """Every stored bar of the symbols at the timeframe, in one scan of the bars Parquet files."""
    dataset = BARS.dataset_for(timeframe)
    stored = {symbol: stored_periods(storage, dataset, symbol) for symbol in symbols}
    paths = [str(path) for files in stored.values() for path in files.values()]
    if not paths:
        return {}
    table = (
        pa_ds.dataset(paths, format="parquet", schema=BAR_SCHEMA)
        .to_table(columns=_HISTORY_COLUMNS)
        .sort_by([("symbol", "ascending"), ("timestamp", "ascending")])
    )
    codes = pc.dictionary_encode(table.column("symbol")).combine_chunks()
    names = codes.dictionary.to_pylist()
    indices = codes.indices.to_numpy()
    starts = np.flatnonzero(np.diff(indices, prepend=-1))
    ends = np.append(starts[1:], len(indices))
    histories = {}
    for start, end in zip(starts, ends, strict=True):
        symbol = names[indices[start]]
        bars = table.slice(start, end - start)
        sessions = bars.column("session_date").to_numpy()
        periods = {}
        for period in stored[symbol]:
            first, last = period_bounds(timeframe, period)
            periods[period] = (
                int(np.searchsorted(sessions, np.datetime64(first, "D"), side="left")),
                int(np.searchsorted(sessions, np.datetime64(last, "D"), side="right")),
            )
        history = SymbolHistory(symbol, bars, periods)
        history.fingerprints = _fingerprints(history)
        histories[symbol] = history
    return histories
