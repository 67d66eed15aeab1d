"""The real alpaca-py TradingClient against the fake Alpaca serving the recorded bodies: FILL
activity pages (partial fills, non-FILL activities, an overlap between pages), positions,
portfolio history (also with null profit_loss_pct), the not-authorized error; and the blocking
reconciliation check failing on a ledger that does not explain the broker's positions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import dagster as dg
import pytest

from friren_pipelines.account.broker import AlpacaConnection
from friren_pipelines.market_data.backfill import BackfillError
from friren_pipelines.portfolio.brokers import AlpacaBroker, BrokerError
from friren_pipelines.portfolio.defs import materialize_portfolio
from friren_pipelines_tests.fakes.alpaca import FILLS, install_alpaca_routes
from friren_pipelines_tests.fakes.http import FakeHttpServer, Reply, Request, recorded
from friren_pipelines_tests.portfolio.conftest import definitions

KEY_ID, SECRET = "PKTESTPORTFOLIO0001", "secret-portfolio-0001"
TRADE_DATE = dt.date(2022, 3, 4)


@pytest.fixture
def alpaca() -> Iterator[FakeHttpServer]:
    """Fake Alpaca; FILL pages: the 5 recorded fills, then the last 2 again plus the page-1
    body (3 other-account deposits and one more FILL), then the page-2 body (deposits only),
    then [] — each page requested with the last id of the previous one as page_token."""
    fills = recorded(FILLS)
    page_1 = recorded("alpaca/broker_v1_account_activities_page1.json")
    page_2 = recorded("alpaca/broker_v1_account_activities_page2.json")
    pages = [fills, fills[-2:] + page_1, page_2, []]
    tokens = [None] + [page[-1]["id"] for page in pages[:-1]]

    def activities(request: Request) -> Reply:
        token = request.arg("page_token")
        if token not in tokens:
            return Reply(400, {"code": 40010001, "message": f"unexpected page_token {token}"})
        return Reply(200, pages[tokens.index(token)])

    with FakeHttpServer() as server:
        install_alpaca_routes(server)
        server.route("GET", "/v2/account/activities/FILL", activities)
        yield server


def _broker(server: FakeHttpServer, key_id: str = KEY_ID) -> AlpacaBroker:
    return AlpacaBroker(AlpacaConnection(key_id, SECRET, paper=True, url_override=server.url))


def test_fill_activities_are_paged_deduplicated_by_id_and_kept_exact(
    alpaca: FakeHttpServer,
) -> None:
    fills = _broker(alpaca).fills(TRADE_DATE, TRADE_DATE)
    assert len(fills) == 6  # 5 + 1 new FILL on page 2; the 2 repeated ids and the CSDs dropped
    assert len({fill.exec_id for fill in fills}) == 6
    by_id = {fill.exec_id: fill for fill in fills}
    partial = by_id["20220304135420903::047e252a-a8a3-4e35-84e2-29814cbf5057"]
    assert (partial.symbol, partial.side.value, partial.qty, partial.price) == (
        "AMZN",
        "buy",
        Decimal("1.792161878"),
        Decimal("2907.15"),
    )
    assert partial.order_id == "cddf433b-1a41-497d-ae31-50b1fee56fff"
    assert partial.account == "010203ABCD"
    assert [fill.timestamp for fill in fills] == sorted(fill.timestamp for fill in fills)
    asked = [r for r in alpaca.requests if r.path == "/v2/account/activities/FILL"]
    assert len(asked) == 4
    assert asked[0].arg("page_token") is None and asked[0].arg("direction") == "asc"


def test_positions_and_portfolio_history_become_decimals(alpaca: FakeHttpServer) -> None:
    broker = _broker(alpaca)
    (position,) = broker.positions(TRADE_DATE).values()
    assert (position.symbol, position.qty, position.avg_entry_price) == (
        "AAPL",
        Decimal(5),
        Decimal("100.0"),
    )
    for body in ("docs_trading_v2_portfolio_history", "broker_v1_portfolio_history_null_pl_pct"):
        alpaca.route(
            "GET", "/v2/account/portfolio/history", Reply(200, recorded(f"alpaca/{body}.json"))
        )
        (session,) = broker.account_values(dt.date(2020, 2, 3), dt.date(2020, 2, 5))
        # three 15-minute points of 2020-02-04 (timestamps in ms): the session's last one
        assert session.session_date == dt.date(2020, 2, 4)
        assert (session.equity, session.day_pnl) == (Decimal("27515.97"), Decimal("104.04"))
        assert session.cash is None and session.source == "alpaca_history"


def test_not_authorized_answer_is_named_without_the_keys(alpaca: FakeHttpServer) -> None:
    alpaca.route(
        "GET", "/v2/positions", Reply(401, recorded("alpaca/error_40110000_not_authorized.json"))
    )
    with pytest.raises(BrokerError) as raised:
        _broker(alpaca).positions(TRADE_DATE)
    message = str(raised.value)
    assert "/positions" in message and "401" in message
    assert KEY_ID not in message and SECRET not in message


def test_a_broker_body_echoing_the_keys_is_redacted_from_the_error(
    alpaca: FakeHttpServer,
) -> None:
    """Alpaca's documented error body is {"code": ..., "message": ...}; this one (built from that
    schema, not recorded) echoes the credentials it was sent, as a proxy or a gateway may."""
    echo = f'{{"code": 40310000, "message": "key {KEY_ID} with secret {SECRET} is not allowed"}}'
    alpaca.route("GET", "/v2/positions", Reply(403, echo.encode()))
    with pytest.raises(BrokerError) as raised:
        _broker(alpaca).positions(TRADE_DATE)
    message = str(raised.value)
    assert "403" in message and "is not allowed" in message and "***" in message
    assert KEY_ID not in message and SECRET not in message


def test_reconciliation_fails_naming_symbols_and_both_quantities(
    friren_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, alpaca: FakeHttpServer
) -> None:
    monkeypatch.setenv("FRIREN_BROKER", "alpaca")
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("ALPACA_URL_OVERRIDE", alpaca.url)
    instance = dg.DagsterInstance.ephemeral()
    with pytest.raises(BackfillError) as raised:
        materialize_portfolio(instance, definitions(), TRADE_DATE, TRADE_DATE)
    message = str(raised.value)
    assert "positions_reconciled failed" in message
    # the broker holds 5 AAPL the recorded fills never bought; the fills leave AMZN, GOOGL and
    # TSLA positions the broker does not have
    assert "010203ABCD AAPL: ledger 0, broker 5" in message
    assert "AMZN: ledger 2.792161878, broker 0" in message
    assert "TSLA: ledger -5.998065556, broker 0" in message
    assert "GOOGL: ledger 8.941226761, broker 0" in message
    events = instance.get_latest_materialization_event(dg.AssetKey("position_events"))
    assert events is None  # blocked by the failed check


def test_todays_values_come_from_the_cached_live_account(
    alpaca: FakeHttpServer, friren_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from friren_pipelines.config import load_settings
    from friren_pipelines.resources import live_account, outside_run

    for name, value in {
        "ALPACA_API_KEY_ID": KEY_ID,
        "ALPACA_API_SECRET_KEY": SECRET,
        "ALPACA_URL_OVERRIDE": alpaca.url,
    }.items():
        monkeypatch.setenv(name, value)
    live = outside_run(live_account(load_settings(), account_label="portfolio-test"))
    broker = AlpacaBroker(
        AlpacaConnection(KEY_ID, SECRET, url_override=alpaca.url), live_snapshot=live.snapshot
    )
    first = broker.live_values(TRADE_DATE)
    second = broker.live_values(TRADE_DATE)
    assert first == second and first.source == "live_account"
    assert (first.equity, first.long_market_value) == (Decimal("103820.56"), Decimal("126960.76"))
    assert first.day_pnl == Decimal("103820.56") - Decimal("103529.24")
    assert len(alpaca.calls("/v2/account")) == 1  # the second read was a cache hit
    assert live.statistics().hits == 1
