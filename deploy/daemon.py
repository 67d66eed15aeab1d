"""`dagster-daemon`, with its backfill loop every 2 seconds instead of 30.

    .venv/bin/python deploy/daemon.py run -w deploy/workspace.yaml
    .venv/bin/python deploy/daemon.py --backfill-interval 5 run -w deploy/workspace.yaml

Dagster's backfill daemon looks at backfills every 30 seconds, a constant no dagster.yaml setting
reaches. A backfill launched from the UI waits for a loop to submit its runs and for another to
be marked complete: 30-60 s of waiting for seconds of work (README, "Dagster instance"). This
sets the constant, which the loop reads each time it sleeps, then runs the stock command line.
An idle loop is one query of the backfills table; the arguments after the interval are
`dagster-daemon`'s own.
"""

import sys

import dagster._daemon.controller as daemon_controller  # the constant is private; see above
from dagster._daemon.cli import main

BACKFILL_INTERVAL_SECONDS = 2


def backfill_interval(arguments: list[str]) -> tuple[int, list[str]]:
    """The interval given by a leading `--backfill-interval SECONDS`, and the other arguments."""
    if arguments[:1] == ["--backfill-interval"]:
        if len(arguments) < 2:
            raise SystemExit("--backfill-interval needs a whole number of seconds, e.g. 2")
        return int(arguments[1]), arguments[2:]
    return BACKFILL_INTERVAL_SECONDS, arguments


if __name__ == "__main__":
    seconds, sys.argv[1:] = backfill_interval(sys.argv[1:])
    daemon_controller.DEFAULT_DAEMON_INTERVAL_SECONDS = seconds
    main()
