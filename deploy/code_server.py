"""`dagster api grpc`, with each run's process forked from a warm copy of the project instead of
started afresh.

    .venv/bin/python deploy/code_server.py -h 127.0.0.1 -p 4266

A Dagster code server starts every run in a new Python process ("spawn"), which imports Dagster
and the project again before the first step: seconds per run, most of a small backfill
(README, "Dagster instance"). Here the server's processes come from a forkserver that imported
`friren_pipelines.definitions` once, when this server started; each run is still its own process,
isolated as before. The arguments are `dagster api grpc`'s; the code location is this project's.
Restart the server after changing the code (the UI's Reload re-reads definitions, not modules).
Ctrl-C (or SIGTERM) stops it at once: `dagster api grpc` itself waits forever for a shutdown
call; runs under way finish in their own processes.
"""

import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
from typing import Any

import dagster._grpc.server as grpc_server  # the start method is private; see above
from dagster._cli import main

PRELOAD = ["friren_pipelines.definitions"]
CODE_LOCATION = ["-m", "friren_pipelines.definitions", "-a", "defs"]
CODE_LOCATION += ["--location-name", "friren_pipelines"]

_init = grpc_server.DagsterApiServer.__init__


def _forked_runs(server: grpc_server.DagsterApiServer, *args: Any, **kwargs: Any) -> None:
    _init(server, *args, **kwargs)
    server._mp_ctx = multiprocessing.get_context("forkserver")  # type: ignore[assignment]


def _stop(_signal: int, _frame: object) -> None:
    os._exit(0)  # the forkserver exits with us; each run is a process of its own


if __name__ == "__main__":
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    multiprocessing.forkserver.ensure_running()  # imports the project now, not at the first run
    grpc_server.DagsterApiServer.__init__ = _forked_runs  # type: ignore[method-assign,assignment]
    signal.signal(signal.SIGINT, _stop)  # `dagster api grpc` maps SIGTERM to it too
    sys.argv[1:] = ["api", "grpc", *CODE_LOCATION, *sys.argv[1:]]
    main()
