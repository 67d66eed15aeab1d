"""Backfills launched from the UI: time from launch to a completed backfill, through the real
`dagster-webserver` and `dagster-daemon`, against `friren backfill` of the same keys in the same run.

    .venv/bin/python -m bench.ui_backfill           # deploy/code_server.py and deploy/daemon.py
    .venv/bin/python -m bench.ui_backfill --stock   # dagster code-server start and dagster-daemon

It starts the code server, then the webserver and the daemon on a workspace naming that server
(as `deploy/workspace.yaml` does), on free loopback ports, all three on a scratch DAGSTER_HOME
holding a copy of the repository's `dagster.yaml` (the embedded SQLite instance) and a scratch
FRIREN_HOME (synthetic source, embedded DuckDB store). It registers the symbols with
`friren symbols add`, launches each backfill with the GraphQL mutation the UI's Materialize
button sends (`launchPartitionBackfill` with an asset selection and partition names) and polls
the backfill until it is complete:

- (a) `bars_1d` AAPL, MSFT, NVDA x 2024: 3 keys, one run;
- (b) `bars_1d` JPM, XOM, SPY x 2022-2023: 6 keys, one run per year (Dagster's rule for
  multi-partitions: one run per key of the smaller dimension).

"runs done" is when the backfill's last run finished (the partitions turn materialized in the UI);
"complete" is when the daemon marks the backfill completed, its next loop after that. The
baseline (c) is `friren backfill` of the same keys, a fresh process on its own scratch home
(it also materializes what depends on the bars). (d) times `import dagster`, `import
friren_pipelines.definitions` and `friren --help`, each in a fresh process, best of 3. The goals
are for an idle machine: the load average is printed. Every process is stopped on exit; a failed
run keeps its scratch folder (the servers' logs) and says where.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOCATION = "friren_pipelines"
POLL_SECONDS = 0.25
TIMEOUT_SECONDS = 300
IMPORT_REPEATS = 3


@dataclass(frozen=True)
class Case:
    name: str
    symbols: tuple[str, ...]
    years: tuple[int, ...]
    goal_seconds: float

    @property
    def partition_keys(self) -> list[str]:
        return [f"{symbol}|{year}" for year in self.years for symbol in self.symbols]


CASES = [
    Case("(a) bars_1d AAPL,MSFT,NVDA x 2024", ("AAPL", "MSFT", "NVDA"), (2024,), 15),
    Case("(b) bars_1d JPM,XOM,SPY x 2022-2023", ("JPM", "XOM", "SPY"), (2022, 2023), 25),
]

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
  }
}
"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status runs(limit: 100) { runId status } }
    ... on PythonError { message }
  }
}
"""
LOCATION_STATUS = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"
TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
COMPLETE = {"COMPLETED", "COMPLETED_SUCCESS"}
FAILED = {"FAILED", "COMPLETED_FAILED", "CANCELED", "CANCELING"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scratch_environment(folder: Path) -> dict[str, str]:
    """A scratch instance (a copy of dagster.yaml; its relative folders land under `folder`, the
    working directory) and a scratch warehouse; the event switches README asks to export."""
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FRIREN_", "DAGSTER_", "ALPACA_"))
    }
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "FRIREN_HOME": str(folder / "warehouse"),
            "FRIREN_SOURCE": "synthetic",
            "FRIREN_HISTORY_START": "2022-01-01",  # the partitions offer the cases' years
            "DAGSTER_EVENT_BATCH_SIZE": "1000",
            "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
        }
    )
    return env


class Servers:
    """Code server, webserver and daemon of one scratch folder; stopped by `stop`."""

    def __init__(self, folder: Path, env: dict[str, str], stock: bool):
        self.folder, self.env = folder, env
        self.processes: list[subprocess.Popen[bytes]] = []
        code_port, self.web_port = free_port(), free_port()
        workspace = folder / "workspace.yaml"
        workspace.write_text(
            "load_from:\n  - grpc_server:\n"
            f"      host: 127.0.0.1\n      port: {code_port}\n      location_name: {LOCATION}\n"
        )
        code_server: list[str | Path] = [BIN / "python", ROOT / "deploy" / "code_server.py"]
        daemon: list[str | Path] = [BIN / "python", ROOT / "deploy" / "daemon.py"]
        if stock:  # Dagster's own: a process started afresh per run, a backfill loop every 30 s
            code_server = [BIN / "dagster", "code-server", "start", "--location-name", LOCATION]
            code_server += ["-m", "friren_pipelines.definitions", "-a", "defs"]
            daemon = [BIN / "dagster-daemon"]
        try:
            self._start("code-server", [*code_server, "-h", "127.0.0.1", "-p", str(code_port)])
            self.wait_for_port(code_port)  # the proxy listens once the code is loaded
            web = ["-h", "127.0.0.1", "-p", str(self.web_port), "-w", str(workspace)]
            self._start("webserver", [BIN / "dagster-webserver", *web])
            self.wait_until_loaded()
            self._start("daemon", [*daemon, "run", "-w", workspace])
            self.wait_for_daemons()
        except BaseException:
            self.stop()
            raise

    def _start(self, name: str, command: list[str | Path]) -> None:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes.append(
            subprocess.Popen(
                command, cwd=self.folder, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        )

    def graphql(self, query: str, variables: dict[str, object] | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:  # GraphQL says what was wrong in the body
            raise RuntimeError(f"GraphQL HTTP {error.code}: {error.read()[:2000]!r}") from None
        if answer.get("errors"):
            raise RuntimeError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    def poll(
        self,
        ready: Callable[[], bool],
        interval: float,
        timeout_message: str,
        not_yet: tuple[type[Exception], ...] = (),
    ) -> None:
        """Ask `ready` every `interval` seconds, each time after checking that no server has
        exited, until it answers True (an exception of `not_yet` counts as False);
        TimeoutError(`timeout_message`) after TIMEOUT_SECONDS."""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(*not_yet):
                if ready():
                    return
            time.sleep(interval)
        raise TimeoutError(timeout_message)

    def wait_for_port(self, port: int) -> None:
        def listening() -> bool:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True

        message = f"nothing listens on 127.0.0.1:{port} after {TIMEOUT_SECONDS} s"
        self.poll(listening, 0.25, message, not_yet=(OSError,))

    def wait_until_loaded(self) -> None:
        def loaded() -> bool:
            entries = self.graphql(LOCATION_STATUS)["workspaceOrError"]["locationEntries"]
            if not entries or entries[0]["loadStatus"] != "LOADED":
                return False
            location = entries[0]["locationOrLoadError"]
            if location["__typename"] == "PythonError":
                raise RuntimeError(f"code location failed to load: {location['message']}")
            return True

        message = f"the webserver did not load the code location in {TIMEOUT_SECONDS} s"
        self.poll(loaded, 0.5, message, not_yet=(OSError, RuntimeError))

    def wait_for_daemons(self) -> None:
        def healthy() -> bool:
            daemons = self.graphql(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
            return all(d["healthy"] for d in daemons if d["required"])

        self.poll(healthy, 0.5, f"the daemons sent no heartbeat in {TIMEOUT_SECONDS} s")

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{process.args!r} exited with {process.returncode}; see {self.folder}/*.log"
                )

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # lets the code server stop its children
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:  # `dagster api grpc` may hang on SIGINT
                process.kill()
                process.wait()


@contextlib.contextmanager
def running(stock: bool) -> Iterator[Servers]:
    folder = Path(tempfile.mkdtemp(prefix="friren-ui-bench-"))
    env = scratch_environment(folder)
    # in the cases' order: a case's symbols are contiguous keys, so its backfill is one run a year
    symbols = list(dict.fromkeys(s for case in CASES for s in case.symbols))
    friren(["symbols", "add", *symbols], folder, env)
    servers = Servers(folder, env, stock)
    try:
        yield servers
    except BaseException:
        servers.stop()
        print(f"kept {folder} (the servers' logs and the instance) for a look", file=sys.stderr)
        raise
    servers.stop()
    shutil.rmtree(folder)


def friren(arguments: list[str], folder: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    command: list[str | Path] = [BIN / "friren", *arguments]
    done = subprocess.run(command, check=False, cwd=folder, env=env, capture_output=True)
    if done.returncode:
        raise RuntimeError(f"friren {' '.join(arguments)} failed:\n{done.stderr.decode()}")
    return time.perf_counter() - started


def through_ui(servers: Servers, case: Case) -> tuple[float, float, int]:
    """Seconds from launch to the last run finished and to the backfill complete, and its runs."""
    params = {"assetSelection": [{"path": ["bars_1d"]}], "partitionNames": case.partition_keys}
    started = time.perf_counter()
    launched = servers.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launchPartitionBackfill for {case.name}: {launched}")
    runs_done = None
    while time.perf_counter() - started < TIMEOUT_SECONDS:
        servers.check_alive()
        backfill = servers.graphql(BACKFILL, {"id": launched["backfillId"]})
        backfill = backfill["partitionBackfillOrError"]
        runs = backfill["runs"]
        if runs_done is None and runs and all(r["status"] in TERMINAL_RUN for r in runs):
            runs_done = time.perf_counter() - started
        if backfill["status"] in COMPLETE | FAILED:
            if backfill["status"] in FAILED or any(r["status"] != "SUCCESS" for r in runs):
                raise RuntimeError(f"backfill {case.name} ended {backfill['status']}: {runs}")
            complete = time.perf_counter() - started
            return runs_done or complete, complete, len(runs)
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"backfill {case.name} not complete after {TIMEOUT_SECONDS} s")


def through_cli(case: Case) -> float:
    """Wall seconds of `friren backfill` of the same keys, on its own scratch home."""
    with tempfile.TemporaryDirectory(prefix="friren-cli-bench-") as name:
        folder = Path(name)
        env = scratch_environment(folder)
        friren(["symbols", "add", *case.symbols], folder, env)
        return friren(
            [
                "backfill",
                "--symbols",
                ",".join(case.symbols),
                "--start",
                f"{case.years[0]}-01-01",
                "--end",
                f"{case.years[-1]}-12-31",
            ],
            folder,
            env,
        )


def best_wall(command: list[str | Path]) -> float:
    best = float("inf")
    for _ in range(IMPORT_REPEATS):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def load_average() -> str:
    """The goals are for an idle machine: the figures say how busy this one was."""
    return ", ".join(f"{load:.1f}" for load in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stock",
        action="store_true",
        help="dagster code-server and dagster-daemon instead of deploy/code_server.py, daemon.py",
    )
    stock = parser.parse_args().stock
    print(f"load average (1, 5, 15 min) at the start: {load_average()}; {os.cpu_count()} CPUs\n")
    daemon = "stock code server, daemon" if stock else "deploy/ code server, daemon"
    print(
        f"{'UI backfill, ' + daemon:<40} {'runs':>4} {'runs done s':>11} {'complete s':>10} "
        f"{'goal s':>6}"
    )
    ui: dict[str, float] = {}
    with running(stock) as servers:
        for case in CASES:
            runs_done, complete, runs = through_ui(servers, case)
            ui[case.name] = complete
            print(
                f"{case.name:<40} {runs:>4} {runs_done:>11.1f} {complete:>10.1f} "
                f"{case.goal_seconds:>6.0f}",
                flush=True,
            )
    print(f"\n{'(c) friren backfill, same keys':<40} {'wall s':>11} {'UI / CLI':>10}")
    for case in CASES:
        seconds = through_cli(case)
        print(f"{case.name:<40} {seconds:>11.1f} {ui[case.name] / seconds:>10.2f}", flush=True)
    print(f"\n{'(d) fresh process, best of 3':<40} {'wall s':>11} {'goal s':>10}")
    imports: list[tuple[str, list[str | Path], str]] = [
        ("import dagster (the floor)", [BIN / "python", "-c", "import dagster"], ""),
        (
            "import friren_pipelines.definitions",
            [BIN / "python", "-c", "import friren_pipelines.definitions"],
            "2",
        ),
        ("friren --help", [BIN / "friren", "--help"], "1"),
    ]
    for label, command, goal in imports:
        print(f"{label:<40} {best_wall(command):>11.2f} {goal:>10}", flush=True)
    print(f"\nload average (1, 5, 15 min) at the end: {load_average()}; {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
