"""Bars assets (1min, 5min, 1d) and their checks: source → validation → Parquet + SQL.

A run covers many (symbol, period) keys and reads the source once for all of them. Bars that
break an ERROR rule of `core.bars` stop the run before anything is written; real-data quirks
(WARNING rules) are stored as delivered and reported. After the write, a blocking check reads the
stored partitions back and validates them again, so downstream assets never read bad bars.

A run of `friren backfill` carries the sessions it asked for (`backfill.SessionRange`, run tags)
and writes each partition merged (`merge_sessions`): the fetched bars replace the stored ones of
those sessions only, so a week's backfill keeps the rest of its year. A run without the tags (UI
backfill, sensor) replaces its partitions whole with what the source returns.
"""

import dataclasses
import datetime as dt
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pa_ds

from friren_pipelines.core import calendar
from friren_pipelines.core.bars import (
    BAR_SCHEMA,
    BarIssue,
    Severity,
    Timeframe,
    from_arrow,
    last_finished_bar,
    raise_on_errors,
    to_arrow,
    validate_bars,
)
from friren_pipelines.market_data.backfill import SessionRange
from friren_pipelines.market_data.metadata import (
    add_partition_metadata,
    column_schema,
    previews,
    record_run_totals,
)
from friren_pipelines.market_data.partitions import (
    BarsPartition,
    bars_partitions,
    parse_partition,
    period_of,
    run_partitions,
)
from friren_pipelines.resources import BarSourceResource, StorageResource
from friren_pipelines.sources.base import BarSource
from friren_pipelines.storage.sql import Slice, count_slices
from friren_pipelines.storage.tables import BARS, SYMBOL_METADATA
from friren_pipelines.storage.write import Piece, Refresh, Stores, replace

QUIRKS_LOGGED = 20
# bars_quality warns when more than this share of the checked bars is quirky: real daily data
# shows well under 1 % (Yahoo SPY 2015: 2 of 252); more suggests a broken feed, not quirks.
QUIRK_SHARE_LIMIT = 0.05
_SHOWN = [c for c in BAR_SCHEMA.names if c not in ("timeframe", "source")]


def fetch_partitions(
    source: BarSource,
    timeframe: Timeframe,
    partitions: Sequence[BarsPartition],
    now: pd.Timestamp | None = None,
    *,
    may_be_empty: Collection[str] = (),
) -> pd.DataFrame:
    """One bulk read covering every partition, cut back to exactly the partitions' rows.

    Bars still forming at `now` (default: the current time) are left out, so a partial bar is
    never stored as final; their count is in `attrs["unfinished_bars"]`. Raises ValueError naming
    the partitions the source had no bars for (missing bars), but for the keys in `may_be_empty`
    (whose stored bars the caller reconciles, `merge_sessions`).
    """
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    symbols = sorted({p.symbol for p in partitions})
    start = min(p.first for p in partitions)
    end = min(max(p.last for p in partitions), calendar.session_of(now))
    fetched = source.fetch_bars(symbols, timeframe, start, end)
    last = last_finished_bar(timeframe, now)
    finished = fetched["timestamp"] <= last if last is not None else fetched["timestamp"].isna()
    bars = fetched[finished.to_numpy()].reset_index(drop=True)
    bars.attrs = {**fetched.attrs, "unfinished_bars": int((~finished).sum())}
    ranges = partition_rows(bars, partitions)
    allowed = set(may_be_empty)
    missing = [
        partition.key
        for partition, rows in ranges
        if rows.start == rows.stop and partition.key not in allowed
    ]
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise ValueError(f"{source.name} returned no {timeframe.value} bars for {shown}")
    chosen = bars.take(np.concatenate([np.arange(r.start, r.stop) for _, r in ranges]))
    chosen = chosen.reset_index(drop=True)
    chosen.attrs = dict(bars.attrs)
    return chosen


def stored_in_sessions(stored: pd.DataFrame, sessions: SessionRange) -> pd.Series:
    """Which rows of `stored` bars belong to the requested sessions (a boolean mask)."""
    days = stored["session_date"]
    return (days >= sessions.first) & (days <= sessions.last)


def merge_sessions(
    stored: pd.DataFrame,
    fetched: pd.DataFrame,
    sessions: SessionRange,
    timeframe: Timeframe,
    source: str,
) -> pd.DataFrame:
    """The partitions' bars after a backfill of the requested `sessions`, sorted by symbol then
    timestamp: in those sessions the `fetched` bars (the stored ones replaced); in the other
    sessions the stored bars kept as they are, and the fetched bars of sessions with none stored
    added (a first backfill of a partition fills it whole). Carries `fetched`'s attrs plus
    `kept_bars` (stored bars of other sessions) and `deleted_sessions`.

    A stored session of the range the source returned no bars for is refused, in one line naming
    each symbol and its sessions, unless `sessions.delete_missing`: then it is deleted. Both
    frames are in the `core.bars` layout; the merge goes through Arrow, so it gives the same rows
    and types (and the same Parquet bytes) as storing the fetched bars alone would.
    """
    inside = stored_in_sessions(stored, sessions).to_numpy()
    fetched_inside = stored_in_sessions(fetched, sessions).to_numpy()
    stored_days = pd.MultiIndex.from_arrays([stored["symbol"], stored["session_date"]])
    fetched_days = pd.MultiIndex.from_arrays([fetched["symbol"], fetched["session_date"]])
    held = stored_days[inside].unique()
    gone = held[~held.isin(fetched_days[fetched_inside])]
    lost: dict[str, list[dt.date]] = {}
    for symbol, day in gone:
        lost.setdefault(str(symbol), []).append(day)
    if lost and not sessions.delete_missing:
        raise ValueError(
            f"{source} returned no {timeframe.value} bars for stored sessions "
            + "; ".join(f"{symbol} {_days(days)}" for symbol, days in sorted(lost.items()))
            + ": nothing was changed; pass --delete-missing to delete them"
        )
    kept = stored[~inside]
    added = fetched_inside | ~fetched_days.isin(stored_days[~inside])
    table = pa.concat_tables([to_arrow(kept), to_arrow(fetched[added])])
    merged = from_arrow(table.sort_by([("symbol", "ascending"), ("timestamp", "ascending")]))
    merged.attrs = {
        **fetched.attrs,
        "kept_bars": len(kept),
        "deleted_sessions": sum(len(days) for days in lost.values()),
    }
    return merged


def _days(days: Sequence[dt.date], shown: int = 10) -> str:
    ordered = sorted(days)
    text = ", ".join(day.isoformat() for day in ordered[:shown])
    return text + (f" and {len(ordered) - shown} more" if len(ordered) > shown else "")


def _window(partition: BarsPartition) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The partition's bars as a UTC time range: its days from New York midnight to midnight."""
    start = pd.Timestamp(partition.first, tz=calendar.NEW_YORK)
    end = pd.Timestamp(partition.last + dt.timedelta(days=1), tz=calendar.NEW_YORK)
    return start.tz_convert("UTC"), end.tz_convert("UTC")


def partition_slice(timeframe: Timeframe, partition: BarsPartition) -> Slice:
    start, end = _window(partition)
    return Slice(
        (("symbol", partition.symbol), ("timeframe", timeframe.value)),
        "timestamp",
        start.to_pydatetime(),
        end.to_pydatetime(),
    )


def partition_rows(
    bars: pd.DataFrame, partitions: Sequence[BarsPartition]
) -> list[tuple[BarsPartition, slice]]:
    """Each partition's rows in `bars`, which must be sorted by symbol then timestamp (as sources
    and `fetch_partitions` deliver them): a binary search per partition instead of a mask."""
    if bars.empty:
        return [(partition, slice(0, 0)) for partition in partitions]
    symbols = bars["symbol"].to_numpy()
    stamps = pd.DatetimeIndex(bars["timestamp"]).as_unit("ns").asi8
    starts = np.flatnonzero(np.concatenate(([True], symbols[1:] != symbols[:-1])))
    ends = np.append(starts[1:], len(symbols)).astype(np.int64)
    falls = stamps[1:] < stamps[:-1]
    falls[ends[:-1] - 1] = False  # a new symbol may start earlier than the last one ended
    runs = {symbols[s]: (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
    if len(runs) != len(starts) or falls.any():
        raise ValueError("bars must be sorted by symbol, then timestamp")
    ranges = []
    for partition in partitions:
        first, last = runs.get(partition.symbol, (0, 0))
        bounds = [edge.value for edge in _window(partition)]  # ns, like `stamps`
        lo, hi = np.searchsorted(stamps[first:last], bounds, side="left")
        ranges.append((partition, slice(first + int(lo), first + int(hi))))
    return ranges


def store_bars(
    storage: Stores,
    timeframe: Timeframe,
    partitions: Sequence[BarsPartition],
    bars: pd.DataFrame,
) -> dict[str, int]:
    """Replace the partitions' slices of the bars (one Parquet file each, the SQL rows in one
    transaction, `storage.write.replace`) and refresh their symbols' `symbol_metadata` in it.
    Returns bytes written per partition key."""
    table = to_arrow(bars)
    dataset = BARS.dataset_for(timeframe)
    ranges = partition_rows(bars, partitions)
    symbols = sorted({p.symbol for p in partitions})
    coverage = Refresh(
        SYMBOL_METADATA,
        [Slice((("symbol", symbol), ("timeframe", timeframe.value))) for symbol in symbols],
        "SELECT symbol, timeframe, min(timestamp), max(timestamp), count(*), %s"
        f" FROM {BARS.name} WHERE timeframe = %s AND symbol IN (SELECT unnest(%s::text[]))"
        " GROUP BY symbol, timeframe",
        [dt.datetime.now(dt.UTC), timeframe.value, symbols],
    )
    sizes = replace(
        storage,
        [
            Piece(
                BARS,
                table.slice(rows.start, rows.stop - rows.start),
                dataset,
                partition.path(timeframe),
                partition_slice(timeframe, partition),
            )
            for partition, rows in ranges
        ],
        [coverage],
    )
    return {partition.key: size for (partition, _), size in zip(ranges, sizes, strict=True)}


def read_partitions(
    storage: Stores, timeframe: Timeframe, partitions: Sequence[BarsPartition] | None
) -> tuple[pd.DataFrame, list[str]]:
    """Stored bars of the partitions (all stored ones if None), sorted by symbol and timestamp,
    and the keys with no stored bars (no file, or a file without rows)."""
    warehouse = storage.warehouse
    dataset = BARS.dataset_for(timeframe)
    if partitions is None:
        files, missing = warehouse.files(dataset), []
    else:
        paths = {p.key: warehouse.path(dataset, p.path(timeframe)) for p in partitions}
        files = [path for path in paths.values() if path.exists()]
        missing = [key for key, path in paths.items() if not path.exists()]
    if not files:
        return from_arrow(BAR_SCHEMA.empty_table()), missing
    table = pa_ds.dataset([str(f) for f in files], format="parquet", schema=BAR_SCHEMA).to_table()
    bars = from_arrow(table.sort_by([("symbol", "ascending"), ("timestamp", "ascending")]))
    if partitions is not None:
        absent = set(missing)
        stored = [p for p in partitions if p.key not in absent]
        missing += [p.key for p, rows in partition_rows(bars, stored) if rows.start == rows.stop]
    return bars, missing


def _issue_list(issues: Sequence[BarIssue], limit: int) -> str:
    lines = [f"- {issue}" for issue in issues[:limit]]
    if len(issues) > limit:
        lines.append(f"- … and {len(issues) - limit} more")
    return "\n".join(lines)


def _issues_metadata(issues: Sequence[BarIssue]) -> dict[str, dg.MetadataValue]:
    return {"issues": dg.MetadataValue.md(_issue_list(issues, 50))} if issues else {}


def partition_quirks(bars: pd.DataFrame, timeframe: Timeframe, rows: slice) -> list[BarIssue]:
    """The WARNING findings of one partition's rows (`rows` of `bars`, sorted by symbol and time).

    A jump or a volume spike compares a bar with the one before it, so the partition is
    validated together with the symbol's previous bar, and that bar's own findings taken off:
    the counts are exactly those of the partition's bars."""
    previous = rows.start - 1
    if previous >= 0 and str(bars["symbol"].iat[previous]) == str(bars["symbol"].iat[rows.start]):
        found = validate_bars(bars.iloc[previous : rows.stop], timeframe)
        before = {(i.rule, i.count) for i in validate_bars(bars.iloc[[previous]], timeframe)}
        issues = []
        for issue in found:
            taken = next((count for rule, count in before if rule == issue.rule), 0)
            if issue.severity == Severity.WARNING and issue.count > taken:
                issues.append(dataclasses.replace(issue, count=issue.count - taken))
        return issues
    found = validate_bars(bars.iloc[rows], timeframe)
    return [issue for issue in found if issue.severity == Severity.WARNING]


def quirks_by_partition(
    bars: pd.DataFrame,
    timeframe: Timeframe,
    ranges: Sequence[tuple[BarsPartition, slice]],
    warnings: Sequence[BarIssue],
) -> dict[str, list[BarIssue]]:
    """The run's WARNING findings split by partition key. A finding of one bar belongs to the
    partition of its session; a symbol with a finding of several bars has its partitions
    validated one by one (`partition_quirks`), which costs ~15 ms a partition, so only then."""
    found: dict[str, list[BarIssue]] = {}
    several = {issue.symbol for issue in warnings if issue.count > 1 or issue.session is None}
    single = [issue for issue in warnings if issue.symbol not in several]
    keys = {partition.key for partition, _ in ranges}
    for issue in single:
        assert issue.session is not None
        key = f"{issue.symbol}|{period_of(timeframe, issue.session)}"
        if key in keys:
            found.setdefault(key, []).append(issue)
    for partition, rows in ranges:
        if partition.symbol in several:
            issues = partition_quirks(bars, timeframe, rows)
            if issues:
                found[partition.key] = issues
    return found


def partitions_metadata(
    bars: pd.DataFrame,
    ranges: Sequence[tuple[BarsPartition, slice]],
    sizes: Mapping[str, int],
    quirks: Mapping[str, Sequence[BarIssue]],
) -> dict[str, dict[str, object]]:
    """What each bars partition's own materialization shows, by key: its rows (a slice of
    `bars`, in time order), their time span, its quirks and its first bars (prices at their
    tick). Built in one pass over the run's frame: microseconds a partition."""
    ends = np.array([[rows.start, rows.stop - 1] for _, rows in ranges], dtype=np.int64)
    stamps = bars["timestamp"].take(ends.ravel()).astype(str).to_numpy().reshape(-1, 2)
    shown = previews(bars[_SHOWN], [rows for _, rows in ranges])
    found: dict[str, dict[str, object]] = {}
    for (partition, rows), table, (first, last) in zip(ranges, shown, stamps, strict=True):
        own = quirks.get(partition.key, [])
        metadata: dict[str, object] = {
            "dagster/row_count": rows.stop - rows.start,
            "first_timestamp": first,
            "last_timestamp": last,
            "parquet_bytes": sizes[partition.key],
            "quirks": sum(issue.count for issue in own),
            "preview": table,
        }
        if own:
            metadata["quirk_findings"] = dg.MetadataValue.md(_issue_list(own, 20))
        found[partition.key] = metadata
    return found


def build_bars_asset(timeframe: Timeframe) -> dg.AssetsDefinition:
    name = BARS.dataset_for(timeframe)
    partitions_def = bars_partitions(timeframe)

    @dg.asset(
        name=name,
        group_name="market_data",
        kinds={"parquet"},  # + the SQL store's kind, added by `defs.build_defs`
        owners=["team:market-data"],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=(
            f"{timeframe.value} OHLCV bars of the regular XNYS session, one Parquet file per "
            f"partition under `{name}/` and rows in SQL `{BARS.name}`. Prices are as the source "
            "delivers them; the `adjustment` column says whether they are raw or adjusted."
        ),
        metadata={"dagster/column_schema": column_schema(BARS.schema, BARS.descriptions)},
    )
    def bars_asset(
        context: dg.AssetExecutionContext, storage: StorageResource, bar_source: BarSourceResource
    ) -> dg.MaterializeResult:
        partitions = sorted(parse_partition(timeframe, key) for key in context.partition_keys)
        source = bar_source.open()
        context.log.info(
            f"reading {timeframe.value} bars of {len({p.symbol for p in partitions})} symbols "
            f"({len(partitions)} partitions) from {source.name}"
        )
        sessions = SessionRange.from_tags(context.run.tags)
        if sessions is None:
            bars = fetch_partitions(source, timeframe, partitions)
        else:
            # Only the requested sessions are replaced: the partitions' other stored bars stay.
            stored, _ = read_partitions(storage, timeframe, partitions)
            held = stored.loc[stored_in_sessions(stored, sessions).to_numpy()]
            # A partition whose requested sessions are stored may come back empty: the merge
            # then names the sessions the source lacks (or deletes them, if asked).
            held_keys = {
                f"{symbol}|{period_of(timeframe, day)}"
                for symbol, day in zip(held["symbol"], held["session_date"], strict=True)
            }
            fetched = fetch_partitions(source, timeframe, partitions, may_be_empty=held_keys)
            bars = merge_sessions(stored, fetched, sessions, timeframe, source.name)
            context.log.info(
                f"replacing the sessions {sessions.first}..{sessions.last}; kept "
                f"{bars.attrs['kept_bars']} stored bars of other sessions, deleted "
                f"{bars.attrs['deleted_sessions']} stored sessions the source no longer has"
            )
        warnings = raise_on_errors(validate_bars(bars, timeframe))
        if warnings:
            # One event, not one per quirk: each stored log event costs milliseconds.
            context.log.warning(
                f"{len(warnings)} data quirks kept as delivered (see bars_quality):\n"
                + _issue_list(warnings, QUIRKS_LOGGED)
            )
        context.log.info(f"validated {len(bars)} bars; writing Parquet and {storage.sql_kind}")
        written = store_bars(storage, timeframe, partitions, bars)
        ranges = partition_rows(bars, partitions)
        quirks = quirks_by_partition(bars, timeframe, ranges, warnings)
        add_partition_metadata(context, partitions_metadata(bars, ranges, written, quirks))
        record_run_totals(
            context,
            {
                "run_rows": len(bars),
                "run_partitions": len(partitions),
                "excluded_extended_hours": int(bars.attrs.get("excluded_extended_hours", 0)),
                "unfinished_bars_left_out": int(bars.attrs.get("unfinished_bars", 0)),
                "quirks_reported": sum(issue.count for issue in warnings),
                "kept_bars": int(bars.attrs.get("kept_bars", 0)),
                "deleted_sessions": int(bars.attrs.get("deleted_sessions", 0)),
            },
        )
        # True of every partition of the run: shown on each.
        return dg.MaterializeResult(metadata={"source": source.name, "sql_store": storage.sql_kind})

    return bars_asset


def _stores_agree(
    storage: StorageResource,
    timeframe: Timeframe,
    key: dg.AssetKey,
    partitions: Sequence[BarsPartition] | None,
    bars: pd.DataFrame,
) -> dg.AssetCheckResult:
    """Parquet's and SQL's bar counts per partition (all stored bars of the timeframe when the
    check runs alone, unpartitioned)."""
    if partitions is None:
        whole = Slice((("timeframe", timeframe.value),))
        in_parquet = {"all": len(bars)}
        in_sql = {"all": count_slices(storage.sql, BARS.name, [whole])[0]}
    else:
        in_parquet = {p.key: rows.stop - rows.start for p, rows in partition_rows(bars, partitions)}
        counts = count_slices(
            storage.sql, BARS.name, [partition_slice(timeframe, p) for p in partitions]
        )
        in_sql = {p.key: n for p, n in zip(partitions, counts, strict=True)}
    apart = [
        f"{k}: {in_parquet[k]} in Parquet, {in_sql[k]} in SQL"
        for k in in_parquet
        if in_parquet[k] != in_sql[k]
    ]
    return dg.AssetCheckResult(
        check_name="bars_stores_agree",
        asset_key=key,
        passed=not apart,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(apart[:5]) or f"Parquet and SQL agree ({len(bars)} bars)",
        metadata={"partitions_checked": len(in_parquet), "partitions_apart": len(apart)},
    )


def build_bars_checks(timeframe: Timeframe, asset: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    valid = dg.AssetCheckSpec(
        "bars_valid",
        asset=asset.key,
        blocking=True,
        description=(
            "Stored bars have the required columns, no null or non-positive price, high ≥ low, "
            "unique timestamps, only times inside the XNYS session, and a file per partition. "
            "Blocking: downstream assets do not run on bars that fail."
        ),
    )
    quality = dg.AssetCheckSpec(
        "bars_quality",
        asset=asset.key,
        description=(
            "Real-data quirks kept as delivered: open/close outside [low, high], close-to-close "
            "jumps over 50%, volume over 3x the previous bar (Qlib's health thresholds). Passes "
            "with the findings in its metadata; warns when over 5% of the bars are quirky."
        ),
    )

    agree = dg.AssetCheckSpec(
        "bars_stores_agree",
        asset=asset.key,
        description=(
            "Each checked partition holds as many bars in SQL (`market_data_bars`) as in its "
            "Parquet file. A write puts both in place together and the next write or run "
            "completes one that was killed midway; this reports what they did not repair."
        ),
    )

    @dg.multi_asset_check(
        specs=[valid, quality, agree], name=f"{asset.key.to_python_identifier()}_checks"
    )
    def bars_checks(
        context: dg.AssetCheckExecutionContext, storage: StorageResource
    ) -> Iterator[dg.AssetCheckResult]:
        partitions = run_partitions(context, timeframe)
        bars, missing = read_partitions(storage, timeframe, partitions)
        yield _stores_agree(storage, timeframe, asset.key, partitions, bars)
        issues = validate_bars(bars, timeframe)
        errors = [i for i in issues if i.severity == Severity.ERROR]
        warnings = [i for i in issues if i.severity == Severity.WARNING]
        described = [str(e) for e in errors] + [f"no stored bars for {key}" for key in missing]
        yield dg.AssetCheckResult(
            check_name="bars_valid",
            asset_key=asset.key,
            passed=not described,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(described[:5]) if described else "all stored bars are valid",
            metadata={"rows_checked": len(bars), "missing_partitions": len(missing)},
        )
        # Dagster's UI shows any passed=False result as "Failed", whatever its severity, so
        # documented quirks kept on purpose pass, with their findings in the metadata; the WARN
        # is kept for a feed whose share of quirky bars is beyond what real data shows.
        quirky = sum(w.count for w in warnings)
        share = quirky / len(bars) if len(bars) else 0.0
        summary = f"{quirky} quirky bars of {len(bars)} ({share:.2%}), kept as delivered"
        yield dg.AssetCheckResult(
            check_name="bars_quality",
            asset_key=asset.key,
            passed=share <= QUIRK_SHARE_LIMIT,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                (summary + ": " + "; ".join(str(w) for w in warnings[:5]))
                if warnings
                else "no quirks"
            )
            + ("" if share <= QUIRK_SHARE_LIMIT else f" (over {QUIRK_SHARE_LIMIT:.0%})"),
            metadata={
                "rows_checked": len(bars),
                "quirky_bars": quirky,
                "quirky_share": share,
                **_issues_metadata(warnings),
            },
        )

    return bars_checks


with warnings.catch_warnings():
    # Dagster 1.13 marks `backfill_policy` beta; single-run backfills are what we want.
    warnings.simplefilter("ignore", dg.BetaWarning)
    BARS_ASSETS = {tf: build_bars_asset(tf) for tf in Timeframe}
BARS_CHECKS = {tf: build_bars_checks(tf, asset) for tf, asset in BARS_ASSETS.items()}
