"""`friren`: the command line other tools script against. Output formats are stable.

Commands run against the Dagster instance in DAGSTER_HOME (default: this folder, where
dagster.yaml lives) so that every materialization is recorded and visible in the UI, and run the
jobs of the Definitions `dagster dev` loads (`cli_support`).
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import click

from friren_pipelines import cli_support
from friren_pipelines.monitoring.status import RUNS_LIMIT, SECTION_NAMES

if TYPE_CHECKING:
    import dagster as dg

    from friren_pipelines.core.bars import Timeframe
    from friren_pipelines.market_data.backfill import PlannedRun


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


class _OneLineErrors(click.Group):
    """Any failure ends in one line saying why (the cause, naming the input); the traceback and
    Dagster's step logs only with `--verbose`."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            if ctx.params.get("verbose"):
                raise
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise click.ClickException(f"{type(error).__name__}: {first}".rstrip(": ")) from None


@click.group(cls=_OneLineErrors)
@click.option("--verbose", is_flag=True, help="Show Dagster's step logs and full tracebacks.")
def main(verbose: bool) -> None:
    """friren-pipelines: market data and portfolio history, durable and queryable."""
    if verbose:
        from friren_pipelines.market_data.backfill import CONSOLE_LOG_LEVEL

        CONSOLE_LOG_LEVEL.set("INFO")


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
    from friren_pipelines.market_data.universe import UNIVERSE, WATCHLIST, register

    wanted = _symbols(",".join(tickers))
    instance = cli_support.instance(cli_support.settings())
    added = register(instance, UNIVERSE, wanted)
    if watchlist:
        added += [f"{s} (watchlist)" for s in register(instance, WATCHLIST, wanted)]
    click.echo(f"added: {', '.join(added) or 'nothing new'}")


@symbols.command("remove")
@click.argument("tickers", nargs=-1, required=True)
@click.option("--watchlist-only", is_flag=True, help="Remove from the watchlist only.")
def symbols_remove(tickers: Sequence[str], watchlist_only: bool) -> None:
    """Remove TICKERS (their stored data stays)."""
    instance = cli_support.instance(cli_support.settings())
    sets = ("watchlist",) if watchlist_only else ("universe", "watchlist")
    for symbol in _symbols(",".join(tickers)):
        for name in sets:
            if instance.has_dynamic_partition(name, symbol):
                instance.delete_dynamic_partition(name, symbol)
                click.echo(f"removed {symbol} from the {name}")


@symbols.command("list")
def symbols_list() -> None:
    """Print symbol,universe,watchlist as CSV."""
    instance = cli_support.instance(cli_support.settings())
    universe = instance.get_dynamic_partitions("universe")
    watchlist = set(instance.get_dynamic_partitions("watchlist"))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["symbol", "universe", "watchlist"])
    for symbol in sorted(set(universe) | watchlist):
        writer.writerow([symbol, symbol in universe, symbol in watchlist])


def run_backfill(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    tickers: Sequence[str],
    start: dt.date,
    end: dt.date,
    *,
    timeframes: Sequence[Timeframe],
    delete_missing: bool = False,
) -> list[str]:
    """Register the symbols, plan the runs, execute them with a progress bar; returns run ids.
    The runs replace the sessions from `start` to `end` and keep the partitions' other bars."""
    from tqdm import tqdm

    from friren_pipelines.market_data.backfill import BackfillError, execute, plan
    from friren_pipelines.market_data.universe import register, symbol_set

    runs = []
    for timeframe in timeframes:
        symbols = symbol_set(timeframe)
        new = register(instance, symbols, tickers)
        if new:
            click.echo(f"added to the {symbols.name}: {', '.join(new)}", err=True)
        runs += plan(instance, timeframe, tickers, start, end, delete_missing=delete_missing)
    if not runs:
        raise click.ClickException(f"no XNYS sessions between {start} and {end}")
    total = sum(r.keys for r in runs)
    with tqdm(total=total, unit="partition", file=sys.stderr, disable=None) as progress:

        def done(planned: PlannedRun, result: dg.ExecuteInProcessResult) -> None:
            progress.update(planned.keys)
            progress.set_postfix_str(f"{planned.timeframe.value} run {result.run_id[:8]}")

        try:
            return execute(instance, defs, runs, on_run_done=done)
        except BackfillError as error:
            raise click.ClickException(str(error)) from None


@main.command()
@click.option("--symbols", "symbol_list", required=True, help="Comma-separated tickers.")
@click.option("--start", required=True, help="First date, YYYY-MM-DD.")
@click.option("--end", required=True, help="Last date, YYYY-MM-DD (inclusive).")
@click.option("--timeframes", default="1d", show_default=True, help="Any of 1d,1min,5min.")
@click.option(
    "--delete-missing",
    is_flag=True,
    help="Delete stored sessions in the range that the source no longer has (else: an error).",
)
def backfill(symbol_list: str, start: str, end: str, timeframes: str, delete_missing: bool) -> None:
    """Materialize the bars (and what depends on them) of SYMBOLS between START and END.

    Only the sessions from START to END are replaced; the other stored bars of their partitions
    (the year for 1d, the week for 1min/5min) are kept."""
    first, last = _date(start), _date(end)
    if last < first:
        raise click.BadParameter(f"--end {end} is before --start {start}")
    from friren_pipelines.core import calendar

    try:  # before anything is registered or stored
        calendar.sessions(first, last)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    tickers, wanted = _symbols(symbol_list), _timeframes(timeframes)
    settings = cli_support.settings()
    from friren_pipelines.market_data.backfill import BackfillError, check_history_start

    try:
        check_history_start(first, settings.history_start)
    except BackfillError as error:
        raise click.ClickException(str(error)) from None
    instance = cli_support.instance(settings)
    defs = cli_support.definitions(settings)
    run_ids = run_backfill(
        instance, defs, tickers, first, last, timeframes=wanted, delete_missing=delete_missing
    )
    click.echo(f"{len(run_ids)} runs succeeded: {', '.join(run_ids)}")


def _plain(value: object) -> object:
    """Decimals in positional notation (0.000000, not 0E-6), everything else as Python prints it."""
    return format(value, "f") if isinstance(value, Decimal) else value


@main.command()
@click.argument("query")
def sql(query: str) -> None:
    """Run QUERY (SELECT) with DuckDB over the warehouse Parquet and the SQL store; print CSV.

    Parquet datasets by their name (`bars_1d`, `fills`); SQL tables as `sql.<name>`, or by their
    bare name when no dataset has it (`symbol_metadata`). Nothing is ever written."""
    from friren_pipelines.storage.views import QueryError, execute_read_only

    settings = cli_support.settings()
    try:
        cursor = execute_read_only(settings.home, query, postgres_url=settings.postgres_url)
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([column[0] for column in cursor.description or []])
    while rows := cursor.fetchmany(10_000):
        writer.writerows([[_plain(value) for value in row] for row in rows])


@main.command()
@click.option(
    "--csv", "as_csv", is_flag=True, help="CSV blocks (a header each), blank-line separated."
)
@click.option(
    "--section",
    "only",
    multiple=True,
    type=click.Choice(SECTION_NAMES),
    help="Print only this section (repeatable). Without `runs`, Dagster is not loaded.",
)
@click.option("--runs", default=RUNS_LIMIT, show_default=True, help="How many recent runs.")
def status(as_csv: bool, only: Sequence[str], runs: int) -> None:
    """Bars and symbols per timeframe, symbols with most data, staleness per symbol and
    timeframe (vs the last finished XNYS session), last runs, open notifications."""
    from friren_pipelines.monitoring import status as monitoring
    from friren_pipelines.storage.views import QueryError, connect_views

    settings = cli_support.settings()
    wanted = set(only or SECTION_NAMES)
    try:
        conn = connect_views(
            settings.home, postgres_url=settings.postgres_url, sql_tables=monitoring.SQL_TABLES
        )
    except QueryError as error:
        raise click.ClickException(str(error)) from None
    instance = cli_support.instance(settings) if "runs" in wanted else None
    found = monitoring.collect(conn, dt.datetime.now(dt.UTC), instance, runs=runs)
    chosen = [s for s in monitoring.sections(found) if s.name in wanted]
    if not as_csv:
        click.echo(monitoring.render_text(chosen), nl=False)
        return
    writer = csv.writer(sys.stdout, lineterminator="\n")
    for number, section in enumerate(chosen):
        if number:
            sys.stdout.write("\n")
        writer.writerow(["section", *section.columns])
        writer.writerows([[section.name, *(_plain(v) for v in row)] for row in section.rows])


@main.command()
def demo() -> None:
    """The main job on the embedded default: default universe, recent history, every asset."""
    from friren_pipelines.config import apply_dagster_environment
    from friren_pipelines.core import calendar
    from friren_pipelines.core.bars import Timeframe
    from friren_pipelines.market_data.backfill import BackfillError
    from friren_pipelines.market_data.universe import UNIVERSE, WATCHLIST, listed_symbols, register
    from friren_pipelines.portfolio.defs import materialize_portfolio
    from friren_pipelines.portfolio.demo import DEMO_INCEPTION

    settings = cli_support.settings()
    if settings.broker == "demo" and settings.history_start > DEMO_INCEPTION:
        raise click.ClickException(
            f"the demo account trades from {DEMO_INCEPTION}, before FRIREN_HISTORY_START="
            f"{settings.history_start}: its ledger could not be synced whole; set "
            f"FRIREN_HISTORY_START={DEMO_INCEPTION} or earlier"
        )
    dagster_home = apply_dagster_environment(settings)  # idempotent: `instance` applies it again
    instance = cli_support.instance(settings)
    defs = cli_support.definitions(settings)
    universe, watchlist = listed_symbols(UNIVERSE), listed_symbols(WATCHLIST)
    register(instance, UNIVERSE, universe)
    register(instance, WATCHLIST, watchlist)
    today = dt.date.today()
    recent = calendar.sessions(today - dt.timedelta(days=20), today)
    click.echo(f"source: {settings.source}; warehouse: {settings.home}")
    # Since January 1 of last year, or the partitions' first day if that is later.
    year_start = max(dt.date(today.year - 1, 1, 1), settings.history_start)
    run_backfill(instance, defs, universe, year_start, today, timeframes=[Timeframe.DAY1])
    intraday = [Timeframe.MIN1, Timeframe.MIN5]
    run_backfill(instance, defs, watchlist, recent[-10], recent[-1], timeframes=intraday)
    click.echo("portfolio of the demo account ...", err=True)
    try:
        materialize_portfolio(instance, defs, year_start, today)
    except BackfillError as error:
        raise click.ClickException(str(error)) from None
    sql_store = (
        "Postgres (FRIREN_POSTGRES_URL)" if settings.postgres_url else settings.embedded_sql_path
    )
    click.echo(
        f"\nDone. Parquet: {settings.home}/<asset>/...; SQL store: {sql_store}\n"
        f'Query:   .venv/bin/friren sql "select symbol, count(*) from bars_1d group by 1"\n'
        f"Open UI: DAGSTER_HOME={dagster_home} .venv/bin/dagster dev "
        "-w workspace.yaml  (then http://127.0.0.1:3000)"
    )


_register_domain_commands()
