-- Bars as stored by the bars assets; one row per (symbol, timeframe, bar start).
CREATE TABLE IF NOT EXISTS market_data_bars (
    symbol        TEXT             NOT NULL,
    timeframe     TEXT             NOT NULL,
    timestamp     TIMESTAMPTZ      NOT NULL,
    session_date  DATE             NOT NULL,
    open          DOUBLE PRECISION NOT NULL,
    high          DOUBLE PRECISION NOT NULL,
    low           DOUBLE PRECISION NOT NULL,
    close         DOUBLE PRECISION NOT NULL,
    volume        DOUBLE PRECISION NOT NULL,
    vwap          DOUBLE PRECISION,
    trade_count   BIGINT,
    adjustment    TEXT             NOT NULL,
    source        TEXT             NOT NULL,
    UNIQUE (symbol, timeframe, timestamp)
);

-- What is stored per symbol and timeframe, refreshed in the same transaction as the bars.
CREATE TABLE IF NOT EXISTS symbol_metadata (
    symbol          TEXT        NOT NULL,
    timeframe       TEXT        NOT NULL,
    earliest_bar    TIMESTAMPTZ,
    latest_bar      TIMESTAMPTZ,
    total_bars      BIGINT      NOT NULL,
    last_fetched_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, timeframe)
);
