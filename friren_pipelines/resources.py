"""Dagster resources, chosen from the environment in one place (`resources_from_settings`).

Secrets (database URL, broker keys) reach Dagster as `dg.EnvVar`s: the UI and the run config show
the variable's name, never its value.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from friren_pipelines.config import Settings
from friren_pipelines.sources.base import BarSource
from friren_pipelines.storage.sql import SqlStore, open_sql_store
from friren_pipelines.storage.warehouse import Warehouse


class StorageResource(dg.ConfigurableResource):
    """The warehouse (Parquet under `home`) and the SQL store (Postgres if `postgres_url`, else
    the embedded DuckDB file under `home`). The schema is migrated on first use by each run."""

    home: str
    postgres_url: str | None = Field(default=None, repr=False)
    _store: SqlStore | None = PrivateAttr(default=None)

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(Path(self.home))

    @property
    def sql(self) -> SqlStore:
        if self._store is None:
            self._store = open_sql_store(self.postgres_url, Path(self.home) / "friren.duckdb")
            self._store.migrate()
        return self._store

    @property
    def sql_kind(self) -> str:
        return "postgres" if self.postgres_url else "duckdb"


class BarSourceResource(dg.ConfigurableResource):
    """Which market-data source the bars assets read (FRIREN_SOURCE)."""

    kind: str = "synthetic"
    csv_dir: str | None = None
    alpaca_key_id: str | None = Field(default=None, repr=False)
    alpaca_secret_key: str | None = Field(default=None, repr=False)
    alpaca_feed: str = "iex"
    alpaca_url_override: str | None = None
    yfinance_auto_adjust: bool = False
    _source: BarSource | None = PrivateAttr(default=None)

    def open(self) -> BarSource:
        if self._source is None:
            self._source = self._build()
        return self._source

    def _build(self) -> BarSource:
        if self.kind == "csv":
            from friren_pipelines.sources.csv_files import CsvBarSource

            return CsvBarSource(Path(self.csv_dir or "."))
        if self.kind == "yfinance":
            from friren_pipelines.sources.yahoo import YahooBarSource

            return YahooBarSource(auto_adjust=self.yfinance_auto_adjust)
        if self.kind == "alpaca":
            from friren_pipelines.sources.alpaca_bars import AlpacaBarSource

            return AlpacaBarSource(
                key_id=self.alpaca_key_id or "",
                secret_key=self.alpaca_secret_key or "",
                feed=self.alpaca_feed,
                url_override=self.alpaca_url_override,
            )
        from friren_pipelines.sources.synthetic import SyntheticBarSource

        return SyntheticBarSource()


def _secret(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def resources_from_settings(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "storage": StorageResource(
            home=str(settings.home),
            postgres_url=_secret("FRIREN_POSTGRES_URL") if settings.postgres_url else None,
        ),
        "bar_source": BarSourceResource(
            kind=settings.source,
            csv_dir=str(settings.csv_dir) if settings.csv_dir else None,
            alpaca_key_id=_secret("ALPACA_API_KEY_ID"),
            alpaca_secret_key=_secret("ALPACA_API_SECRET_KEY"),
            alpaca_feed=settings.alpaca_feed,
            alpaca_url_override=settings.alpaca_url_override,
            yfinance_auto_adjust=settings.yfinance_auto_adjust,
        ),
    }
