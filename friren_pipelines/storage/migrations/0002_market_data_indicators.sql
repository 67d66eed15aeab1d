-- Indicators as stored by the indicators assets, long format: one row per (symbol, timeframe, bar
-- start, indicator). indicator_value is NULL during the indicator's warm-up, never NaN.
CREATE TABLE IF NOT EXISTS market_data_indicators (
    symbol          TEXT             NOT NULL,
    timeframe       TEXT             NOT NULL,
    timestamp       TIMESTAMPTZ      NOT NULL,
    indicator_name  TEXT             NOT NULL,
    indicator_value DOUBLE PRECISION,
    UNIQUE (symbol, timeframe, timestamp, indicator_name)
);
