-- Portfolio tables (friren_pipelines/storage/tables.py declares them, with each column's meaning).
-- Money, quantities and prices are NUMERIC(38, 18): exact for every broker string.

-- The fills ledger: one row per execution, unique per account.
CREATE TABLE IF NOT EXISTS fills (
    account          TEXT           NOT NULL,
    exec_id          TEXT           NOT NULL,
    order_id         TEXT,
    timestamp        TIMESTAMPTZ    NOT NULL,
    trade_date       DATE           NOT NULL,
    settlement_date  DATE           NOT NULL,
    symbol           TEXT           NOT NULL,
    side             TEXT           NOT NULL,
    qty              NUMERIC(38, 18) NOT NULL,
    price            NUMERIC(38, 18) NOT NULL,
    fee              NUMERIC(38, 18) NOT NULL,
    strategy         TEXT           NOT NULL,
    source           TEXT           NOT NULL,
    sequence         BIGINT         NOT NULL,
    PRIMARY KEY (account, exec_id)
);

-- Current net positions per account (broker's view, or rebuilt from the ledger).
CREATE TABLE IF NOT EXISTS positions (
    account          TEXT           NOT NULL,
    symbol           TEXT           NOT NULL,
    side             TEXT           NOT NULL,
    qty              NUMERIC(38, 18) NOT NULL,
    avg_entry_price  NUMERIC(38, 18) NOT NULL,
    source           TEXT           NOT NULL,
    synced_at        TIMESTAMPTZ    NOT NULL,
    PRIMARY KEY (account, symbol)
);

-- Append-only: what changed between two position syncs.
CREATE TABLE IF NOT EXISTS position_events (
    account             TEXT           NOT NULL,
    synced_at           TIMESTAMPTZ    NOT NULL,
    symbol              TEXT           NOT NULL,
    kind                TEXT           NOT NULL,
    side                TEXT           NOT NULL,
    previous_qty        NUMERIC(38, 18) NOT NULL,
    current_qty         NUMERIC(38, 18) NOT NULL,
    change              NUMERIC(38, 18) NOT NULL,
    previous_avg_price  NUMERIC(38, 18),
    current_avg_price   NUMERIC(38, 18),
    PRIMARY KEY (account, symbol, synced_at)
);

-- Session-close account values.
CREATE TABLE IF NOT EXISTS portfolio_snapshots (
    account             TEXT           NOT NULL,
    session_date        DATE           NOT NULL,
    equity              NUMERIC(38, 18) NOT NULL,
    cash                NUMERIC(38, 18),
    buying_power        NUMERIC(38, 18),
    long_market_value   NUMERIC(38, 18),
    short_market_value  NUMERIC(38, 18),
    day_pnl             NUMERIC(38, 18),
    source              TEXT           NOT NULL,
    recorded_at         TIMESTAMPTZ    NOT NULL,
    PRIMARY KEY (account, session_date)
);

-- Closed lots with realized P&L, recomputed from all fills.
CREATE TABLE IF NOT EXISTS realized_lots (
    symbol           TEXT           NOT NULL,
    side             TEXT           NOT NULL,
    qty              NUMERIC(38, 18) NOT NULL,
    open_time        TIMESTAMPTZ    NOT NULL,
    close_time       TIMESTAMPTZ    NOT NULL,
    open_price       NUMERIC(38, 18) NOT NULL,
    close_price      NUMERIC(38, 18) NOT NULL,
    fees             NUMERIC(38, 18) NOT NULL,
    realized_pnl     NUMERIC(38, 18) NOT NULL,
    strategy         TEXT           NOT NULL,
    holding_seconds  BIGINT         NOT NULL,
    account          TEXT           NOT NULL,
    open_exec_id     TEXT           NOT NULL,
    close_exec_id    TEXT           NOT NULL,
    lot_method       TEXT           NOT NULL
);

CREATE TABLE IF NOT EXISTS performance (
    account                TEXT           NOT NULL,
    scope                  TEXT           NOT NULL,
    key                    TEXT           NOT NULL,
    realized_pnl           NUMERIC(38, 18) NOT NULL,
    unrealized_pnl         NUMERIC(38, 18),
    closed_lots            BIGINT         NOT NULL,
    win_rate               DOUBLE PRECISION,
    profit_factor          DOUBLE PRECISION,
    profit_factor_note     TEXT,
    average_win            NUMERIC(38, 18),
    average_loss           NUMERIC(38, 18),
    equity                 NUMERIC(38, 18),
    daily_return           DOUBLE PRECISION,
    total_return           DOUBLE PRECISION,
    sharpe                 DOUBLE PRECISION,
    sortino                DOUBLE PRECISION,
    max_drawdown           DOUBLE PRECISION,
    calmar                 DOUBLE PRECISION,
    annual_risk_free_rate  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, scope, key)
);

CREATE TABLE IF NOT EXISTS compliance (
    account                TEXT    NOT NULL,
    period                 TEXT    NOT NULL,
    start                  DATE    NOT NULL,
    trades                 BIGINT  NOT NULL,
    fills                  BIGINT  NOT NULL,
    day_trades             BIGINT  NOT NULL,
    pdt_window_start       DATE,
    pdt_window_day_trades  BIGINT,
    pdt_window_trades      BIGINT,
    day_trade_share        DOUBLE PRECISION,
    meets_pdt_test         BOOLEAN,
    rule_set               TEXT,
    reason                 TEXT,
    PRIMARY KEY (account, period, start)
);
