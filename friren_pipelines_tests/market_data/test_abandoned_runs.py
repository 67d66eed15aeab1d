"""A `friren` command killed mid-run leaves no run STARTED forever: the next command marks it
failed, naming the process that died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
from click.testing import CliRunner

from friren_pipelines.cli import main


def test_a_run_killed_with_its_process_is_marked_failed_by_the_next_command(
    friren_env: dict[str, str],
) -> None:
    friren = Path(sys.executable).parent / "friren"
    backfill = subprocess.Popen(
        [
            str(friren),
            "backfill",
            "--symbols",
            "AAPL,MSFT",
            "--start",
            "2024-01-01",
            "--end",
            "2024-03-29",
            "--timeframes",
            "1min",
        ],
        env={**os.environ, **friren_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with dg.DagsterInstance.from_config(friren_env["DAGSTER_HOME"]) as instance:
        deadline = time.monotonic() + 120
        while not instance.get_run_records(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
        ):
            assert backfill.poll() is None, "the backfill ended before it could be killed"
            assert time.monotonic() < deadline, "no run started in 120 s"
            time.sleep(0.2)
        backfill.send_signal(signal.SIGKILL)
        backfill.wait(timeout=30)

        result = CliRunner().invoke(main, ["symbols", "list"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        (record,) = instance.get_run_records()
        assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
        failure = instance.all_logs(
            record.dagster_run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        )
        assert f"pid {backfill.pid}) ended without finishing it" in failure[-1].message
