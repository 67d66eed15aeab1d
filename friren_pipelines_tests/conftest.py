"""Shared fixtures: real Postgres (a database per test session), real Redis (a key prefix per
test), a temporary Dagster instance, isolated settings, and the recorded data in ../shared.

Locally, tests that need a server skip with the reason when it is unreachable; under CI=true an
unreachable server fails them instead, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from friren_pipelines.config import Settings, load_settings

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POSTGRES_ADMIN_URL = os.environ.get(
    "FRIREN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get("FRIREN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is unreachable ({type(error).__name__}: {error})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI needs it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        _unavailable("../shared/data", FileNotFoundError(str(SHARED_DATA)))
    return SHARED_DATA


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh database for this test session, dropped at the end."""
    import psycopg

    name = f"friren_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        _unavailable("PostgreSQL", error)
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """The session database, emptied of project tables after each test."""
    import psycopg

    yield postgres_server_url
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis URL plus a unique key prefix for this test (FRIREN_REDIS_PREFIX); keys are removed after."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        _unavailable("Redis", error)
    prefix = f"friren-test-{uuid.uuid4().hex[:10]}:"
    os.environ["FRIREN_REDIS_PREFIX"] = prefix
    yield REDIS_TEST_URL
    os.environ.pop("FRIREN_REDIS_PREFIX", None)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def friren_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Isolated FRIREN_* environment: warehouse and Dagster home under tmp_path, synthetic source,
    partitions from the calendar's first session (tests backfill years from 1995 on)."""
    for name in list(os.environ):
        if name.startswith(("FRIREN_", "ALPACA_")) and not name.startswith("FRIREN_TEST_"):
            monkeypatch.delenv(name)
    env = {
        "FRIREN_HOME": str(tmp_path / "warehouse"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "FRIREN_HISTORY_START": "1990-01-02",
    }
    (tmp_path / "dagster_home").mkdir()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def settings(friren_env: dict[str, str]) -> Settings:
    return load_settings()
