"""The real alpaca-py client against the fake trading API: values, faults, keys kept secret."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from friren_pipelines.account.broker import AlpacaAccountFetcher, AlpacaConnection
from friren_pipelines.account.rate_limit import RateLimiter
from friren_pipelines.account.snapshot import BrokerFetchError
from friren_pipelines_tests.account.conftest import ACCOUNT_PATH, BrokerKeys
from friren_pipelines_tests.fakes.http import FakeHttpServer, Reply, recorded


def test_recorded_account_is_read_as_exact_decimals(
    fetcher_for: Callable[..., AlpacaAccountFetcher],
    alpaca: FakeHttpServer,
    broker_keys: BrokerKeys,
) -> None:
    account = fetcher_for(RateLimiter.in_process())()
    body = recorded("alpaca/trading_v2_account.json")
    assert account.portfolio_value == Decimal(body["portfolio_value"]) == Decimal("103820.56")
    assert account.cash == Decimal("-23140.2")
    assert account.buying_power == Decimal("262113.632")
    assert account.daytrading_buying_power == Decimal("262113.632")
    assert account.equity == Decimal("103820.56")
    assert account.last_equity == Decimal("103529.24")
    assert (account.status, account.account_blocked, account.trading_blocked) == (
        "ACTIVE",
        False,
        False,
    )
    assert account.pattern_day_trader is False
    (request,) = alpaca.calls(ACCOUNT_PATH)
    assert request.headers["apca-api-key-id"] == broker_keys.key_id  # the keys were really sent


def test_http_500_fails_after_one_request_naming_the_status(
    fetcher_for: Callable[..., AlpacaAccountFetcher], alpaca: FakeHttpServer
) -> None:
    alpaca.route("GET", ACCOUNT_PATH, Reply(500, {"code": 50010000, "message": "internal error"}))
    with pytest.raises(BrokerFetchError, match=r"HTTP 500.*internal error"):
        fetcher_for(RateLimiter.in_process())()
    assert len(alpaca.calls(ACCOUNT_PATH)) == 1


def test_429_blocks_every_caller_for_retry_after_without_alpaca_py_sleeping(
    fetcher_for: Callable[..., AlpacaAccountFetcher],
    alpaca: FakeHttpServer,
    redis_limiter: RateLimiter,
) -> None:
    headers = {
        "Retry-After": "1",
        "X-Ratelimit-Limit": "200",
        "X-Ratelimit-Remaining": "0",
        "X-Ratelimit-Reset": str(int(time.time()) + 1),
    }
    alpaca.route(
        "GET",
        ACCOUNT_PATH,
        Reply(429, {"code": 42910000, "message": "rate limit exceeded"}, headers),
    )
    first, second = fetcher_for(redis_limiter), fetcher_for(redis_limiter)
    started = time.monotonic()
    with pytest.raises(BrokerFetchError, match="HTTP 429"):
        first()
    # Another client sharing the limiter does not even send its request.
    with pytest.raises(BrokerFetchError, match=r"not sent.*429"):
        second()
    assert time.monotonic() - started < 0.5  # alpaca-py's 3 x 3 s retries are off
    assert len(alpaca.calls(ACCOUNT_PATH)) == 1
    alpaca.route("GET", ACCOUNT_PATH, Reply(body=recorded("alpaca/trading_v2_account.json")))
    time.sleep(1.1)
    assert second().equity == Decimal("103820.56")
    assert len(alpaca.calls(ACCOUNT_PATH)) == 2


def test_slow_broker_times_out_with_the_timeout_in_the_message(
    fetcher_for: Callable[..., AlpacaAccountFetcher], alpaca: FakeHttpServer
) -> None:
    alpaca.route(
        "GET", ACCOUNT_PATH, Reply(body=recorded("alpaca/trading_v2_account.json"), delay=1.0)
    )
    started = time.monotonic()
    with pytest.raises(BrokerFetchError, match=r"timed out after 0\.2 s"):
        fetcher_for(RateLimiter.in_process(), timeout_seconds=0.2)()
    assert time.monotonic() - started < 0.9


def test_slow_answer_within_the_timeout_is_accepted(
    fetcher_for: Callable[..., AlpacaAccountFetcher], alpaca: FakeHttpServer
) -> None:
    alpaca.route(
        "GET", ACCOUNT_PATH, Reply(body=recorded("alpaca/trading_v2_account.json"), delay=0.3)
    )
    assert fetcher_for(RateLimiter.in_process(), timeout_seconds=2.0)().cash == Decimal("-23140.2")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        ({"unexpected": 1}, r"malformed account \(id, account_number, status\)"),
        ([1, 2, 3], "not an account"),
        ({**recorded("alpaca/trading_v2_account.json"), "equity": None}, "has no 'equity'"),
        (
            {**recorded("alpaca/trading_v2_account.json"), "cash": "lots"},
            "cash='lots' is not a number",
        ),
    ],
    ids=["not-json", "missing-fields", "a-list", "equity-null", "cash-not-a-number"],
)
def test_malformed_body_is_a_fetch_error_naming_the_problem(
    fetcher_for: Callable[..., AlpacaAccountFetcher],
    alpaca: FakeHttpServer,
    body: object,
    message: str,
) -> None:
    alpaca.route("GET", ACCOUNT_PATH, Reply(body=body))
    with pytest.raises(BrokerFetchError, match=message):
        fetcher_for(RateLimiter.in_process())()


def test_refused_connection_is_a_fetch_error(broker_keys: BrokerKeys) -> None:
    with FakeHttpServer() as server:
        url = server.url
    fetcher = AlpacaAccountFetcher(
        AlpacaConnection(broker_keys.key_id, broker_keys.secret_key, url_override=url),
        limiter=RateLimiter.in_process(),
    )
    with pytest.raises(BrokerFetchError, match="failed: ConnectionError"):
        fetcher()


def test_keys_appear_in_no_log_record_error_or_repr(
    fetcher_for: Callable[..., AlpacaAccountFetcher],
    alpaca: FakeHttpServer,
    broker_keys: BrokerKeys,
    every_log_record: pytest.LogCaptureFixture,
) -> None:
    fetcher = fetcher_for(RateLimiter.in_process(), timeout_seconds=0.2)
    fetcher()
    errors = []
    for reply in (
        Reply(500, {"message": "x"}),
        Reply(body=b"<html>"),
        Reply(delay=0.5),
        Reply(429),
    ):
        alpaca.route("GET", ACCOUNT_PATH, reply)
        with pytest.raises(BrokerFetchError) as caught:
            fetcher()
        errors.append(caught.value)
    assert len(alpaca.calls(ACCOUNT_PATH)) == 5
    assert every_log_record.records  # urllib3 logged the requests: the check below is not vacuous
    for record in every_log_record.records:
        assert not broker_keys.appear_in(record.getMessage())
    for error in errors:
        assert not broker_keys.appear_in(str(error)) and not broker_keys.appear_in(repr(error))
        assert error.__cause__ is None and error.__suppress_context__
    assert not broker_keys.appear_in(repr(fetcher))
