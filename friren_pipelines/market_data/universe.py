"""The symbol universe: which tickers the market-data assets cover.

Two sets, each a Dagster dynamic partition dimension: the daily **universe** (~500 symbols) and
the intraday **watchlist** (~50), kept apart so the minute assets stay under Dagster's partition
limit however large the universe grows. Each set is seeded from a file of one ticker per line
(`#` starts a comment): `<FRIREN_HOME>/<set>.txt` when present, else the packaged default beside
this module. The live sets are in the Dagster instance (`friren symbols add/remove`).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import dagster as dg

from friren_pipelines.core.bars import Timeframe, normalize_symbol

UNIVERSE = dg.DynamicPartitionsDefinition(name="universe")
WATCHLIST = dg.DynamicPartitionsDefinition(name="watchlist")
SYMBOL_SETS = (UNIVERSE, WATCHLIST)


def symbol_set(timeframe: Timeframe) -> dg.DynamicPartitionsDefinition:
    """The set a timeframe is partitioned by: the universe for daily bars, else the watchlist."""
    return UNIVERSE if timeframe == Timeframe.DAY1 else WATCHLIST


def _parse(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [normalize_symbol(line) for line in lines if line]


def listed_symbols(symbols: dg.DynamicPartitionsDefinition, home: Path | None = None) -> list[str]:
    """The tickers of a set's file: `<home>/<set>.txt` if it exists, else the packaged default."""
    file_name = f"{symbols.name}.txt"
    custom = home / file_name if home is not None else None
    if custom is not None and custom.exists():
        return _parse(custom.read_text())
    return _parse(resources.files(__package__).joinpath(file_name).read_text())


def register(
    instance: dg.DagsterInstance, symbols: dg.DynamicPartitionsDefinition, tickers: Sequence[str]
) -> list[str]:
    """Add tickers to a set in the instance; returns the ones that were new."""
    name = symbols.name or ""
    known = set(instance.get_dynamic_partitions(name))
    new = [s for s in dict.fromkeys(tickers) if s not in known]
    if new:
        instance.add_dynamic_partitions(name, new)
    return new
