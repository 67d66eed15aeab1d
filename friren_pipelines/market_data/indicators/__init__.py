"""Indicator assets (1min, 5min, 1d) and their checks: stored bars → TA-Lib → Parquet + SQL.

Look-back: every stored value is TA-Lib over the symbol's entire stored history at that timeframe
(`core.indicators`, bit-identical at every partition boundary). A run reads the stored bars of its
symbols from the warehouse in one scan, calls the core once per symbol over the history up to the
last bar it writes, and writes its partitions. When an earlier period changes, later periods
change too (EMA, RSI and MACD remember their seed): a run repairs the later stored partitions
whose history changed (`repair`), and the UI marks them stale until then (`asset`).

One module per stage of a run:
- `history`: each symbol's stored bars, read in one scan, and their fingerprint per period;
- `repair`: the partitions a run writes, its own and the later ones whose history changed;
- `compute`: TA-Lib over each symbol's history, into one wide frame;
- `storage`: the Parquet files and SQL rows (`storage.tables`' `INDICATORS` and
  `INDICATOR_ROWS`) replaced in one write, and the readers of the checks;
- `checks`: the blocking checks over what a run wrote;
- `asset`: the Dagster assets (look-back dependency, provenance, previews and charts).
"""

from friren_pipelines.market_data.indicators.asset import INDICATOR_ASSETS, INDICATOR_CHECKS

__all__ = ["INDICATOR_ASSETS", "INDICATOR_CHECKS"]
