"""Fixtures shared by the market-data tests."""

from pathlib import Path

import pytest


@pytest.fixture
def csv_source(friren_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """FRIREN_SOURCE=csv over an empty exports folder, returned for the test to fill."""
    folder = tmp_path / "exports"
    folder.mkdir()
    monkeypatch.setenv("FRIREN_SOURCE", "csv")
    monkeypatch.setenv("FRIREN_CSV_DIR", str(folder))
    return folder
