-- Stock splits applied to the fills ledger (friren splits import): one row per symbol and ex-date.
CREATE TABLE IF NOT EXISTS splits (
    symbol       TEXT            NOT NULL,
    effective    TIMESTAMPTZ     NOT NULL,
    numerator    NUMERIC(38, 18) NOT NULL,
    denominator  NUMERIC(38, 18) NOT NULL,
    PRIMARY KEY (symbol, effective)
);
