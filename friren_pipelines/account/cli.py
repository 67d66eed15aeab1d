"""`friren account`: the live account as the cache sees it, its age and the cache counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from friren_pipelines import cli_support
from friren_pipelines.config import ConfigError

if TYPE_CHECKING:
    from friren_pipelines.account.snapshot import AccountSnapshot
    from friren_pipelines.account.stats import CacheStatistics


def format_snapshot(snapshot: AccountSnapshot) -> list[str]:
    pct = snapshot.day_pl_pct
    freshness = "STALE (broker refresh failing)" if snapshot.stale else "fresh"
    return [
        f"portfolio value          {snapshot.portfolio_value:>16} USD",
        f"equity                   {snapshot.equity:>16} USD",
        f"last equity              {snapshot.last_equity:>16} USD",
        f"day P&L                  {snapshot.day_pl:>16} USD"
        + (f" ({pct:+} %)" if pct is not None else ""),
        f"cash                     {snapshot.cash:>16} USD",
        f"buying power             {snapshot.buying_power:>16} USD",
        f"day-trading buying power {snapshot.daytrading_buying_power:>16} USD",
        f"status                   {snapshot.status}",
        f"fetched at               {snapshot.fetched_at.isoformat()}",
        f"age                      {snapshot.age_seconds:.2f} s, {freshness}",
    ]


def format_statistics(stats: CacheStatistics) -> list[str]:
    """The counters; the degradation's reason has a line of its own (`format_degraded`)."""
    return [
        f"{name:<24} {value}"
        for name, value in stats.as_metadata().items()
        if name != "degraded_reason"
    ]


def format_degraded(reason: str | None) -> list[str]:
    """One line when the shared cache is unreachable, none otherwise."""
    return [f"DEGRADED                 {reason}"] if reason else []


@click.command("account")
def account() -> None:
    """Print the live account snapshot, its age, its health and the cache statistics.

    Exits with status 1 when no account value young enough is available. With Redis
    unreachable the account is served from this process (one DEGRADED line says so), exit 0.
    """
    # Dagster, redis and the account modules load when the command runs, not for `friren --help`.
    from friren_pipelines.account.cache import AccountUnavailableError
    from friren_pipelines.resources import live_account, outside_run

    live = outside_run(live_account(cli_support.settings()))
    try:
        snapshot = live.snapshot()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    except AccountUnavailableError as error:
        click.echo(f"account unavailable: {error}", err=True)
        available = False
    else:
        click.echo("\n".join(format_snapshot(snapshot)))
        health = live.is_account_healthy()
        click.echo(f"health                   {'; '.join(health.reasons) or 'ok'}")
        available = True
    statistics = live.statistics()
    for line in format_degraded(statistics.degraded):
        click.echo(line)
    click.echo("\ncache statistics")
    click.echo("\n".join(format_statistics(statistics)))
    if not available:
        raise click.exceptions.Exit(1)
