"""The portfolio resources: which broker (FRIREN_BROKER) and the ledger's conventions.

Environment (read in `portfolio_resources`, defaults for the embedded setup):
- FRIREN_BROKER: demo (default, offline), csv or alpaca.
- FRIREN_BROKER_CSV: the fills export the csv broker reads (required for csv).
- FRIREN_BROKER_ACCOUNT: the account label of the csv broker (default csv).
- ALPACA_API_KEY_ID / ALPACA_API_SECRET_KEY (as `dg.EnvVar`s: never in the UI or run config),
  ALPACA_PAPER, ALPACA_URL_OVERRIDE: the alpaca broker (shared with the market-data settings).
- FRIREN_LOT_METHOD: fifo (default) or average.
- FRIREN_RISK_FREE_RATE: annual risk-free rate as a fraction (default 0; 0.05 = 5 %).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import dagster as dg
from pydantic import Field, PrivateAttr

from friren_pipelines.account.resource import LiveAccount
from friren_pipelines.config import ConfigError, Settings, env_choice
from friren_pipelines.core.lots import METHODS, Method
from friren_pipelines.portfolio.brokers import AlpacaBroker, Broker, CsvBroker

BROKERS = ("demo", "csv", "alpaca")


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
            return AlpacaBroker(
                self.alpaca_key_id or "",
                self.alpaca_secret_key or "",
                paper=self.alpaca_paper,
                url_override=self.alpaca_url_override,
                live_snapshot=self.live_account.snapshot if self.live_account else None,
            )
        if self.kind == "csv":
            return CsvBroker(Path(self.csv_path or "fills.csv"), self.csv_account)
        from friren_pipelines.market_data.backfill import default_symbols
        from friren_pipelines.portfolio.demo import DemoBroker

        return DemoBroker(default_symbols("universe.txt"))


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


def portfolio_resources(
    settings: Settings, env: Mapping[str, str] | None = None
) -> dict[str, dg.ConfigurableResource]:
    """`broker` and `ledger`, chosen from the environment (see the module docstring)."""
    env = os.environ if env is None else env
    kind = env_choice(env, "FRIREN_BROKER", "demo", BROKERS)
    csv_path = env.get("FRIREN_BROKER_CSV", "").strip() or None
    if kind == "csv" and not csv_path:
        raise ConfigError("FRIREN_BROKER=csv needs FRIREN_BROKER_CSV: the fills export to read")
    if kind == "alpaca" and not (settings.alpaca_key_id and settings.alpaca_secret_key):
        raise ConfigError(
            "FRIREN_BROKER=alpaca needs ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY to be set"
        )
    rate_text = env.get("FRIREN_RISK_FREE_RATE", "").strip() or "0"
    try:
        rate = float(rate_text)
        if not math.isfinite(rate):
            raise ValueError(rate_text)
    except ValueError:
        raise ConfigError(
            f"FRIREN_RISK_FREE_RATE={rate_text!r} is not a number (an annual fraction: 0.05 = 5 %)"
        ) from None
    return {
        "broker": BrokerResource(
            kind=kind,
            csv_path=str(Path(csv_path).expanduser().resolve()) if csv_path else None,
            csv_account=env.get("FRIREN_BROKER_ACCOUNT", "").strip() or "csv",
            alpaca_key_id=dg.EnvVar("ALPACA_API_KEY_ID") if kind == "alpaca" else None,
            alpaca_secret_key=dg.EnvVar("ALPACA_API_SECRET_KEY") if kind == "alpaca" else None,
            alpaca_paper=settings.alpaca_paper,
            alpaca_url_override=settings.alpaca_url_override,
            live_account=LiveAccount() if kind == "alpaca" else None,
        ),
        "ledger": LedgerResource(
            lot_method=env_choice(env, "FRIREN_LOT_METHOD", "fifo", METHODS),
            annual_risk_free_rate=rate,
        ),
    }
