"""The indicator tables, declared once: the wide Parquet dataset `indicators_<timeframe>` (one row
per bar, one column per indicator) and the long SQL table `market_data_indicators` (one row per
bar and indicator)."""

import pyarrow as pa

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.core.indicators import INDICATOR_NAMES

INDICATORS_TABLE = "market_data_indicators"
# Parquet metadata key under which each indicator file records the fingerprint of the history it
# was computed from (`history.fingerprints`); `repair` compares it with the stored bars.
FINGERPRINT_KEY = b"friren.history_fingerprint"

INDICATORS_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        *(pa.field(name, pa.float64()) for name in INDICATOR_NAMES),
    ]
)
LONG_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("timeframe", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("indicator_name", pa.string(), nullable=False),
        pa.field("indicator_value", pa.float64()),
    ]
)

COLUMN_DESCRIPTIONS = {
    "symbol": "Exchange ticker",
    "timestamp": "Bar start, UTC (the bar's own timestamp in bars_<timeframe>)",
    "rsi_14": "Wilder RSI(14), points 0-100, seeded with the simple mean of the first 14 changes",
    "rsi_9": "Wilder RSI(9), points 0-100",
    "sma_10": "Mean of the last 10 closes, price units",
    "sma_20": "Mean of the last 20 closes",
    "sma_50": "Mean of the last 50 closes",
    "sma_200": "Mean of the last 200 closes",
    "ema_10": "EMA(10), alpha 2/11, seeded with the SMA of the first 10 closes",
    "ema_20": "EMA(20), seeded with the SMA of the first 20 closes",
    "ema_50": "EMA(50), seeded with the SMA of the first 50 closes",
    "macd": "talib.MACD(12, 26, 9) line, price units",
    "macd_signal": "EMA(9) of the MACD line",
    "macd_hist": "macd - macd_signal",
    "bb_upper": "Bollinger(20, 2): SMA20 + 2 population standard deviations",
    "bb_middle": "Bollinger middle band: SMA20",
    "bb_lower": "Bollinger(20, 2): SMA20 - 2 population standard deviations",
}


def indicators_dataset(timeframe: Timeframe) -> str:
    return f"indicators_{timeframe.value}"
