"""AlpacaBarSource: the real alpaca-py client against recorded Alpaca data replies."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from friren_pipelines.core.bars import Timeframe
from friren_pipelines.sources.alpaca_bars import AlpacaBarSource
from friren_pipelines.sources.base import (
    SourceDataError,
    SourceError,
    SourceUnavailableError,
    UnknownSymbolError,
)
from friren_pipelines_tests.fakes.alpaca import BARS_PAGE_1, BARS_PAGE_2, install_alpaca_routes
from friren_pipelines_tests.fakes.http import FakeHttpServer, Reply, recorded

BARS = "/v2/stocks/bars"
KEY, SECRET = "PKTESTKEY", "test-secret-never-shown"


@pytest.fixture
def alpaca(shared_data: Path) -> Iterator[FakeHttpServer]:
    with FakeHttpServer() as server:
        install_alpaca_routes(server)
        yield server


def _source(server: FakeHttpServer, **options: object) -> AlpacaBarSource:
    settings: dict[str, object] = {"retry_attempts": 2, "retry_wait_seconds": 0, "timeout": 2.0}
    settings.update(options)
    return AlpacaBarSource(KEY, SECRET, url_override=server.url, **settings)  # type: ignore[arg-type]


def _fetch(source: AlpacaBarSource, timeframe: Timeframe = Timeframe.DAY1) -> pd.DataFrame:
    return source.fetch_bars(["AAPL", "TSLA"], timeframe, dt.date(2022, 2, 1), dt.date(2022, 3, 9))


def test_all_pages_of_a_multi_symbol_request_are_read(alpaca: FakeHttpServer) -> None:
    bars = _fetch(_source(alpaca))

    requests = alpaca.calls(BARS)
    assert len(requests) == 2
    assert requests[0].arg("symbols") == "AAPL,TSLA" and requests[0].arg("page_token") is None
    assert requests[1].arg("page_token") == recorded(BARS_PAGE_1)["next_page_token"]
    recorded_bars = recorded(BARS_PAGE_1)["bars"]["AAPL"] + recorded(BARS_PAGE_2)["bars"]["AAPL"]
    aapl = bars[bars["symbol"] == "AAPL"]
    assert list(aapl["open"]) == [b["o"] for b in recorded_bars]
    assert list(aapl["close"]) == [b["c"] for b in recorded_bars]
    assert list(aapl["volume"]) == [b["v"] for b in recorded_bars]
    assert list(aapl["vwap"]) == [b["vw"] for b in recorded_bars]
    assert list(aapl["trade_count"]) == [b["n"] for b in recorded_bars]
    assert list(bars["symbol"]) == ["AAPL", "AAPL", "AAPL", "TSLA"]


def test_daily_bars_stamped_at_new_york_midnight_are_labelled_by_session(
    alpaca: FakeHttpServer,
) -> None:
    bars = _fetch(_source(alpaca))
    aapl = bars[bars["symbol"] == "AAPL"]
    assert list(aapl["session_date"]) == [
        dt.date(2022, 2, 1),
        dt.date(2022, 2, 2),
        dt.date(2022, 3, 9),
    ]
    assert aapl["timestamp"].iloc[0] == pd.Timestamp("2022-02-01 14:30", tz="UTC")  # session open
    assert bars.attrs["excluded_extended_hours"] == 0


@pytest.mark.parametrize("adjustment", ["raw", "split"])
def test_requested_adjustment_and_feed_are_stated_in_request_and_column(
    alpaca: FakeHttpServer, adjustment: str
) -> None:
    bars = _fetch(_source(alpaca, adjustment=adjustment, feed="sip"))
    request = alpaca.calls(BARS)[0]
    assert (request.arg("adjustment"), request.arg("feed"), request.arg("timeframe")) == (
        adjustment,
        "sip",
        "1Day",
    )
    assert set(bars["adjustment"]) == {adjustment} and set(bars["source"]) == {"alpaca"}


def test_request_window_spans_the_new_york_days(alpaca: FakeHttpServer) -> None:
    _fetch(_source(alpaca))
    request = alpaca.calls(BARS)[0]
    assert request.arg("start") == "2022-02-01T05:00:00+00:00"
    assert request.arg("end") == "2022-03-10T04:59:59+00:00"


def test_newest_first_pages_come_back_oldest_first(alpaca: FakeHttpServer) -> None:
    descending = recorded("alpaca/data_v2_stocks_bars_TSLA_1Day_desc.json")
    empty = recorded("alpaca/data_v2_stocks_bars_empty.json")
    alpaca.route("GET", BARS, lambda r: Reply(200, empty if r.arg("page_token") else descending))
    bars = _source(alpaca).fetch_bars(
        ["TSLA"], Timeframe.DAY1, dt.date(2023, 9, 25), dt.date(2023, 9, 27)
    )
    assert list(bars["session_date"]) == [dt.date(2023, 9, d) for d in (25, 26, 27)]
    assert list(bars["close"]) == [246.99, 244.12, 240.5]


def test_minute_bars_outside_the_regular_session_are_excluded_and_counted(
    alpaca: FakeHttpServer, shared_data: Path
) -> None:
    # Real Alpaca minute bars (the shared Alpaca-format export) in Alpaca's JSON envelope.
    path = shared_data / "intraday/AMZN_1min_2020-12-31_2021-01-08_alpaca-format_utc.csv"
    with path.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["timestamp"].startswith("2021-01-04")]
    body = {
        "bars": {
            "AMZN": [
                {
                    "t": r["timestamp"].replace(" ", "T").replace("+00:00", "Z"),
                    **{
                        k: float(r[f])
                        for k, f in zip(
                            "ohlcv", ("open", "high", "low", "close", "volume"), strict=True
                        )
                    },
                    "n": int(float(r["trade_count"])),
                    "vw": float(r["vwap"]),
                }
                for r in rows
            ]
        },
        "next_page_token": None,
    }
    alpaca.route("GET", BARS, Reply(200, body))
    regular = [r for r in rows if "14:30:00" <= r["timestamp"][11:19] < "21:00:00"]

    bars = _source(alpaca).fetch_bars(
        ["AMZN"], Timeframe.MIN1, dt.date(2021, 1, 4), dt.date(2021, 1, 4)
    )

    assert len(bars) == len(regular) == 390
    assert bars.attrs["excluded_extended_hours"] == len(rows) - len(regular)
    assert bars["timestamp"].iloc[0] == pd.Timestamp("2021-01-04 14:30", tz="UTC")
    assert alpaca.calls(BARS)[0].arg("timeframe") == "1Min"


def test_server_error_is_unavailable_after_the_clients_retries(alpaca: FakeHttpServer) -> None:
    alpaca.route("GET", BARS, Reply(500, {"code": 50010000, "message": "internal server error"}))
    with pytest.raises(
        SourceUnavailableError, match=r"AAPL, TSLA 2022-02-01\.\.2022-03-09.*HTTP 500"
    ):
        _fetch(_source(alpaca, retry_attempts=2))
    assert len(alpaca.calls(BARS)) == 3


def test_timeout_is_unavailable(alpaca: FakeHttpServer) -> None:
    page = recorded(BARS_PAGE_2)
    alpaca.route("GET", BARS, Reply(200, page, delay=2.0))
    with pytest.raises(SourceUnavailableError, match=r"Timeout"):
        _fetch(_source(alpaca, timeout=0.3))


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        recorded("alpaca/docs_data_v2_stocks_AAPL_bars_single-symbol.json"),  # list, not dict
        {"bars": {"AAPL": [{"t": "2022-02-01T05:00:00Z", "o": 174}]}, "next_page_token": None},
    ],
    ids=["not-json", "single-symbol-shape", "bar-without-prices"],
)
def test_malformed_body_is_a_data_error(alpaca: FakeHttpServer, body: object) -> None:
    alpaca.route("GET", BARS, Reply(200, body))
    with pytest.raises(SourceDataError, match=r"alpaca: 1d bars for AAPL, TSLA .*not bars"):
        _fetch(_source(alpaca))


def test_refused_keys_are_a_source_error_without_the_keys(alpaca: FakeHttpServer) -> None:
    alpaca.route("GET", BARS, Reply(401, recorded("alpaca/error_40110000_not_authorized.json")))
    with pytest.raises(SourceError, match=r"HTTP 401 \(request is not authorized\)") as caught:
        _fetch(_source(alpaca))
    assert not isinstance(caught.value, SourceUnavailableError)
    assert KEY not in str(caught.value) and SECRET not in str(caught.value)


def test_invalid_symbol_reply_is_unknown_symbol(alpaca: FakeHttpServer) -> None:
    alpaca.route("GET", BARS, Reply(400, {"code": 42210000, "message": "invalid symbol: ZZZZ1"}))
    with pytest.raises(UnknownSymbolError, match=r"invalid symbol"):
        _fetch(_source(alpaca))


def test_an_error_body_echoing_the_keys_never_carries_them(alpaca: FakeHttpServer) -> None:
    """The documented error schema ({"code", "message"}); the echo of the keys is ours."""
    echo = {"code": 40310000, "message": f"key {KEY} / {SECRET} is not entitled to sip"}
    alpaca.route("GET", BARS, Reply(403, echo))
    with pytest.raises(SourceError) as raised:
        _fetch(_source(alpaca))
    message = str(raised.value)
    assert "HTTP 403" in message and "is not entitled to sip" in message
    assert KEY not in message and SECRET not in message
