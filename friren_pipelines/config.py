"""Settings from environment variables: the one module that reads (and writes) the environment.

Every variable the project uses is declared once in `VARIABLES` (name, default, what it accepts,
what it means); `load_settings` reads each of them into a `Settings`, and the README's
configuration table is `configuration_table()` (a test keeps the two equal). Every variable has a
safe default for the embedded setup (synthetic data, no servers, no keys). A bad value raises
`ConfigError` at load, naming the variable and what it accepts; a closed set (the market-data
source, the broker, the lot method, the Alpaca feed) refuses anything outside it. Secrets are
kept out of `repr`, so that logging a `Settings` never prints them.

Dagster reads its own `DAGSTER_*` variables from the process environment;
`apply_dagster_environment` sets the ones the project chooses for it, and is the only writer.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

SOURCES = ("synthetic", "csv", "yfinance", "alpaca")
ALPACA_FEEDS = ("iex", "sip", "delayed_sip", "otc")
BROKERS = ("demo", "csv", "alpaca")
LOT_METHODS = ("fifo", "average")  # core.lots.METHODS (a test keeps them equal)
DEFAULT_REDIS_PREFIX = "friren:"
# core.calendar.CALENDAR_START (a test keeps them equal; config stays free of pandas): no data
# can start before the first session the trading calendar knows.
EARLIEST_HISTORY_START = dt.date(1990, 1, 2)
FLAG_VALUES = {
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off"), False),
}

Kind = Literal[
    "folder", "file", "choice", "flag", "url", "secret", "text", "number", "count", "date"
]


class ConfigError(ValueError):
    """An environment variable holds a value the platform cannot use."""


@dataclass(frozen=True)
class Variable:
    """One environment variable, as `load_settings` reads it and the README documents it."""

    name: str
    kind: Kind
    meaning: str
    default: str = ""  # the value when unset or blank; "" = none
    choices: tuple[str, ...] = ()  # kind "choice": the closed set; kind "url": the schemes
    accepts: str = ""  # what the README says it accepts, when the kind does not say it
    shown_default: str = ""  # what the README says the default is, when the value does not say it

    def accepted(self) -> str:
        if self.kind == "choice":
            return ", ".join(f"`{c}`" for c in self.choices)
        if self.kind == "flag":
            return "`true`, `false`"
        return self.accepts

    def default_text(self) -> str:
        if self.shown_default:
            return self.shown_default
        return f"`{self.default}`" if self.default else "(none)"


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "FRIREN_HOME",
        "folder",
        "Data root: Parquet datasets and the embedded DuckDB file `friren.duckdb`",
        default="warehouse",
        accepts="a folder (created on first write)",
        shown_default="`./warehouse`",
    ),
    Variable("FRIREN_SOURCE", "choice", "Market data source", "synthetic", SOURCES),
    Variable(
        "FRIREN_CSV_DIR",
        "folder",
        "Folder of per-symbol CSV exports; required when `FRIREN_SOURCE=csv`",
        accepts="an existing folder",
    ),
    Variable(
        "FRIREN_POSTGRES_URL",
        "url",
        "The SQL store (PostgreSQL instead of the embedded DuckDB file)",
        choices=("postgresql", "postgres"),
        accepts="`postgresql://user:password@host:5432/db`",
        shown_default="(none: embedded DuckDB)",
    ),
    Variable(
        "FRIREN_SQL_TIMEOUT_SECONDS",
        "number",
        "Longest wait on the SQL store: connecting, one statement or transaction, another "
        "writer of the same partitions; a stalled store then fails naming it",
        default="300",
        accepts="seconds > 0",
    ),
    Variable(
        "FRIREN_REDIS_URL",
        "url",
        "Redis for the live account cache, rate limiter and statistics",
        choices=("redis", "rediss", "unix"),
        accepts="`redis://host:6379/0`",
        shown_default="(none: in-process cache)",
    ),
    Variable(
        "FRIREN_REDIS_PREFIX",
        "text",
        "Prefix of every Redis key (cache, rate limiter, statistics, latest bars)",
        default=DEFAULT_REDIS_PREFIX,
        accepts="text",
    ),
    Variable(
        "ALPACA_API_KEY_ID",
        "secret",
        "Alpaca key id; required for `FRIREN_SOURCE=alpaca` and `FRIREN_BROKER=alpaca`",
        accepts="a key (never printed)",
    ),
    Variable(
        "ALPACA_API_SECRET_KEY",
        "secret",
        "Alpaca secret key; required with `ALPACA_API_KEY_ID`",
        accepts="a key (never printed)",
    ),
    Variable("ALPACA_PAPER", "flag", "Paper (`true`) or live (`false`) trading endpoint", "true"),
    Variable("ALPACA_DATA_FEED", "choice", "Alpaca bars feed", "iex", ALPACA_FEEDS),
    Variable(
        "ALPACA_URL_OVERRIDE",
        "text",
        "Base URL for the Alpaca clients (tests point it at a local fake)",
        accepts="a URL",
    ),
    Variable(
        "FRIREN_YFINANCE_AUTO_ADJUST",
        "flag",
        "yfinance `auto_adjust` (passed explicitly on every request)",
        "false",
    ),
    Variable("FRIREN_BROKER", "choice", "Portfolio broker", "demo", BROKERS),
    Variable(
        "FRIREN_BROKER_CSV",
        "file",
        "Fills export read by the `csv` broker; required when `FRIREN_BROKER=csv`",
        accepts="a file",
    ),
    Variable(
        "FRIREN_BROKER_ACCOUNT",
        "text",
        "Account label of the `csv` broker's fills",
        default="csv",
        accepts="text",
    ),
    Variable(
        "FRIREN_LOT_METHOD",
        "choice",
        "Realized lots: first in first out, or average cost",
        "fifo",
        LOT_METHODS,
    ),
    Variable(
        "FRIREN_RISK_FREE_RATE",
        "number",
        "Annual risk-free rate for Sharpe and Sortino",
        default="0",
        accepts="an annual fraction above -1: 0.05 = 5 %",
    ),
    Variable(
        "FRIREN_HISTORY_START",
        "date",
        "First day the partitions offer (older backfills are refused): `1d` bars from its year, "
        "`1min`/`5min` bars from the week of the Monday on or before it, `fills` and "
        "`portfolio_snapshots` from the first XNYS session on or after it",
        default="2025-01-01",
        accepts="a date, `YYYY-MM-DD`, from 1990-01-02",
    ),
    Variable(
        "DAGSTER_HOME",
        "folder",
        "Dagster instance (runs, events); `dagster.yaml` keeps them under `warehouse/.dagster`, "
        "relative to the working directory, so run `friren` and `dagster dev` from this folder",
        accepts="an absolute folder holding `dagster.yaml`",
        shown_default="this folder (if it holds `dagster.yaml`, else `warehouse/.dagster`)",
    ),
    Variable(
        "FRIREN_DAGSTER_POSTGRES_URL",
        "url",
        "Database of the desk's Dagster instance (`DAGSTER_HOME=deploy/postgres`)",
        choices=("postgresql+psycopg2", "postgresql"),
        accepts="`postgresql+psycopg2://user:password@host:5432/dagster`",
    ),
    Variable(
        "DAGSTER_EVENT_BATCH_SIZE",
        "count",
        "Dagster stores a run's per-partition events in batches of this size (one INSERT on "
        "PostgreSQL; 0: one write per event); `friren` sets it, export it for `dagster dev`",
        default="1000",  # market_data.backfill.MAX_KEYS_PER_RUN: a run's events in one batch
        accepts="a whole number >= 0",
    ),
    Variable(
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS",
        "flag",
        "A run's plan is one event per asset instead of one per partition key (a failed run's "
        "keys then show as missing, not failed, in the asset's partition bar); `friren` sets it",
        "true",
    ),
)
_BY_NAME = {variable.name: variable for variable in VARIABLES}


@dataclass(frozen=True)
class Settings:
    home: Path
    source: str
    csv_dir: Path | None
    postgres_url: str | None = field(repr=False)
    sql_timeout_seconds: float
    redis_url: str | None = field(repr=False)
    redis_prefix: str
    alpaca_key_id: str | None = field(repr=False)
    alpaca_secret_key: str | None = field(repr=False)
    alpaca_paper: bool
    alpaca_feed: str
    alpaca_url_override: str | None
    yfinance_auto_adjust: bool
    broker: str
    broker_csv: Path | None
    broker_account: str
    lot_method: str
    risk_free_rate: float  # annual, as a fraction
    history_start: dt.date  # the first day the partitions offer
    dagster_home: Path | None  # None: chosen by `apply_dagster_environment`
    dagster_postgres_url: str | None = field(repr=False)
    dagster_event_batch_size: int
    dagster_emit_partition_subset: bool

    @property
    def embedded_sql_path(self) -> Path:
        """The DuckDB file used as SQL store when no Postgres URL is set."""
        return self.home / "friren.duckdb"


def _raw(env: Mapping[str, str], name: str) -> str:
    """The variable's value, stripped; its declared default when unset or blank."""
    return env.get(name, "").strip() or _BY_NAME[name].default


def _choice(env: Mapping[str, str], name: str) -> str:
    value = _raw(env, name).lower()
    allowed = _BY_NAME[name].choices
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not valid; allowed values: {', '.join(allowed)}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = _raw(env, name)
    if value.lower() not in FLAG_VALUES:
        raise ConfigError(f"{name}={value!r} is not valid; allowed values: true, false")
    return FLAG_VALUES[value.lower()]


def _url(env: Mapping[str, str], name: str) -> str | None:
    value = _raw(env, name)
    if not value:
        return None
    schemes = _BY_NAME[name].choices
    if not value.startswith(tuple(f"{s}://" for s in schemes)):
        allowed = ", ".join(f"{s}://..." for s in schemes)
        # The value may carry a password: name the variable, never echo the value.
        raise ConfigError(f"{name} is not a valid URL; expected one of: {allowed}")
    return value


def _text(env: Mapping[str, str], name: str) -> str | None:
    return _raw(env, name) or None


def _path(env: Mapping[str, str], name: str) -> Path | None:
    value = _raw(env, name)
    return Path(value).expanduser().resolve() if value else None


def _number(env: Mapping[str, str], name: str) -> float:
    value = _raw(env, name)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ConfigError(f"{name}={value!r} is not a number ({_BY_NAME[name].accepts})")
    return number


def _above(env: Mapping[str, str], name: str, bound: float) -> float:
    """A number greater than `bound` (a rate of -100 % or less compounds to nothing real)."""
    number = _number(env, name)
    if number <= bound:
        raise ConfigError(
            f"{name}={_raw(env, name)!r} is not valid; expected {_BY_NAME[name].accepts}"
        )
    return number


def _count(env: Mapping[str, str], name: str) -> int:
    value = _raw(env, name)
    if not value.isdigit():
        raise ConfigError(f"{name}={value!r} is not valid; expected {_BY_NAME[name].accepts}")
    return int(value)


def _date(env: Mapping[str, str], name: str) -> dt.date:
    value = _raw(env, name)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        day = None
    if day is None or day < EARLIEST_HISTORY_START:
        raise ConfigError(f"{name}={value!r} is not valid; expected {_BY_NAME[name].accepts}")
    return day


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every variable of `VARIABLES` (default: from the process environment)."""
    env = os.environ if env is None else env
    source = _choice(env, "FRIREN_SOURCE")
    csv_dir = _path(env, "FRIREN_CSV_DIR")
    if source == "csv" and csv_dir is None:
        raise ConfigError("FRIREN_SOURCE=csv needs FRIREN_CSV_DIR: the folder of per-symbol files")
    if csv_dir is not None and not csv_dir.is_dir():
        raise ConfigError(f"FRIREN_CSV_DIR={str(csv_dir)!r} is not a directory")
    key_id = _text(env, "ALPACA_API_KEY_ID")
    secret = _text(env, "ALPACA_API_SECRET_KEY")
    if source == "alpaca" and not (key_id and secret):
        raise ConfigError(
            "FRIREN_SOURCE=alpaca needs ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY to be set"
        )
    broker = _choice(env, "FRIREN_BROKER")
    broker_csv = _path(env, "FRIREN_BROKER_CSV")
    if broker == "csv" and broker_csv is None:
        raise ConfigError("FRIREN_BROKER=csv needs FRIREN_BROKER_CSV: the fills export to read")
    if broker == "alpaca" and not (key_id and secret):
        raise ConfigError(
            "FRIREN_BROKER=alpaca needs ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY to be set"
        )
    dagster_home = _text(env, "DAGSTER_HOME")
    return Settings(
        home=Path(_raw(env, "FRIREN_HOME")).expanduser().resolve(),
        source=source,
        csv_dir=csv_dir,
        postgres_url=_url(env, "FRIREN_POSTGRES_URL"),
        sql_timeout_seconds=_above(env, "FRIREN_SQL_TIMEOUT_SECONDS", 0.0),
        redis_url=_url(env, "FRIREN_REDIS_URL"),
        redis_prefix=_raw(env, "FRIREN_REDIS_PREFIX"),
        alpaca_key_id=key_id,
        alpaca_secret_key=secret,
        alpaca_paper=_flag(env, "ALPACA_PAPER"),
        alpaca_feed=_choice(env, "ALPACA_DATA_FEED"),
        alpaca_url_override=_text(env, "ALPACA_URL_OVERRIDE"),
        yfinance_auto_adjust=_flag(env, "FRIREN_YFINANCE_AUTO_ADJUST"),
        broker=broker,
        broker_csv=broker_csv,
        broker_account=_raw(env, "FRIREN_BROKER_ACCOUNT"),
        lot_method=_choice(env, "FRIREN_LOT_METHOD"),
        risk_free_rate=_above(env, "FRIREN_RISK_FREE_RATE", -1.0),
        history_start=_date(env, "FRIREN_HISTORY_START"),
        # Kept as given (Dagster wants it absolute and checks it), not resolved here.
        dagster_home=Path(dagster_home) if dagster_home else None,
        dagster_postgres_url=_url(env, "FRIREN_DAGSTER_POSTGRES_URL"),
        dagster_event_batch_size=_count(env, "DAGSTER_EVENT_BATCH_SIZE"),
        dagster_emit_partition_subset=_flag(env, "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"),
    )


def apply_dagster_environment(settings: Settings) -> Path:
    """Set the variables Dagster reads itself, before the CLI opens its instance; returns the
    Dagster home. The only writer of the process environment.

    - DAGSTER_HOME, when unset: the working directory if it holds `dagster.yaml`, else
      `warehouse/.dagster` (created).
    - The switches for large single-run backfills, read when a run is created and when its
      events are stored: the run's plan is one event per asset instead of one per partition key,
      and per-key materializations are written in batches (one INSERT on PostgreSQL storage).
      Each unbatched event costs 5-30 ms.
    """
    home = settings.dagster_home
    if home is None:
        cwd = Path.cwd()
        home = (cwd if (cwd / "dagster.yaml").exists() else Path("warehouse/.dagster")).resolve()
        home.mkdir(parents=True, exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
    os.environ["DAGSTER_EVENT_BATCH_SIZE"] = str(settings.dagster_event_batch_size)
    os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = (
        "1" if settings.dagster_emit_partition_subset else "0"
    )
    return home


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every secret replaced by ***: whatever a broker, a driver or a server echoes,
    no key, token or password leaves through an error, a log line or an event. A URL secret
    also hides its password alone, raw and decoded."""
    hidden: set[str] = set()
    for secret in filter(None, secrets):
        hidden.add(secret)
        if "://" in secret:
            password = urlsplit(secret).password
            hidden |= {password, unquote(password)} if password else set()
    for value in sorted(hidden, key=len, reverse=True):  # a URL before the password inside it
        text = text.replace(value, "***")
    return text


def configuration_table() -> str:
    """The README's configuration table (Markdown), rendered from `VARIABLES`."""
    lines = ["| Variable | Default | Accepts | Meaning |", "| --- | --- | --- | --- |"]
    for variable in VARIABLES:
        lines.append(
            f"| `{variable.name}` | {variable.default_text()} | {variable.accepted()} "
            f"| {variable.meaning} |"
        )
    return "\n".join(lines) + "\n"
