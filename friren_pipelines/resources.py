"""Dagster resources, built from the settings in one place (`build_resources`).

Secrets (database and Redis URLs, broker keys) reach Dagster as `dg.EnvVar`s: the UI and the run
config show the variable's name, never its value, and Dagster reads the value when a run starts.
Outside a run (the CLI), `outside_run(resource)` has Dagster read them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, cast

import dagster as dg
from pydantic import Field, PrivateAttr

from friren_pipelines.account.resource import LiveAccount
from friren_pipelines.config import DEFAULT_REDIS_PREFIX, SOURCES, ConfigError, Settings
from friren_pipelines.portfolio.resources import BrokerResource, LedgerResource
from friren_pipelines.sources.base import BarSource
from friren_pipelines.storage.sql import DEFAULT_TIMEOUT_SECONDS, SqlStore, open_sql_store
from friren_pipelines.storage.warehouse import Warehouse
from friren_pipelines.storage.write import publish_journaled

R = TypeVar("R", bound=dg.ConfigurableResource)


def outside_run(resource: R) -> R:
    """The resource as a run would see it, its `EnvVar`s read: for the CLI and tests."""
    with dg.build_resources({"resource": resource}) as built:
        return cast(R, built.resource)


class StorageResource(dg.ConfigurableResource):
    """The warehouse (Parquet under `home`) and the SQL store (Postgres if `postgres_url`, else
    the embedded DuckDB file under `home`). On first use by each run the schema is migrated and
    the files of a write killed after its commit are put in place (`publish_journaled`)."""

    home: str
    postgres_url: str | None = Field(default=None, repr=False)
    sql_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    _store: SqlStore | None = PrivateAttr(default=None)

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(Path(self.home))

    @property
    def sql(self) -> SqlStore:
        if self._store is None:
            store = open_sql_store(
                self.postgres_url, Path(self.home) / "friren.duckdb", self.sql_timeout_seconds
            )
            store.migrate()
            self._store = store
            publish_journaled(self)
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
    redis_url: str | None = Field(default=None, repr=False)  # the broker rate limiter's
    redis_prefix: str = DEFAULT_REDIS_PREFIX
    _source: BarSource | None = PrivateAttr(default=None)

    def open(self) -> BarSource:
        if self._source is None:
            self._source = self._build()
        return self._source

    def _build(self) -> BarSource:
        if self.kind == "synthetic":
            from friren_pipelines.sources.synthetic import SyntheticBarSource

            return SyntheticBarSource()
        if self.kind == "csv":
            from friren_pipelines.sources.csv_files import CsvBarSource

            return CsvBarSource(Path(self.csv_dir or "."))
        if self.kind == "yfinance":
            from friren_pipelines.sources.yahoo import YahooBarSource

            return YahooBarSource(auto_adjust=self.yfinance_auto_adjust)
        if self.kind == "alpaca":
            from friren_pipelines.account.rate_limit import broker_rate_limiter
            from friren_pipelines.sources.alpaca_bars import AlpacaBarSource

            return AlpacaBarSource(
                key_id=self.alpaca_key_id or "",
                secret_key=self.alpaca_secret_key or "",
                feed=self.alpaca_feed,
                url_override=self.alpaca_url_override,
                limiter=broker_rate_limiter(self.redis_url, self.redis_prefix),
            )
        # A typo must never become synthetic data.
        raise ConfigError(
            f"bar_source kind={self.kind!r} is not valid; allowed values: {', '.join(SOURCES)}"
        )


def secret(name: str, value: str | None) -> dg.EnvVar | None:
    """A secret that is set, as the name of its variable (Dagster reads it when a run starts)."""
    return dg.EnvVar(name) if value else None


def live_account(settings: Settings, **options: Any) -> LiveAccount:
    """The live account of these settings (`options`: its other fields, such as `ttl_seconds`)."""
    return LiveAccount(
        alpaca_key_id=secret("ALPACA_API_KEY_ID", settings.alpaca_key_id),
        alpaca_secret_key=secret("ALPACA_API_SECRET_KEY", settings.alpaca_secret_key),
        alpaca_paper=settings.alpaca_paper,
        alpaca_url_override=settings.alpaca_url_override,
        redis_url=secret("FRIREN_REDIS_URL", settings.redis_url),
        redis_prefix=settings.redis_prefix,
        **options,
    )


def storage_resource(settings: Settings) -> StorageResource:
    """The warehouse and SQL store of these settings (the database URL as an `EnvVar`)."""
    return StorageResource(
        home=str(settings.home),
        postgres_url=secret("FRIREN_POSTGRES_URL", settings.postgres_url),
        sql_timeout_seconds=settings.sql_timeout_seconds,
    )


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Every resource of the Definitions: `storage`, `bar_source`, `broker` and `ledger`."""
    alpaca_broker = settings.broker == "alpaca"
    return {
        "storage": storage_resource(settings),
        "bar_source": BarSourceResource(
            kind=settings.source,
            csv_dir=str(settings.csv_dir) if settings.csv_dir else None,
            alpaca_key_id=secret("ALPACA_API_KEY_ID", settings.alpaca_key_id),
            alpaca_secret_key=secret("ALPACA_API_SECRET_KEY", settings.alpaca_secret_key),
            alpaca_feed=settings.alpaca_feed,
            alpaca_url_override=settings.alpaca_url_override,
            yfinance_auto_adjust=settings.yfinance_auto_adjust,
            redis_url=secret("FRIREN_REDIS_URL", settings.redis_url),
            redis_prefix=settings.redis_prefix,
        ),
        "broker": BrokerResource(
            kind=settings.broker,
            csv_path=str(settings.broker_csv) if settings.broker_csv else None,
            csv_account=settings.broker_account,
            alpaca_key_id=secret("ALPACA_API_KEY_ID", settings.alpaca_key_id)
            if alpaca_broker
            else None,
            alpaca_secret_key=secret("ALPACA_API_SECRET_KEY", settings.alpaca_secret_key)
            if alpaca_broker
            else None,
            alpaca_paper=settings.alpaca_paper,
            alpaca_url_override=settings.alpaca_url_override,
            # Today's Alpaca values come from the cached account (shared through Redis if set).
            live_account=live_account(settings) if alpaca_broker else None,
        ),
        "ledger": LedgerResource(
            lot_method=settings.lot_method, annual_risk_free_rate=settings.risk_free_rate
        ),
    }
