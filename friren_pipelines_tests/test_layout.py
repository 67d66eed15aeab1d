"""The shape of the codebase: the core stays free of Dagster and database drivers, and the
webserver loads every definition."""

import ast
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

PACKAGE = Path(__file__).resolve().parents[1] / "friren_pipelines"
FORBIDDEN_IN_CORE = (
    "dagster",
    "psycopg",
    "psycopg2",
    "duckdb",
    "redis",
    "requests",
    "alpaca",
    "yfinance",
)


def test_the_core_imports_neither_dagster_nor_a_driver() -> None:
    offenders = []
    for path in sorted((PACKAGE / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN_IN_CORE
            ]
    assert offenders == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_webserver_loads_every_asset_check_job_and_sensor(friren_env: dict[str, str]) -> None:
    port = _free_port()
    webserver = Path(sys.executable).parent / "dagster-webserver"
    process = subprocess.Popen(
        [str(webserver), "-m", "friren_pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **friren_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        query = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name assetNodes { assetKey { path } } jobs { name } sensors { name } schedules { name } } } } workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError { __typename ... on PythonError { message } } } } } }"
        deadline = time.monotonic() + 90
        while True:
            try:
                reply = requests.post(
                    f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=5
                )
                if reply.ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "webserver did not answer in 90 s"
            time.sleep(0.5)
        data = reply.json()["data"]
        (entry,) = data["workspaceOrError"]["locationEntries"]
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
        (repository,) = data["repositoriesOrError"]["nodes"]
        assets = {"/".join(node["assetKey"]["path"]) for node in repository["assetNodes"]}
        assert {"bars_1d", "bars_1min", "bars_5min"} <= assets
        assert {"refresh_1d", "refresh_1min"} <= {job["name"] for job in repository["jobs"]}
        assert "intraday_bars_sensor" in {s["name"] for s in repository["sensors"]}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
