"""Partition pages tell the truth about their partition: its own row count, as stored, and its
indicator chart."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.market_data.partitions import parse_partition
from friren_pipelines.storage.tables import BARS
from friren_pipelines.storage.warehouse import Warehouse
from friren_pipelines_tests.ui.conftest import DAILY_SYMBOLS, DAILY_YEAR, MINUTE_WEEK, DagsterUI

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

PARTITION = f"{DAILY_SYMBOLS[0]}|{DAILY_YEAR}"  # seeded in the same run as another symbol's year
STORED = [
    pytest.param(Timeframe.DAY1, PARTITION, id="bars_1d"),
    pytest.param(Timeframe.MIN1, f"AAPL|{MINUTE_WEEK[0]}", id="bars_1min"),
]


def _open_partition(page: Page, asset: str, key: str) -> Locator:
    """The partition's page; returns its metadata table once shown."""
    page.goto(f"/assets/{asset}?view=partitions&partition={quote(key)}")
    page.get_by_text(key, exact=True).filter(visible=True).first.wait_for()
    page.get_by_text("Metadata", exact=True).wait_for()
    table = page.locator("table").first  # the preview is a table nested inside it
    table.locator("td").first.wait_for()
    page.wait_for_load_state("networkidle")
    return table


def _metadata(table: Locator) -> dict[str, str]:
    """Label → text of each entry of a partition's metadata table."""
    entries = {}
    for row in table.locator(":scope > tbody > tr").all():
        cells = row.locator(":scope > td")
        if cells.count() >= 2:
            entries[cells.nth(0).inner_text().strip()] = cells.nth(1).inner_text().strip()
    return entries


def _stored_rows(dagster_ui: DagsterUI, timeframe: Timeframe, key: str) -> int:
    dataset = BARS.dataset_for(timeframe)
    partition = parse_partition(timeframe, key)
    table = Warehouse(dagster_ui.warehouse).read(dataset, partition.path(timeframe))
    assert table is not None, f"no stored Parquet for {dataset} {key}"
    return table.num_rows


def _row_count(entries: dict[str, str]) -> str:
    labels = [
        label for label in entries if label in ("dagster/row_count", "Row count", "row_count")
    ]
    assert labels, f"no row count among the partition's metadata: {sorted(entries)}"
    return entries[labels[0]].replace(",", "")


@pytest.mark.parametrize(("timeframe", "key"), STORED)
def test_a_partition_page_shows_the_row_count_stored_in_its_parquet(
    page: Page, dagster_ui: DagsterUI, timeframe: Timeframe, key: str
) -> None:
    entries = _metadata(_open_partition(page, BARS.dataset_for(timeframe), key))
    assert _row_count(entries) == str(_stored_rows(dagster_ui, timeframe, key))


def test_a_partition_page_shows_no_row_figure_of_its_whole_run(
    page: Page, dagster_ui: DagsterUI
) -> None:
    """The seed stored two symbols' years in one run: a partition's page shows its own rows,
    not the run's total (the analyst read `run_rows 4800` on a 252-row partition)."""
    entries = _metadata(_open_partition(page, "bars_1d", PARTITION))
    rows = str(_stored_rows(dagster_ui, Timeframe.DAY1, PARTITION))
    about_rows = {
        label: value.replace(",", "")
        for label, value in entries.items()
        if re.search(r"rows?\b|row_count", label, re.IGNORECASE)
    }
    assert about_rows, f"no row figure among {sorted(entries)}"
    assert {label: value for label, value in about_rows.items() if value != rows} == {}


def test_an_indicator_partition_opens_its_chart(page: Page, dagster_ui: DagsterUI) -> None:
    table = _open_partition(page, "indicators_1d", PARTITION)
    chart = table.locator(":scope > tbody > tr").filter(
        has=page.get_by_role("cell", name="chart", exact=True)
    )
    chart.get_by_text(re.compile(r"Show Markdown", re.IGNORECASE)).click()
    image = page.get_by_role("dialog").locator("img")
    image.wait_for()
    # Decoded, not a broken-image box: the PNG inlined in the metadata has real pixels.
    assert image.evaluate("img => img.complete && img.naturalWidth") > 100
    alt = image.get_attribute("alt") or ""
    symbol, year = PARTITION.split("|")
    assert symbol in alt and year in alt, f"the chart's caption {alt!r} does not say what it shows"
