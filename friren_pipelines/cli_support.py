"""What the `friren` commands share: the settings, the Dagster instance and the Definitions.

Dagster and the assets are imported inside the functions, so that `friren --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from friren_pipelines.config import ConfigError, Settings, apply_dagster_environment, load_settings

if TYPE_CHECKING:
    import dagster as dg


def settings() -> Settings:
    """The settings, or the command stops with the message naming the bad variable."""
    try:
        return load_settings()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def instance(settings: Settings) -> dg.DagsterInstance:
    """The Dagster instance of DAGSTER_HOME (default: this folder, where dagster.yaml lives), so
    that every run of a command is recorded and visible in the UI; runs an earlier command was
    killed in are marked failed first."""
    import dagster as dg

    from friren_pipelines.market_data.backfill import fail_abandoned_runs

    apply_dagster_environment(settings)
    instance = dg.DagsterInstance.get()
    fail_abandoned_runs(instance)
    return instance


def definitions(settings: Settings) -> dg.Definitions:
    """The Definitions `dagster dev` loads, built from these settings: the commands run its jobs."""
    from friren_pipelines.definitions import build_definitions

    return build_definitions(settings)
