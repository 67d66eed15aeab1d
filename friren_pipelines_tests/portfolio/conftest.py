"""Fixtures for the portfolio tests: the CLI as the `friren` group will expose it, the
Definitions whose jobs the runs use, and the storage backend (embedded DuckDB or Postgres) as a
parameter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
import dagster as dg
import pytest
from click.testing import CliRunner, Result

from friren_pipelines.cli import main
from friren_pipelines.config import load_settings
from friren_pipelines.definitions import build_definitions
from friren_pipelines.portfolio.cli import COMMANDS


@pytest.fixture(params=["duckdb", "postgres"])
def backend_env(
    request: pytest.FixtureRequest, friren_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """friren_env on the embedded DuckDB, and again with FRIREN_POSTGRES_URL set."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("FRIREN_POSTGRES_URL", url)
        return {**friren_env, "FRIREN_POSTGRES_URL": url}
    return friren_env


@pytest.fixture
def friren() -> Callable[..., Result]:
    """Invoke `friren <args>` with the portfolio commands registered as the lead will."""
    group = click.Group("friren", commands={**main.commands, **{c.name: c for c in COMMANDS}})  # type: ignore[misc]

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(group, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def ledger_file(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / f"ledger_{len(list(tmp_path.glob('ledger_*')))}.csv"
        path.write_text(text.strip() + "\n")
        return path

    return write


def definitions() -> dg.Definitions:
    """The Definitions (with their resources) of the current environment, as the CLI builds them."""
    return build_definitions(load_settings())
