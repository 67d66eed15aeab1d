"""`friren fills import`, `friren positions`, `friren pnl`: the portfolio from the command line.

Output is CSV with a header (like `friren sql`), read from the warehouse Parquet, so it works
while the broker is unreachable. `fills import` stores the file's new fills, then materializes
the ledger assets through Dagster (recorded in the instance like any run), so
`friren sql "select * from realized_lots"` shows the lots right after.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import click

from friren_pipelines import cli_support

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
DEFAULT_IMPORT_ACCOUNT = "imported"
PNL_SCOPES = ("symbol", "strategy", "day")


def _print_query(sql: str, params: list[object] | None = None) -> None:
    from friren_pipelines.storage.views import connect_views

    conn = connect_views(cli_support.settings().home)
    try:
        cursor = conn.execute(sql, params or [])
    except Exception as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([column[0] for column in cursor.description or []])
    while found := cursor.fetchmany(10_000):
        writer.writerows(found)


def _has_dataset(name: str) -> bool:
    from friren_pipelines.storage.warehouse import Warehouse

    return bool(Warehouse(cli_support.settings().home).files(name))


@click.group("fills")
def fills() -> None:
    """The fills ledger: every execution, by account."""


@fills.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--account",
    default=DEFAULT_IMPORT_ACCOUNT,
    show_default=True,
    help="Account the fills belong to (letters, digits, . _ -).",
)
def fills_import(file: Path, account: str) -> None:
    """Import FILE (columns timestamp,symbol,side,qty,price[,fee,order_id,exec_id,strategy]).

    Every row is validated first; one bad row stores nothing and is reported with its line
    number. Fills already stored (same account and exec_id) are skipped, so re-importing a file
    adds nothing. Then positions, realized lots, performance and compliance are recomputed.
    """
    from friren_pipelines.core.fills import FillsFileError, parse_fills_csv
    from friren_pipelines.market_data.backfill import BackfillError
    from friren_pipelines.portfolio.defs import materialize_ledger
    from friren_pipelines.portfolio.store import import_fills
    from friren_pipelines.resources import outside_run, storage_resource

    if not ACCOUNT_NAME.match(account):
        raise click.BadParameter(
            f"{account!r}: use letters, digits, '.', '_' or '-'", param_hint="--account"
        )
    settings = cli_support.settings()
    try:
        parsed = parse_fills_csv(file, account=account)
    except FillsFileError as error:
        raise click.ClickException(str(error)) from None
    # Resolve the Dagster instance before storing anything: the recompute must be able to run.
    instance = cli_support.instance(settings)
    defs = cli_support.definitions(settings)
    storage = outside_run(storage_resource(settings))
    added = import_fills(storage, account, parsed)
    click.echo(
        f"{file}: {len(parsed)} fills read, {added} new, {len(parsed) - added} already stored "
        f"(account {account})",
        err=True,
    )
    try:
        run_id = materialize_ledger(instance, defs)
    except BackfillError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"ledger recomputed in run {run_id}", err=True)


@click.command("positions")
def positions() -> None:
    """Print the stored positions as CSV (account, symbol, side, qty, avg_entry_price, ...)."""
    if not _has_dataset("positions"):
        raise click.ClickException(
            "no positions stored yet: run `friren fills import <file>` or `friren demo`"
        )
    _print_query("SELECT * FROM positions ORDER BY account, symbol")


@click.command("pnl")
@click.option(
    "--by",
    "scope",
    type=click.Choice(PNL_SCOPES),
    default="symbol",
    show_default=True,
    help="Group realized and unrealized P&L by symbol, strategy or session date.",
)
def pnl(scope: str) -> None:
    """Print P&L per SCOPE as CSV: realized (net of fees), unrealized, lot statistics."""
    if not _has_dataset("performance"):
        raise click.ClickException(
            "no performance stored yet: run `friren fills import <file>` or `friren demo`"
        )
    _print_query(
        "SELECT account, key AS " + scope + ", realized_pnl, unrealized_pnl, closed_lots, "
        "win_rate, profit_factor, profit_factor_note, average_win, average_loss "
        "FROM performance WHERE scope = ? ORDER BY account, key",
        [scope],
    )


@click.group("splits")
def splits() -> None:
    """Stock splits applied to the ledger (lots, positions, compliance)."""


@splits.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def splits_import(file: Path) -> None:
    """Import FILE (columns symbol,date,ratio; date = ex-date, ratio = new:old such as 4:1).

    Every row is validated first; a bad row stores nothing. Then the ledger is recomputed.
    """
    from friren_pipelines.core.fills import FillsFileError, parse_splits_csv
    from friren_pipelines.market_data.backfill import BackfillError
    from friren_pipelines.portfolio.defs import materialize_ledger
    from friren_pipelines.portfolio.store import import_splits
    from friren_pipelines.resources import outside_run, storage_resource

    settings = cli_support.settings()
    try:
        parsed = parse_splits_csv(file)
    except FillsFileError as error:
        raise click.ClickException(str(error)) from None
    instance = cli_support.instance(settings)
    storage = outside_run(storage_resource(settings))
    click.echo(f"{file}: {import_splits(storage, parsed)} splits stored", err=True)
    defs = cli_support.definitions(settings)
    try:
        run_id = materialize_ledger(instance, defs)
    except BackfillError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"ledger recomputed in run {run_id}", err=True)


COMMANDS = [fills, splits, positions, pnl]
