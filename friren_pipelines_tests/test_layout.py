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


def _modules() -> dict[str, ast.Module]:
    root = PACKAGE.parent
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        found[name] = ast.parse(path.read_text())
    return found


def test_only_config_reads_or_writes_the_environment() -> None:
    offenders = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            touches = (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")) or (
                isinstance(node, ast.ImportFrom)
                and node.module == "os"
                and any(a.name in ("environ", "getenv") for a in node.names)
            )
            if touches and name != "friren_pipelines.config":
                offenders.append(f"{name}: {ast.unparse(node)}")
    assert offenders == []


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    modules = _modules()
    imports: dict[str, set[str]] = {}
    for name, tree in modules.items():
        found = set()
        for node in ast.walk(tree):  # imports inside functions count: they make cycles too
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
        imports[name] = {m for m in found if m in modules and m != name}

    def reaches(start: str, target: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module == target:
                return True
            if module not in seen:
                seen.add(module)
                todo += imports[module]
        return False

    # A package and its own modules may import each other (`indicators/__init__` re-exports).
    cycles = sorted(
        f"{a} -> {b}"
        for a in imports
        for b in imports[a]
        if reaches(b, a) and not (a.startswith(f"{b}.") or b.startswith(f"{a}."))
    )
    assert cycles == []


def test_no_private_dagster_import_where_the_public_namespace_has_the_name() -> None:
    import dagster

    offenders = [
        f"{name}: {node.module}.{alias.name}"
        for name, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dagster._")
        for alias in node.names
        if hasattr(dagster, alias.name)
    ]
    assert offenders == []
