"""`performance` shows each account's and strategy's headline figures as numbers."""

from decimal import Decimal

from friren_pipelines.portfolio.assets import headline_metadata


def test_performance_headline_metrics_are_numbers_per_account_and_strategy() -> None:
    rows = [
        {
            "account": "demo",
            "scope": "account",
            "key": "demo",
            "total_return": 0.123456,
            "sharpe": 1.23456,
            "sortino": None,
            "max_drawdown": -0.05,
            "win_rate": 0.5,
            "realized_pnl": Decimal("1935.250000000000000000"),
        },
        {
            "account": "demo",
            "scope": "strategy",
            "key": "sma_cross",
            "sharpe": 0.9,
            "realized_pnl": Decimal("-10.005"),
        },
        {"account": "demo", "scope": "day", "key": "2025-01-02", "sharpe": 3.0},
    ]
    assert headline_metadata(rows) == {
        "demo/total_return": 0.1235,
        "demo/sharpe": 1.2346,
        "demo/max_drawdown": -0.05,
        "demo/win_rate": 0.5,
        "demo/realized_pnl": 1935.25,
        "demo/sma_cross/sharpe": 0.9,
        "demo/sma_cross/realized_pnl": -10.01,
    }
