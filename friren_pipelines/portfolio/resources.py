"""The portfolio resources: which broker the assets sync from, and the ledger's conventions.

Built from the settings (`FRIREN_BROKER`, `FRIREN_BROKER_CSV`, `FRIREN_BROKER_ACCOUNT`, the
`ALPACA_*` keys, `FRIREN_LOT_METHOD`, `FRIREN_RISK_FREE_RATE`) by `resources.build_resources`.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import dagster as dg
from pydantic import Field, PrivateAttr

from friren_pipelines.account.resource import LiveAccount
from friren_pipelines.config import BROKERS, ConfigError
from friren_pipelines.core.lots import METHODS, Method
from friren_pipelines.portfolio.brokers import AlpacaBroker, Broker, CsvBroker


class BrokerResource(dg.ConfigurableResource):
    """The brokerage account the portfolio assets sync from."""

    kind: str = "demo"
    csv_path: str | None = None
    csv_account: str = "csv"
    alpaca_key_id: str | None = Field(default=None, repr=False)
    alpaca_secret_key: str | None = Field(default=None, repr=False)
    alpaca_paper: bool = True
    alpaca_url_override: str | None = None
    live_account: LiveAccount | None = None  # today's Alpaca values come from the cached account
    _broker: Broker | None = PrivateAttr(default=None)

    def open(self) -> Broker:
        if self._broker is None:
            self._broker = self._build()
        return self._broker

    def _build(self) -> Broker:
        if self.kind == "alpaca":
            # alpaca-py is imported on first use: loading the definitions must not need it.
            from friren_pipelines.account.broker import AlpacaConnection

            return AlpacaBroker(
                AlpacaConnection(
                    self.alpaca_key_id or "",
                    self.alpaca_secret_key or "",
                    paper=self.alpaca_paper,
                    url_override=self.alpaca_url_override,
                ),
                live_snapshot=self.live_account.snapshot if self.live_account else None,
                limiter=self.live_account.rate_limiter() if self.live_account else None,
            )
        if self.kind == "csv":
            return CsvBroker(Path(self.csv_path or "fills.csv"), self.csv_account)
        if self.kind == "demo":
            from friren_pipelines.market_data.universe import UNIVERSE, listed_symbols
            from friren_pipelines.portfolio.demo import DemoBroker

            return DemoBroker(listed_symbols(UNIVERSE))  # the packaged universe, whatever the home
        # A typo must never become the demo account.
        raise ConfigError(
            f"broker kind={self.kind!r} is not valid; allowed values: {', '.join(BROKERS)}"
        )


class LedgerResource(dg.ConfigurableResource):
    """How the ledger is read: lot matching method and the risk-free rate of the metrics."""

    lot_method: str = "fifo"
    annual_risk_free_rate: float = 0.0

    @property
    def method(self) -> Method:
        if self.lot_method not in METHODS:
            raise ValueError(
                f"lot_method {self.lot_method!r}: expected one of {', '.join(METHODS)}"
            )
        return cast(Method, self.lot_method)
