"""The indicator tables under the names this package uses: the wide Parquet dataset
`indicators_<timeframe>` (one row per bar, one column per indicator) and the long SQL table
`market_data_indicators` (one row per bar and indicator), both declared in `storage.tables`."""

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.storage.tables import INDICATOR_VALUES, INDICATORS

INDICATORS_TABLE = INDICATOR_VALUES.name
INDICATORS_SCHEMA = INDICATORS.schema
LONG_SCHEMA = INDICATOR_VALUES.schema
COLUMN_DESCRIPTIONS = INDICATORS.descriptions
# Parquet metadata key under which each indicator file records the fingerprint of the history it
# was computed from (`history.fingerprints`); `repair` compares it with the stored bars.
FINGERPRINT_KEY = b"friren.history_fingerprint"


def indicators_dataset(timeframe: Timeframe) -> str:
    return INDICATORS.dataset_for(timeframe)
