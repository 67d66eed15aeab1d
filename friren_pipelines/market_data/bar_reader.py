"""Three-tier bar reads for consumers outside Dagster (strategies, sensors, notebooks).

`BarReader.get_bars` answers from the fastest tier that has the bars and says which one did:
1. **redis**: the last 500 bars per symbol and timeframe, as Arrow IPC bytes, kept 60 s (1min),
   300 s (5min) or an hour (1d); only for `limit` reads, the live case.
2. **warehouse**: the Parquet partitions, when every partition of the range is stored and the
   current one holds every bar finished by now.
3. **source**: the missing or stale partitions are fetched from the market data source, validated
   with the bars rules and stored with the bars assets' own writer (Parquet + SQL), so the next read
   is local. Such writes do not appear as materializations in Dagster; re-running the partition
   there records them.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
from pyarrow import ipc

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import (
    Timeframe,
    from_arrow,
    last_finished_bar,
    normalize_symbol,
    raise_on_errors,
    to_arrow,
    validate_bars,
)
from friren_pipelines.market_data.bars import fetch_partitions, read_partitions, store_bars
from friren_pipelines.market_data.partitions import BarsPartition, parse_partition, periods_between
from friren_pipelines.resources import StorageResource
from friren_pipelines.sources.base import BarSource

REDIS_DEPTH = 500
REDIS_TTL_SECONDS = {Timeframe.MIN1: 60, Timeframe.MIN5: 300, Timeframe.DAY1: 3600}


@dataclass(frozen=True)
class BarsRead:
    bars: pd.DataFrame
    tier: str  # "redis", "warehouse" or "source"


class BarReader:
    def __init__(
        self,
        storage: StorageResource,
        source: BarSource,
        redis_client: Any | None = None,
        key_prefix: str = "friren:",
    ):
        self._storage = storage
        self._source = source
        self._redis = redis_client
        self._prefix = key_prefix

    def get_bars(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
        limit: int | None = None,
        now: pd.Timestamp | None = None,
    ) -> BarsRead:
        """Bars of one symbol between two session dates (inclusive), or the last `limit` bars."""
        symbol = normalize_symbol(symbol)
        now = now if now is not None else pd.Timestamp.now(tz="UTC")
        if limit is not None:
            if limit <= 0:
                raise ValueError(f"limit must be positive, got {limit}")
            cached = self._from_redis(symbol, timeframe, limit)
            if cached is not None:
                return BarsRead(cached, "redis")
            today = calendar.session_of(now)
            per_session = 390 // (timeframe.minutes or 390)
            sessions_back = limit // per_session + 2
            start = calendar.sessions(today - dt.timedelta(days=sessions_back * 2 + 10), today)[
                -sessions_back
            ]
            read = self._range(symbol, timeframe, start, today, now)
            last = last_finished_bar(timeframe, now)
            finished = read.bars[read.bars["timestamp"] <= last] if last is not None else read.bars
            recent = finished.tail(max(limit, REDIS_DEPTH))
            self._to_redis(symbol, timeframe, recent)
            return BarsRead(recent.tail(limit).reset_index(drop=True), read.tier)
        if start is None or end is None:
            raise ValueError("get_bars needs start and end dates, or a limit")
        return self._range(symbol, timeframe, start, end, now)

    def _range(
        self, symbol: str, timeframe: Timeframe, start: dt.date, end: dt.date, now: pd.Timestamp
    ) -> BarsRead:
        partitions = [
            parse_partition(timeframe, f"{symbol}|{period}")
            for period in periods_between(timeframe, start, end)
        ]
        if not partitions:
            raise ValueError(f"no XNYS sessions between {start} and {end}")
        stored, missing_keys = read_partitions(self._storage, timeframe, partitions)
        stale = self._stale(stored, partitions, timeframe, now)
        to_fetch = [p for p in partitions if p.key in set(missing_keys) | stale]
        tier = "warehouse"
        if to_fetch:
            fetched = fetch_partitions(self._source, timeframe, to_fetch, now=now)
            raise_on_errors(validate_bars(fetched, timeframe))
            store_bars(self._storage, timeframe, to_fetch, fetched)
            stored, _ = read_partitions(self._storage, timeframe, partitions)
            tier = "source"
        inside = (stored["session_date"] >= start) & (stored["session_date"] <= end)
        return BarsRead(stored[inside].reset_index(drop=True), tier)

    @staticmethod
    def _stale(
        stored: pd.DataFrame,
        partitions: list[BarsPartition],
        timeframe: Timeframe,
        now: pd.Timestamp,
    ) -> set[str]:
        """The partition holding the last finished bar, if its file ends before that bar."""
        expected = last_finished_bar(timeframe, now)
        if expected is None:
            return set()
        session = calendar.session_of(expected)
        for partition in partitions:
            if partition.first <= session <= partition.last:
                latest = stored["timestamp"].max() if len(stored) else None
                if latest is None or latest < expected:
                    return {partition.key}
        return set()

    def _key(self, symbol: str, timeframe: Timeframe) -> str:
        return f"{self._prefix}bars:{symbol}:{timeframe.value}"

    def _from_redis(self, symbol: str, timeframe: Timeframe, limit: int) -> pd.DataFrame | None:
        if self._redis is None or limit > REDIS_DEPTH:
            return None
        payload = self._redis.get(self._key(symbol, timeframe))
        if payload is None:
            return None
        bars = from_arrow(ipc.open_stream(pa.BufferReader(payload)).read_all())
        return bars.tail(limit).reset_index(drop=True) if len(bars) >= limit else None

    def _to_redis(self, symbol: str, timeframe: Timeframe, bars: pd.DataFrame) -> None:
        if self._redis is None or bars.empty:
            return
        table = to_arrow(bars.tail(REDIS_DEPTH))
        sink = io.BytesIO()
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        self._redis.set(
            self._key(symbol, timeframe), sink.getvalue(), ex=REDIS_TTL_SECONDS[timeframe]
        )
