"""Yahoo Finance on a FakeHttpServer: the recorded chart bodies of ../shared/data/yahoo_chart.

yfinance hard-codes its hosts (fc.yahoo.com, query1/query2.finance.yahoo.com), so tests give it
`yahoo_session(server)`: a plain `requests.Session` whose adapter sends every https request to
the fake server, keeping path and query. `install_yahoo_routes` answers what yfinance asks:
`/` (cookie), `/v1/test/getcrumb` and `/v8/finance/chart/{symbol}`. A chart request gets the
recorded body of that symbol and interval (`meta.dataGranularity`) whose bars overlap
period1..period2, else the first recorded body of that symbol and interval (Yahoo answers
requests without data with an empty chart the same way); a symbol without a recording gets
Yahoo's 404 reply. Faults are injected by the test with `server.route(...)`, which wins.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yfinance as yf
from requests.adapters import HTTPAdapter
from yfinance import cache as yf_cache
from yfinance.data import SingletonMeta, YfData

from friren_pipelines_tests.fakes.http import SHARED_DATA, FakeHttpServer, Reply, Request

YAHOO_CHARTS = SHARED_DATA / "yahoo_chart"
CRUMB = "fake-crumb"
NOT_FOUND = {
    "chart": {
        "result": None,
        "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
    }
}


class _ToFakeServer(HTTPAdapter):
    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url or "")
        request.url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, *args, **kwargs)


def yahoo_session(server: FakeHttpServer) -> requests.Session:
    """A requests session whose https traffic (any host) goes to `server`."""
    session = requests.Session()
    session.mount("https://", _ToFakeServer(server.url))
    return session


def recorded_charts() -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(symbol, interval) → recorded chart bodies."""
    charts: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in sorted(YAHOO_CHARTS.glob("*.json")):
        body = json.loads(path.read_text())
        meta = body["chart"]["result"][0]["meta"]
        charts.setdefault((meta["symbol"], meta["dataGranularity"]), []).append(body)
    return charts


def _overlaps(body: dict[str, Any], request: Request) -> bool:
    stamps = body["chart"]["result"][0].get("timestamp") or []
    first, last = request.arg("period1"), request.arg("period2")
    if not stamps or first is None or last is None:
        return False
    return stamps[0] < int(last) and stamps[-1] >= int(first)


def install_yahoo_routes(server: FakeHttpServer) -> None:
    charts = recorded_charts()

    def chart(request: Request) -> Reply:
        symbol = request.path.rsplit("/", 1)[-1]
        bodies = charts.get((symbol, request.arg("interval") or "1d"), [])
        if not bodies:
            return Reply(404, NOT_FOUND)
        return Reply(200, next((b for b in bodies if _overlaps(b, request)), bodies[0]))

    server.route("GET", "/", Reply(200, b"<html></html>", {"Content-Type": "text/html"}))
    server.route(
        "GET", "/v1/test/getcrumb", Reply(200, CRUMB.encode(), {"Content-Type": "text/plain"})
    )
    server.route("GET", r"/v8/finance/chart/[^/]+", chart)


def reset_yfinance(cache_dir: Path) -> None:
    """Forget yfinance's process-wide state: cookie, crumb, cached replies, cache folder."""
    yf.set_tz_cache_location(str(cache_dir))
    yf_cache._TzCacheManager._tz_cache = None
    yf_cache._CookieCacheManager._Cookie_cache = None
    SingletonMeta._instances.pop(YfData, None)
