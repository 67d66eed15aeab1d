"""A real Dagster UI for the browser tests, started as the README tells a desk to: the warm code
server (`deploy/code_server.py`), `dagster-webserver` and the daemon (`deploy/daemon.py`) on free
127.0.0.1 ports, sharing `deploy/workspace.yaml`, over a scratch instance (a copy of the
repository's dagster.yaml) and a scratch warehouse seeded with `friren backfill`, once per session;
Debian's Chromium driven by Playwright; a PNG of the page for every failed test.

Chromium is the system package (`/usr/bin/chromium`, or FRIREN_TEST_CHROMIUM), never a browser
build downloaded by Playwright. Without it the tests skip locally and fail under CI=true. A
server that does not come up fails them everywhere, with the end of its log.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from friren_pipelines_tests.conftest import _unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("FRIREN_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("FRIREN_TEST_ARTIFACTS", REPO / "test-artifacts"))

# What the session fixture stores before the tests look: two symbols' daily bars of 2024 (and
# their indicators, in one run) and one week of AAPL's minute bars (Monday to Friday).
DAILY_SYMBOLS = ("AAPL", "MSFT")
DAILY_YEAR = "2024"
MINUTE_WEEK = ("2024-03-11", "2024-03-15")
HISTORY_START = "2023-01-01"  # test_backfill.py backfills 2023 from the browser

SERVER_START_SECONDS = 120  # loading the code location took 14-27 s on this 2-core machine
SEED_SECONDS = 120
UI_TIMEOUT_MS = 30_000  # any one wait for an element of the page


@dataclass(frozen=True)
class DagsterUI:
    """The running UI: its address, the environment its processes share, and their logs."""

    url: str
    env: dict[str, str]
    warehouse: Path  # FRIREN_HOME
    dagster_home: Path
    logs: dict[str, Path]

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The `data` of a GraphQL answer from the webserver (the API the UI itself uses)."""
        reply = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        )
        reply.raise_for_status()
        body = reply.json()
        assert "errors" not in body, body["errors"]
        return dict(body["data"])

    def log_tail(self, name: str, lines: int = 40) -> str:
        text = self.logs[name].read_text(errors="replace").splitlines()
        return f"--- last {lines} lines of {self.logs[name]}:\n" + "\n".join(text[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scratch_env(warehouse: Path, dagster_home: Path) -> dict[str, str]:
    """This machine's environment without any FRIREN_/ALPACA_/DAGSTER_ setting of its own: the
    synthetic source, the embedded SQL store, the scratch instance, partitions from
    HISTORY_START, and the two event switches the README asks `dagster dev` to export."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FRIREN_", "ALPACA_", "DAGSTER_"))
        or name.startswith("FRIREN_TEST_")
    }
    env.update(
        # The partitions start where these tests' data does (the default is later than 2023).
        FRIREN_HISTORY_START=HISTORY_START,
        FRIREN_HOME=str(warehouse),
        DAGSTER_HOME=str(dagster_home),
        DAGSTER_EVENT_BATCH_SIZE="1000",
        DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS="1",
    )
    return env


def _start(
    command: list[str], env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the code servers it spawns stop with it
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _seed(env: dict[str, str], cwd: Path, log: Path) -> None:
    """`friren backfill` as an analyst runs it: daily bars (and indicators) of DAILY_SYMBOLS for
    DAILY_YEAR, then a week of AAPL's 1min bars."""
    friren = str(BIN / "friren")
    year = f"{DAILY_YEAR}-01-01", f"{DAILY_YEAR}-12-31"
    commands = [
        [friren, "backfill", "--symbols", ",".join(DAILY_SYMBOLS), "--start", year[0], "--end", year[1]],
        [friren, "backfill", "--symbols", "AAPL", "--start", MINUTE_WEEK[0], "--end", MINUTE_WEEK[1],
         "--timeframes", "1min"],
    ]  # fmt: skip
    with log.open("ab") as out:
        for command in commands:
            done = subprocess.run(
                command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, timeout=SEED_SECONDS, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                pytest.fail(f"{' '.join(command[1:])} exited {done.returncode}:\n{tail}")


def _wait_for_code_location(ui: DagsterUI, webserver: subprocess.Popen[bytes]) -> None:
    query = """{ workspaceOrError { ... on Workspace { locationEntries { name
        locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        if webserver.poll() is not None:
            pytest.fail(
                f"dagster-webserver exited {webserver.returncode}\n{ui.log_tail('webserver')}"
            )
        try:
            entries = ui.graphql(query)["workspaceOrError"]["locationEntries"]
        except (requests.ConnectionError, requests.HTTPError):
            entries = []
        loaded = [e["locationOrLoadError"] for e in entries if e["locationOrLoadError"]]
        errors = [e["message"] for e in loaded if e["__typename"] == "PythonError"]
        if errors:
            pytest.fail("the code location failed to load:\n" + "\n".join(errors))
        if loaded and all(e["__typename"] == "RepositoryLocation" for e in loaded):
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"the webserver did not load the code location in {SERVER_START_SECONDS} s\n"
                + ui.log_tail("webserver")
            )
        time.sleep(0.5)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable("Chromium", FileNotFoundError(f"{CHROMIUM} (apt-get install chromium)"))
    return CHROMIUM


@pytest.fixture(scope="session")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUI]:
    """Webserver and daemon over a seeded scratch instance, for the whole session."""
    root = tmp_path_factory.mktemp("dagster_ui")
    dagster_home, warehouse = root / "dagster_home", root / "warehouse"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    env = _scratch_env(warehouse, dagster_home)
    port, code_port = _free_port(), _free_port()
    # The README's UI set-up: one warm code server (deploy/code_server.py) that the webserver
    # and the daemon (deploy/daemon.py) share through deploy/workspace.yaml, here on a free port.
    workspace_yaml = (REPO / "deploy" / "workspace.yaml").read_text()
    (dagster_home / "workspace.yaml").write_text(workspace_yaml.replace("4266", str(code_port)))
    logs = {name: root / f"{name}.log" for name in ("code_server", "webserver", "daemon", "seed")}
    ui = DagsterUI(f"http://127.0.0.1:{port}", env, warehouse, dagster_home, logs)
    workspace = ["-w", str(dagster_home / "workspace.yaml")]
    python, deploy = str(BIN / "python"), REPO / "deploy"
    processes = []
    try:
        # The servers load the code location while the seed runs: both take ~15-25 s.
        processes.append(
            _start(
                [python, str(deploy / "code_server.py"), "-h", "127.0.0.1", "-p", str(code_port)],
                env,
                dagster_home,
                logs["code_server"],
            )
        )
        processes.append(
            _start(
                [str(BIN / "dagster-webserver"), *workspace, "-h", "127.0.0.1", "-p", str(port)],
                env,
                dagster_home,
                logs["webserver"],
            )
        )
        processes.append(
            _start(
                [python, str(deploy / "daemon.py"), "run", *workspace],
                env,
                dagster_home,
                logs["daemon"],
            )
        )
        _seed(env, dagster_home, logs["seed"])
        _wait_for_code_location(ui, processes[1])
        # The "Join the Dagster community" dialog would cover the first page a test opens.
        ui.graphql("mutation { setNuxSeen }")
        yield ui
    finally:
        for process in processes:
            _stop(process)


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Browser]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as error:
        _unavailable("Playwright", error)
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=str(chromium_path))
    except Error as error:
        playwright.stop()
        _unavailable("Chromium", error)
    yield launched
    launched.close()
    playwright.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so the page fixture knows whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _artifact_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_") + ".png"


@pytest.fixture
def page(browser: Browser, dagster_ui: DagsterUI, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser page on the UI; after a failure its screenshot is kept under ARTIFACTS."""
    context = browser.new_context(base_url=dagster_ui.url, viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / _artifact_name(request.node.nodeid)
        opened.screenshot(path=str(path), full_page=True)
        print(f"screenshot of the failed page: {path} (at {opened.url})")
    context.close()
