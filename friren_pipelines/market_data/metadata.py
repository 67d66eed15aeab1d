"""Metadata helpers that turn frames into what the Dagster UI shows: schemas, previews, pictures."""

from __future__ import annotations

import base64
import warnings
from collections.abc import Mapping, Sequence
from decimal import Decimal
from itertools import repeat

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from friren_pipelines.config import Settings
from friren_pipelines.resources import storage_resource


def column_schema(schema: pa.Schema, descriptions: Mapping[str, str]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=str(field.type),
                description=descriptions.get(field.name),
                constraints=dg.TableColumnConstraints(nullable=field.nullable),
            )
            for field in schema
        ]
    )


# How a preview shows a number, by column name: prices to their tick (US equities: cents from
# $1, 1/100 cent below), share quantities as exact as they are (up to 8 places), other money to
# the cent, other ratios to 4 places. Strings, so the UI shows no float noise, no exponent and
# not the 18 places of the stored decimals.
_PRICE_NAMES = ("open", "high", "low", "close", "vwap", "price")
_PRICE_PREFIXES = ("sma_", "ema_", "bb_")
_QUANTITY_NAMES = ("qty", "change", "numerator", "denominator", "volume")


def _is_price(column: str) -> bool:
    return column in _PRICE_NAMES or column.endswith("_price") or column.startswith(_PRICE_PREFIXES)


def _is_quantity(column: str) -> bool:
    return column in _QUANTITY_NAMES or column.endswith("_qty")


def price_text(value: Decimal | float) -> str:
    """A US equity price at its tick: 2 places from $1, 4 below (Reg NMS sub-penny rule)."""
    exact = Decimal(str(value)) if isinstance(value, float) else value
    return f"{exact:.{2 if abs(exact) >= 1 else 4}f}"


def money_text(value: Decimal | float) -> str:
    """An amount of money to the cent."""
    text = f"{Decimal(str(value)) if isinstance(value, float) else value:.2f}"
    return "0.00" if text == "-0.00" else text


def quantity_text(value: Decimal | float) -> str:
    """Shares as exact as they are, up to 8 places, never in exponent form (100, 0.5)."""
    exact = Decimal(str(value)) if isinstance(value, float) else value
    text = f"{exact:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def number_cell(column: str, value: object) -> str | int | float | bool | None:
    """One preview cell as the UI should show it (see the rules above)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal | float):
        if _is_price(column):
            return price_text(value)
        if _is_quantity(column):
            return quantity_text(value)
        if isinstance(value, Decimal):
            return money_text(value)
        text = f"{value:.4f}"
        return "0.0000" if text == "-0.0000" else text
    return str(value)


def preview(frame: pd.DataFrame, rows: int = 5) -> dg.TableMetadataValue:
    """The first rows as a table the UI renders, numbers rounded as `number_cell` says."""
    return previews(frame, [slice(0, len(frame))], rows)[0]


def previews(
    frame: pd.DataFrame, parts: Sequence[slice], rows: int = 5
) -> list[dg.TableMetadataValue]:
    """`preview` of each part (a slice of `frame`'s rows), converted in one pass: a partition
    costs microseconds instead of the milliseconds of slicing a DataFrame per partition."""
    heads = [np.arange(part.start, min(part.stop, part.start + rows)) for part in parts]
    head = frame.take(np.concatenate(heads) if heads else np.arange(0))
    columns = [str(c) for c in frame.columns]
    cells = list(
        zip(
            *(
                list(map(number_cell, repeat(name), head[c].tolist()))
                for name, c in zip(columns, frame.columns, strict=True)
            ),
            strict=True,
        )
    )
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name=str(c), type=str(frame[c].dtype)) for c in frame.columns]
    )
    shown: list[dg.TableMetadataValue] = []
    position = 0
    for part in heads:
        records = [
            dg.TableRecord(dict(zip(columns, cells[i], strict=True)))
            for i in range(position, position + len(part))
        ]
        shown.append(dg.MetadataValue.table(records=records, schema=schema))
        position += len(part)
    return shown


def picture(png: bytes, caption: str) -> dg.MetadataValue:
    """A PNG inlined as Markdown, which the asset page displays as an image."""
    encoded = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"![{caption}](data:image/png;base64,{encoded})")


def add_partition_metadata(
    context: dg.AssetExecutionContext, by_key: Mapping[str, Mapping[str, object]]
) -> None:
    """Give each partition key of the run its own materialization metadata, checking the keys
    against the run's once.

    Dagster's `context.add_asset_metadata(..., partition_key=key)` does the same for one key but
    re-reads the run's whole key range from the instance (the dynamic symbols query and one
    MultiPartitionKey per key) on every call to check it: ~20 ms a call at 100 keys, growing
    with the run (quadratic), which is why runs over 50 keys used to share one summary. The
    validation is the only cost; this does it once, then writes to the same per-partition
    accumulator Dagster merges into each partition's event (private: Dagster has no public bulk
    form). Asserted by market_data/test_bars_backfill.py for a run of more than 50 keys.
    """
    unknown = set(by_key) - set(context.partition_keys)
    if unknown:
        shown = ", ".join(sorted(unknown)[:5])
        raise ValueError(
            f"{context.asset_key.to_user_string()}: metadata for keys {shown} "
            "that this run does not materialize"
        )
    step = context.op_execution_context._step_execution_context
    accumulator = step._metadata_accumulator
    for key, metadata in by_key.items():
        accumulator = accumulator.with_additional_asset_metadata(
            asset_key=context.asset_key, partition_key=key, metadata=metadata
        )
    step._metadata_accumulator = accumulator


def record_run_totals(
    context: dg.AssetExecutionContext, totals: Mapping[str, int | float | str]
) -> None:
    """A run's totals where the run page shows them: as run tags (`friren/<asset>/<name>`, at
    the top of the run and filterable in the runs list) and in one log line. Not on the
    partitions: each partition's materialization carries only its own figures."""
    prefix = f"friren/{context.asset_key.to_user_string()}"
    context.instance.add_run_tags(
        context.run.run_id, {f"{prefix}/{name}": str(value) for name, value in totals.items()}
    )
    context.log.info(
        f"{context.asset_key.to_user_string()} run totals: "
        + ", ".join(f"{name}={value}" for name, value in totals.items())
    )


def as_configured(
    defs: dg.Definitions,
    settings: Settings,
    partitions: Mapping[dg.AssetKey, dg.PartitionsDefinition],
) -> dg.Definitions:
    """A domain's `defs` as these settings deploy them: each asset named in `partitions`
    partitioned as given there (periods from `settings.history_start`), and the configured SQL
    store's kind (`duckdb` or `postgres`, as `StorageResource.sql_kind` names it) beside
    `parquet` in every asset's kinds, so that the UI's catalogue says where the rows are. Asset,
    check and job names are unchanged."""
    kind = storage_resource(settings).sql_kind

    def configured(spec: dg.AssetSpec) -> dg.AssetSpec:
        spec = spec.merge_attributes(kinds={kind})
        if spec.key in partitions:
            spec = spec.replace_attributes(partitions_def=partitions[spec.key])
        return spec

    with warnings.catch_warnings():
        # Dagster 1.13 marks map_resolved_asset_specs preview; it is the way to re-declare specs.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_resolved_asset_specs(func=configured)
