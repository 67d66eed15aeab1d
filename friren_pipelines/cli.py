"""`friren`: the command line other tools script against. Output formats are stable.

Commands run against the Dagster instance in DAGSTER_HOME (default: this folder, where
dagster.yaml lives) so that every materialization is recorded and visible in the UI.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from friren_pipelines.config import Settings

if TYPE_CHECKING:
    import dagster as dg

    from friren_pipelines.core.bars import Timeframe
    from friren_pipelines.market_data.backfill import PlannedRun


def _instance() -> dg.DagsterInstance:
    import dagster as dg

    if not os.environ.get("DAGSTER_HOME"):
        home = Path.cwd() if (Path.cwd() / "dagster.yaml").exists() else Path("warehouse/.dagster")
        home.mkdir(parents=True, exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home.resolve())
    return dg.DagsterInstance.get()


def _symbols(text: str) -> list[str]:
    from friren_pipelines.core.bars import normalize_symbol

    try:
        return [normalize_symbol(s) for s in text.split(",") if s.strip()]
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _timeframes(text: str) -> list[Timeframe]:
    from friren_pipelines.core.bars import Timeframe

    try:
        return [Timeframe.parse(t) for t in text.split(",") if t.strip()]
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _settings() -> Settings:
    from friren_pipelines.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.group()
def main() -> None:
    """friren-pipelines: market data and portfolio history, durable and queryable."""


def _register_domain_commands() -> None:
    from friren_pipelines.account.cli import account
    from friren_pipelines.portfolio.cli import COMMANDS as PORTFOLIO_COMMANDS

    for command in [*PORTFOLIO_COMMANDS, account]:
        main.add_command(command)


@main.group()
def symbols() -> None:
    """Manage the daily universe and the intraday watchlist (Dagster dynamic partitions)."""


@symbols.command("add")
@click.argument("tickers", nargs=-1, required=True)
@click.option("--watchlist", is_flag=True, help="Also add them to the intraday watchlist.")
def symbols_add(tickers: Sequence[str], watchlist: bool) -> None:
    """Add TICKERS to the universe (and the watchlist)."""
    from friren_pipelines.market_data.backfill import register

    wanted = _symbols(",".join(tickers))
    instance = _instance()
    added = register(instance, "universe", wanted)
    if watchlist:
        added += [f"{s} (watchlist)" for s in register(instance, "watchlist", wanted)]
    click.echo(f"added: {', '.join(added) or 'nothing new'}")


@symbols.command("remove")
@click.argument("tickers", nargs=-1, required=True)
@click.option("--watchlist-only", is_flag=True, help="Remove from the watchlist only.")
def symbols_remove(tickers: Sequence[str], watchlist_only: bool) -> None:
    """Remove TICKERS (their stored data stays)."""
    instance = _instance()
    sets = ("watchlist",) if watchlist_only else ("universe", "watchlist")
    for symbol in _symbols(",".join(tickers)):
        for name in sets:
            if instance.has_dynamic_partition(name, symbol):
                instance.delete_dynamic_partition(name, symbol)
                click.echo(f"removed {symbol} from the {name}")


@symbols.command("list")
def symbols_list() -> None:
    """Print symbol,universe,watchlist as CSV."""
    instance = _instance()
    universe = instance.get_dynamic_partitions("universe")
    watchlist = set(instance.get_dynamic_partitions("watchlist"))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["symbol", "universe", "watchlist"])
    for symbol in sorted(set(universe) | watchlist):
        writer.writerow([symbol, symbol in universe, symbol in watchlist])


def run_backfill(
    tickers: Sequence[str], start: dt.date, end: dt.date, timeframes: Sequence[Timeframe]
) -> list[str]:
    """Register the symbols, plan the runs, execute them with a progress bar; returns run ids."""
    from tqdm import tqdm

    from friren_pipelines.market_data.backfill import (
        BackfillError,
        execute,
        plan,
        register,
        symbol_set,
    )
    from friren_pipelines.market_data.pipeline import timeframe_assets
    from friren_pipelines.resources import resources_from_settings

    resources = resources_from_settings(_settings())
    instance = _instance()
    runs = []
    for timeframe in timeframes:
        set_name = symbol_set(timeframe).name or ""
        new = register(instance, set_name, tickers)
        if new:
            click.echo(f"added to the {set_name}: {', '.join(new)}", err=True)
        runs += plan(instance, timeframe, tickers, start, end)
    if not runs:
        raise click.ClickException(f"no XNYS sessions between {start} and {end}")
    total = sum(r.keys for r in runs)
    with tqdm(total=total, unit="partition", file=sys.stderr, disable=None) as progress:

        def done(planned: PlannedRun, result: dg.ExecuteInProcessResult) -> None:
            progress.update(planned.keys)
            progress.set_postfix_str(f"{planned.timeframe.value} run {result.run_id[:8]}")

        try:
            return execute(
                instance,
                resources,
                runs,
                timeframe_assets,
                on_run_done=done,
            )
        except BackfillError as error:
            raise click.ClickException(str(error)) from None


@main.command()
@click.option("--symbols", "symbol_list", required=True, help="Comma-separated tickers.")
@click.option("--start", required=True, help="First date, YYYY-MM-DD.")
@click.option("--end", required=True, help="Last date, YYYY-MM-DD (inclusive).")
@click.option("--timeframes", default="1d", show_default=True, help="Any of 1d,1min,5min.")
def backfill(symbol_list: str, start: str, end: str, timeframes: str) -> None:
    """Materialize the bars (and what depends on them) of SYMBOLS between START and END."""
    first, last = _date(start), _date(end)
    if last < first:
        raise click.BadParameter(f"--end {end} is before --start {start}")
    run_ids = run_backfill(_symbols(symbol_list), first, last, _timeframes(timeframes))
    click.echo(f"{len(run_ids)} runs succeeded: {', '.join(run_ids)}")


def _plain(value: object) -> object:
    """Decimals in positional notation (0.000000, not 0E-6), everything else as Python prints it."""
    return format(value, "f") if isinstance(value, Decimal) else value


@main.command()
@click.argument("query")
def sql(query: str) -> None:
    """Run QUERY with DuckDB over the warehouse Parquet and print CSV with a header."""
    from friren_pipelines.storage.views import connect_views

    conn = connect_views(_settings().home)
    try:
        cursor = conn.execute(query)
    except Exception as error:
        message = str(error).splitlines()[0]
        if "does not exist" in message:
            views = [
                row[0]
                for row in conn.execute(
                    "SELECT view_name FROM duckdb_views() WHERE NOT internal"
                ).fetchall()
            ]
            message += f" (views: {', '.join(sorted(views)) or 'none'}; a dataset appears once materialized)"
        raise click.ClickException(message) from None
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([column[0] for column in cursor.description or []])
    while rows := cursor.fetchmany(10_000):
        writer.writerows([[_plain(value) for value in row] for row in rows])


@main.command()
def demo() -> None:
    """The main job on the embedded default: default universe, recent history, every asset."""
    from friren_pipelines.core import calendar
    from friren_pipelines.core.bars import Timeframe
    from friren_pipelines.market_data.backfill import BackfillError, default_symbols, register
    from friren_pipelines.portfolio.defs import materialize_portfolio, portfolio_resources
    from friren_pipelines.resources import resources_from_settings

    settings = _settings()
    instance = _instance()
    universe, watchlist = default_symbols("universe.txt"), default_symbols("watchlist.txt")
    register(instance, "universe", universe)
    register(instance, "watchlist", watchlist)
    today = dt.date.today()
    recent = calendar.sessions(today - dt.timedelta(days=20), today)
    click.echo(f"source: {settings.source}; warehouse: {settings.home}")
    run_backfill(universe, dt.date(today.year - 1, 1, 1), today, [Timeframe.DAY1])
    run_backfill(watchlist, recent[-10], recent[-1], [Timeframe.MIN1, Timeframe.MIN5])
    click.echo("portfolio of the demo account ...", err=True)
    resources = {**resources_from_settings(settings), **portfolio_resources(settings)}
    try:
        materialize_portfolio(instance, resources, dt.date(today.year - 1, 1, 1), today)
    except BackfillError as error:
        raise click.ClickException(str(error)) from None
    sql_store = (
        "Postgres (FRIREN_POSTGRES_URL)" if settings.postgres_url else settings.embedded_sql_path
    )
    click.echo(
        f"\nDone. Parquet: {settings.home}/<asset>/...; SQL store: {sql_store}\n"
        f'Query:   .venv/bin/friren sql "select symbol, count(*) from bars_1d group by 1"\n'
        f"Open UI: DAGSTER_HOME={os.environ['DAGSTER_HOME']} .venv/bin/dagster dev "
        "-w workspace.yaml  (then http://127.0.0.1:3000)"
    )


_register_domain_commands()
