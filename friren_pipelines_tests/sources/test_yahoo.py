"""YahooBarSource: the real yfinance library against recorded Yahoo chart replies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.sources.base import (
    SourceDataError,
    SourceError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from friren_pipelines.sources.yahoo import YahooBarSource, _ChartStatusError, request_windows
from friren_pipelines_tests.fakes.http import FakeHttpServer, Reply, Request, recorded
from friren_pipelines_tests.fakes.yahoo import install_yahoo_routes, reset_yfinance, yahoo_session

SPLIT_AND_DIVIDEND = "yahoo_chart/AAPL_chart_1d_2020-08-31_2020-11-06_split-and-dividend.json"
CHART = r"/v8/finance/chart/.*"


@pytest.fixture
def yahoo(shared_data: Path, tmp_path: Path) -> Iterator[FakeHttpServer]:
    reset_yfinance(tmp_path / "yfinance-cache")
    with FakeHttpServer() as server:
        install_yahoo_routes(server)
        yield server


def _source(
    server: FakeHttpServer, auto_adjust: bool = False, timeout: float = 5.0
) -> YahooBarSource:
    return YahooBarSource(auto_adjust=auto_adjust, session=yahoo_session(server), timeout=timeout)


def _chart(relative: str) -> dict[str, Any]:
    result: dict[str, Any] = recorded(relative)["chart"]["result"][0]
    return result


def _history_calls(server: FakeHttpServer) -> list[Request]:
    return [r for r in server.calls(CHART) if r.arg("period1") is not None]


def test_daily_bars_are_yahoos_split_adjusted_quotes_at_the_session_open(
    yahoo: FakeHttpServer,
) -> None:
    chart = _chart(SPLIT_AND_DIVIDEND)
    quote = chart["indicators"]["quote"][0]

    bars = _source(yahoo).fetch_bars(
        ["AAPL"], Timeframe.DAY1, dt.date(2020, 8, 31), dt.date(2020, 11, 6)
    )

    assert len(bars) == 49
    assert list(bars["timestamp"]) == [
        pd.Timestamp(t, unit="s", tz="UTC") for t in chart["timestamp"]
    ]
    assert bars["session_date"].iloc[0] == dt.date(2020, 8, 31)  # the 4:1 split day
    assert list(bars["open"]) == pytest.approx(quote["open"])
    assert list(bars["close"]) == pytest.approx(quote["close"])
    assert list(bars["volume"]) == quote["volume"]
    assert set(bars["adjustment"]) == {"split"} and set(bars["source"]) == {"yfinance"}
    assert bars.attrs["excluded_extended_hours"] == 0
    request = _history_calls(yahoo)[0]
    assert (request.arg("interval"), request.arg("includePrePost")) == ("1d", "False")


def test_auto_adjust_gives_split_and_dividend_adjusted_closes(yahoo: FakeHttpServer) -> None:
    chart = _chart(SPLIT_AND_DIVIDEND)
    bars = _source(yahoo, auto_adjust=True).fetch_bars(
        ["AAPL"], Timeframe.DAY1, dt.date(2020, 8, 31), dt.date(2020, 11, 6)
    )
    assert list(bars["close"]) == pytest.approx(chart["indicators"]["adjclose"][0]["adjclose"])
    assert set(bars["adjustment"]) == {"split_dividend"}


def test_many_symbols_and_full_histories_come_back_in_one_frame(yahoo: FakeHttpServer) -> None:
    bars = _source(yahoo).fetch_bars(
        ["TSLA", "MSFT", "NVDA", "QQQ"], Timeframe.DAY1, dt.date(2010, 6, 29), dt.date(2023, 8, 11)
    )
    counts = bars.groupby("symbol").size().to_dict()
    assert counts == {"MSFT": 252, "NVDA": 252, "QQQ": 1, "TSLA": 3303}
    tsla = bars[bars["symbol"] == "TSLA"]
    assert tsla["session_date"].iloc[0] == dt.date(2010, 6, 29)
    assert tsla["session_date"].iloc[-1] == dt.date(2023, 8, 11)


def test_sessions_outside_the_requested_range_are_dropped(yahoo: FakeHttpServer) -> None:
    # The fake answers with the whole recording; the source keeps only the requested sessions.
    bars = _source(yahoo).fetch_bars(
        ["NVDA"], Timeframe.DAY1, dt.date(2021, 7, 19), dt.date(2021, 7, 21)
    )
    assert list(bars["session_date"]) == [dt.date(2021, 7, d) for d in (19, 20, 21)]


def test_empty_weekend_minute_chart_gives_no_bars_and_long_ranges_are_split_by_7_days(
    yahoo: FakeHttpServer,
) -> None:
    today = dt.date.today()
    bars = _source(yahoo).fetch_bars(["AAPL"], Timeframe.MIN1, today - dt.timedelta(days=20), today)

    assert bars.empty and bars.attrs["excluded_extended_hours"] == 0
    calls = _history_calls(yahoo)
    assert [c.arg("interval") for c in calls] == ["1m", "1m", "1m"]
    spans = [int(c.arg("period2") or 0) - int(c.arg("period1") or 0) for c in calls]
    assert max(spans) <= 7 * 86400 + 3600  # 7 days (+1 h across a DST change)


@pytest.mark.parametrize(("timeframe", "days"), [(Timeframe.MIN1, 31), (Timeframe.MIN5, 61)])
def test_intraday_ranges_beyond_yahoos_reach_are_refused_before_any_request(
    yahoo: FakeHttpServer, timeframe: Timeframe, days: int
) -> None:
    start = dt.date.today() - dt.timedelta(days=days)
    with pytest.raises(SourceError, match=rf"{timeframe.value} bars .* out of reach"):
        _source(yahoo).fetch_bars(["AAPL"], timeframe, start, start + dt.timedelta(days=1))
    assert yahoo.calls(CHART) == []


def test_request_windows_cover_the_range_without_gaps() -> None:
    windows = request_windows(
        Timeframe.MIN1, dt.date(2025, 3, 1), dt.date(2025, 3, 20), dt.date(2025, 3, 25)
    )
    assert windows == [
        (dt.date(2025, 3, 1), dt.date(2025, 3, 7)),
        (dt.date(2025, 3, 8), dt.date(2025, 3, 14)),
        (dt.date(2025, 3, 15), dt.date(2025, 3, 20)),
    ]


def test_unknown_symbol_is_reported_as_unknown(yahoo: FakeHttpServer) -> None:
    with pytest.raises(
        UnknownSymbolError, match=r"yfinance: 1d bars for ZZZZ 2020-01-02\.\.2020-01-03"
    ):
        _source(yahoo).fetch_bars(
            ["ZZZZ"], Timeframe.DAY1, dt.date(2020, 1, 2), dt.date(2020, 1, 3)
        )


def test_server_error_is_unavailable(yahoo: FakeHttpServer) -> None:
    yahoo.route(
        "GET", CHART, Reply(500, b"<html>Will be right back</html>", {"Content-Type": "text/html"})
    )
    with pytest.raises(
        SourceUnavailableError, match=r"AMZN 2020-01-02\.\.2020-01-02: Yahoo answered HTTP 500"
    ):
        _source(yahoo).fetch_bars(
            ["AMZN"], Timeframe.DAY1, dt.date(2020, 1, 2), dt.date(2020, 1, 2)
        )


def test_timeout_is_unavailable(yahoo: FakeHttpServer) -> None:
    slow = Reply(200, recorded("yahoo_chart/AMZN_chart_1d_2020-01-02_single-bar.json"), delay=2.0)
    fast = Reply(200, recorded("yahoo_chart/AMZN_chart_1d_2020-01-02_single-bar.json"))
    yahoo.route("GET", CHART, lambda request: slow if request.arg("period1") else fast)
    with pytest.raises(SourceUnavailableError, match=r"AMZN .*(Timeout|timed out)"):
        _source(yahoo, timeout=0.3).fetch_bars(
            ["AMZN"], Timeframe.DAY1, dt.date(2020, 1, 2), dt.date(2020, 1, 2)
        )


def test_reply_that_is_not_a_chart_is_a_data_error(yahoo: FakeHttpServer) -> None:
    good = Reply(200, recorded("yahoo_chart/QQQ_chart_1d_2020-01-02_single-bar.json"))
    yahoo.route(
        "GET", CHART, lambda request: Reply(200, b"{not json") if request.arg("period1") else good
    )
    with pytest.raises(SourceDataError, match=r"QQQ .*not a chart"):
        _source(yahoo).fetch_bars(["QQQ"], Timeframe.DAY1, dt.date(2020, 1, 2), dt.date(2020, 1, 2))


def test_default_curl_session_reads_chart_statuses_too(yahoo: FakeHttpServer) -> None:
    yahoo.route("GET", CHART, Reply(503, b"busy", {"Content-Type": "text/plain"}))
    source = YahooBarSource(auto_adjust=False)  # yfinance's curl_cffi session, as in production
    with pytest.raises(_ChartStatusError) as caught:
        source._session.get(f"{yahoo.url}/v8/finance/chart/AAPL")
    assert caught.value.status == 503
    assert source._session.get(f"{yahoo.url}/v1/test/getcrumb").text == "fake-crumb"
