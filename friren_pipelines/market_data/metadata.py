"""Metadata helpers that turn frames into what the Dagster UI shows: schemas, previews, pictures."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import dagster as dg
import pandas as pd
import pyarrow as pa


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


def _cell(value: object) -> str | int | float | bool | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    """The first rows as a table the UI renders."""
    head = frame.head(rows)
    records = [
        dg.TableRecord({str(k): _cell(v) for k, v in record.items()})
        for record in head.to_dict("records")
    ]
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name=str(c), type=str(frame[c].dtype)) for c in frame.columns]
    )
    return dg.MetadataValue.table(records=records, schema=schema)


def picture(png: bytes, caption: str) -> dg.MetadataValue:
    """A PNG inlined as Markdown, which the asset page displays as an image."""
    encoded = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"![{caption}](data:image/png;base64,{encoded})")
