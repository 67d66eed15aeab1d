import datetime as dt

import dagster as dg
import pandas as pd

from friren_pipelines.automation.market_hours import (
    build_universe_sensor,
    daily_request,
    intraday_requests,
)
from friren_pipelines.config import load_settings


def test_intraday_refresh_runs_only_while_the_session_is_open() -> None:
    watchlist = ["AAPL", "MSFT"]
    closed = intraday_requests(watchlist, pd.Timestamp("2024-11-29 18:05", tz="UTC"))  # early close
    assert isinstance(closed, str) and "next open 2024-12-02 09:30" in closed
    requests = intraday_requests(watchlist, pd.Timestamp("2024-11-29 17:58", tz="UTC"))
    assert isinstance(requests, list)
    assert [r.job_name for r in requests] == ["refresh_1min", "refresh_5min"]
    assert requests[0].tags["dagster/asset_partition_range_start"] == "AAPL|2024-11-25"
    assert requests[0].tags["dagster/asset_partition_range_end"] == "MSFT|2024-11-25"


def test_daily_refresh_skips_holidays_and_targets_the_current_year() -> None:
    assert daily_request(["AAPL"], dt.date(2024, 12, 25)) == "2024-12-25 is not a trading session"
    request = daily_request(["AAPL", "SPY"], dt.date(2024, 12, 24))
    assert isinstance(request, dg.RunRequest)
    assert request.tags["dagster/asset_partition_range_end"] == "SPY|2024"


def _evaluate(instance: dg.DagsterInstance) -> dg.SensorResult:
    universe_sensor = build_universe_sensor(load_settings().home)
    result = universe_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(result, dg.SensorResult)
    return result


def test_universe_sensor_adds_the_file_symbols_once(friren_env: dict[str, str]) -> None:
    with dg.instance_for_test() as instance:
        first = _evaluate(instance)
        assert first.dynamic_partitions_requests
        for request in first.dynamic_partitions_requests:
            instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys or [])
            )
        again = _evaluate(instance)
        assert not again.dynamic_partitions_requests and again.skip_reason
        assert "SPY" in instance.get_dynamic_partitions("universe")
