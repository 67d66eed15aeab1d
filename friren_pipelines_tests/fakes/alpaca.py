"""Alpaca's data and trading APIs on a FakeHttpServer, answering with the recorded bodies of
../shared/data/alpaca. Point alpaca-py at it with `url_override=server.url`.

Routes (all need the APCA-API-KEY-ID / APCA-API-SECRET-KEY headers, else Alpaca's recorded 401):
- GET /v2/stocks/bars: page 1 is `data_v2_stocks_bars_AAPL_1Day.json` (AAPL, with a
  next_page_token), the request carrying that token gets page 2,
  `data_v2_stocks_bars_AAPL_TSLA.json` (AAPL and TSLA, token null). Bodies are served as
  recorded, whatever symbols were asked for.
- GET /v2/account, /v2/positions, /v2/clock, /v2/calendar, /v2/account/portfolio/history:
  `trading_v2_account.json`, `trading_v2_positions.json`, `docs_trading_v2_clock.json`,
  `broker_v1_calendar.json` (same schema as /v2/calendar), `docs_trading_v2_portfolio_history.json`.
- GET /v2/account/activities/FILL: `broker_v1_account_activities_fills.json`; a request with a
  `page_token` gets `[]` (the last page), so clients that page until empty stop.
Faults are injected by the test with `server.route(...)`, which wins over these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from friren_pipelines_tests.fakes.http import FakeHttpServer, Reply, Request, recorded

BARS_PAGE_1 = "alpaca/data_v2_stocks_bars_AAPL_1Day.json"
BARS_PAGE_2 = "alpaca/data_v2_stocks_bars_AAPL_TSLA.json"
TRADING_BODIES = {
    "/v2/account": "alpaca/trading_v2_account.json",
    "/v2/positions": "alpaca/trading_v2_positions.json",
    "/v2/clock": "alpaca/docs_trading_v2_clock.json",
    "/v2/calendar": "alpaca/broker_v1_calendar.json",
    "/v2/account/portfolio/history": "alpaca/docs_trading_v2_portfolio_history.json",
}
FILLS = "alpaca/broker_v1_account_activities_fills.json"
NOT_AUTHORIZED = "alpaca/error_40110000_not_authorized.json"


def _authorized(answer: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
    def handler(request: Request) -> Reply:
        if not (
            request.headers.get("apca-api-key-id") and request.headers.get("apca-api-secret-key")
        ):
            return Reply(401, recorded(NOT_AUTHORIZED))
        return answer(request)

    return handler


def _body(relative_path: str) -> Callable[[Request], Reply]:
    body: Any = recorded(relative_path)
    return lambda request: Reply(200, body)


def install_alpaca_routes(server: FakeHttpServer) -> None:
    page_1, page_2 = recorded(BARS_PAGE_1), recorded(BARS_PAGE_2)

    def bars(request: Request) -> Reply:
        token = request.arg("page_token")
        if token is None:
            return Reply(200, page_1)
        if token == page_1["next_page_token"]:
            return Reply(200, page_2)
        return Reply(400, {"code": 40010001, "message": f"invalid page_token {token!r}"})

    def fills(request: Request) -> Reply:
        return Reply(200, [] if request.arg("page_token") else recorded(FILLS))

    server.route("GET", "/v2/stocks/bars", _authorized(bars))
    for path, relative_path in TRADING_BODIES.items():
        server.route("GET", path, _authorized(_body(relative_path)))
    server.route("GET", "/v2/account/activities/FILL", _authorized(fills))
