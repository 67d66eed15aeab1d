"""The catalog, as an analyst first sees it: every asset of the loaded Definitions, with its group
and kinds."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from friren_pipelines.config import load_settings
from friren_pipelines.definitions import build_definitions
from friren_pipelines_tests.ui.conftest import DagsterUI

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page


def _plain(name: str) -> str:
    """A kind as the UI names it ("Postgres", "DuckDB") compared with its key ("postgres")."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _row(page: Page, asset_path: str) -> Locator:
    """The catalog row of an asset: the nearest box around its link that also holds a group link."""
    link = page.locator(f'a[href="/assets/{asset_path}"]')
    return link.locator("xpath=ancestor::div[.//a[contains(@href, 'asset-groups')]][1]")


def test_the_catalog_lists_every_asset_with_its_group_and_kinds(
    page: Page, dagster_ui: DagsterUI
) -> None:
    # The Definitions the webserver loaded: built from the same environment.
    specs = build_definitions(load_settings(dagster_ui.env)).resolve_all_asset_specs()
    expected = {
        "/".join(spec.key.path): (spec.group_name, {_plain(kind) for kind in spec.kinds})
        for spec in specs
    }
    # The catalog is a virtualised table: a tall window renders every row at once.
    page.set_viewport_size({"width": 1600, "height": 120 + 70 * len(expected)})
    page.goto("/assets")
    links = page.locator('a[href^="/assets/"]')
    links.first.wait_for()
    page.wait_for_load_state("networkidle")

    shown = {}
    for index in range(links.count()):
        path = links.nth(index).get_attribute("href")
        assert path is not None
        path = path.removeprefix("/assets/")
        row = _row(page, path)
        group = row.locator('a[href*="asset-groups"]').inner_text().strip()
        kinds = {_plain(tag) for tag in row.locator("[data-tooltip]").evaluate_all(
            "tags => tags.map(tag => tag.getAttribute('data-tooltip'))"
        )}  # fmt: skip
        shown[path] = (group, kinds)
    assert shown == expected
