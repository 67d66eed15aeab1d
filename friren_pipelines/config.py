"""Settings from environment variables: the one place that reads `FRIREN_*`.

Every variable has a safe default for the embedded setup (synthetic data, no servers, no keys).
A bad value raises `ConfigError` at load, naming the variable and what it accepts.
Secrets are kept out of `repr` so that logging a `Settings` never prints them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SOURCES = ("synthetic", "csv", "yfinance", "alpaca")
ALPACA_FEEDS = ("iex", "sip", "delayed_sip", "otc")


class ConfigError(ValueError):
    """An environment variable holds a value the platform cannot use."""


@dataclass(frozen=True)
class Settings:
    home: Path
    source: str
    csv_dir: Path | None
    postgres_url: str | None = field(repr=False)
    redis_url: str | None = field(repr=False)
    alpaca_key_id: str | None = field(repr=False)
    alpaca_secret_key: str | None = field(repr=False)
    alpaca_paper: bool
    alpaca_feed: str
    alpaca_url_override: str | None
    yfinance_auto_adjust: bool

    @property
    def embedded_sql_path(self) -> Path:
        """The DuckDB file used as SQL store when no Postgres URL is set."""
        return self.home / "friren.duckdb"

    @property
    def universe_file(self) -> Path:
        return self.home / "universe.txt"


def env_choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    """The variable's value, lower-cased, if it is one of `allowed` (empty or unset: `default`)."""
    value = env.get(name, default).strip().lower() or default
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not valid; allowed values: {', '.join(allowed)}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not valid; allowed values: true, false")


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    if not value.startswith(tuple(f"{s}://" for s in schemes)):
        allowed = ", ".join(f"{s}://..." for s in schemes)
        # The value may carry a password: name the variable, never echo the value.
        raise ConfigError(f"{name} is not a valid URL; expected one of: {allowed}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the `FRIREN_*` / `ALPACA_*` variables (defaults documented in the README)."""
    env = os.environ if env is None else env
    source = env_choice(env, "FRIREN_SOURCE", "synthetic", SOURCES)
    csv_dir_raw = env.get("FRIREN_CSV_DIR", "").strip()
    csv_dir = Path(csv_dir_raw).expanduser().resolve() if csv_dir_raw else None
    if source == "csv" and csv_dir is None:
        raise ConfigError("FRIREN_SOURCE=csv needs FRIREN_CSV_DIR: the folder of per-symbol files")
    if csv_dir is not None and not csv_dir.is_dir():
        raise ConfigError(f"FRIREN_CSV_DIR={str(csv_dir)!r} is not a directory")
    key_id = env.get("ALPACA_API_KEY_ID", "").strip() or None
    secret = env.get("ALPACA_API_SECRET_KEY", "").strip() or None
    if source == "alpaca" and not (key_id and secret):
        raise ConfigError(
            "FRIREN_SOURCE=alpaca needs ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY to be set"
        )
    return Settings(
        home=Path(env.get("FRIREN_HOME", "").strip() or "warehouse").expanduser().resolve(),
        source=source,
        csv_dir=csv_dir,
        postgres_url=_url(env, "FRIREN_POSTGRES_URL", ("postgresql", "postgres")),
        redis_url=_url(env, "FRIREN_REDIS_URL", ("redis", "rediss", "unix")),
        alpaca_key_id=key_id,
        alpaca_secret_key=secret,
        alpaca_paper=_flag(env, "ALPACA_PAPER", True),
        alpaca_feed=env_choice(env, "ALPACA_DATA_FEED", "iex", ALPACA_FEEDS),
        alpaca_url_override=env.get("ALPACA_URL_OVERRIDE", "").strip() or None,
        yfinance_auto_adjust=_flag(env, "FRIREN_YFINANCE_AUTO_ADJUST", False),
    )
