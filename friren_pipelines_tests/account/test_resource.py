"""LiveAccount as Dagster sees it: fields, health, statistics in metadata, Redis or in-process."""

from __future__ import annotations

import logging
import os
import uuid
from decimal import Decimal

import dagster as dg
import pytest
import redis

from friren_pipelines.account.resource import LiveAccount
from friren_pipelines.account.snapshot import AccountFetcher, BrokerAccount
from friren_pipelines.config import ConfigError, load_settings
from friren_pipelines.resources import live_account, outside_run
from friren_pipelines_tests.account.conftest import ACCOUNT_PATH, BrokerKeys
from friren_pipelines_tests.account.test_snapshot_and_health import ACCOUNT
from friren_pipelines_tests.fakes.http import FakeHttpServer, Reply, recorded


def point_at_fake_broker(
    monkeypatch: pytest.MonkeyPatch, alpaca: FakeHttpServer, keys: BrokerKeys, redis_url: str | None
) -> None:
    monkeypatch.setenv("ALPACA_API_KEY_ID", keys.key_id)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", keys.secret_key)
    monkeypatch.setenv("ALPACA_URL_OVERRIDE", alpaca.url)
    if redis_url is not None:
        monkeypatch.setenv("FRIREN_REDIS_URL", redis_url)


@pytest.fixture(params=["redis", "process"])
def backend(
    request: pytest.FixtureRequest,
    friren_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    alpaca: FakeHttpServer,
    broker_keys: BrokerKeys,
) -> str:
    """A deployment pointed at the fake broker, with or without Redis."""
    # redis_url is requested after friren_env, which clears the FRIREN_* variables it sets.
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    point_at_fake_broker(monkeypatch, alpaca, broker_keys, redis_url)
    return str(request.param)


def live(**options: object) -> LiveAccount:
    """The LiveAccount of the current environment's settings, its EnvVars read (outside a run)."""
    return outside_run(live_account(load_settings(), **options))


@pytest.fixture
def label() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"  # the in-process store is per label: keep tests apart


def test_every_field_is_answered_from_one_broker_call(
    backend: str, alpaca: FakeHttpServer, label: str
) -> None:
    account = live(account_label=label)
    snapshot = account.snapshot()
    assert (snapshot.portfolio_value, snapshot.equity) == (
        Decimal("103820.56"),
        Decimal("103820.56"),
    )
    assert account.portfolio_value() == Decimal("103820.56")
    assert account.cash() == Decimal("-23140.2")
    assert account.buying_power() == Decimal("262113.632")
    assert account.equity() == Decimal("103820.56")
    assert account.daytrading_buying_power() == Decimal("262113.632")
    assert account.last_equity() == Decimal("103529.24")
    assert account.day_pl() == Decimal("291.32")
    assert account.day_pl_pct() == Decimal("0.2814")
    assert not snapshot.stale and snapshot.age_seconds < 1
    assert len(alpaca.calls(ACCOUNT_PATH)) == 1
    stats = account.statistics()
    assert (stats.requests, stats.hits, stats.broker_calls) == (9, 8, 1)


def test_with_redis_url_instances_share_the_value_through_redis(
    request: pytest.FixtureRequest, friren_env: dict[str, str], alpaca: FakeHttpServer, label: str
) -> None:
    redis_url = request.getfixturevalue("redis_url")
    point_at_fake_broker(
        request.getfixturevalue("monkeypatch"),
        alpaca,
        request.getfixturevalue("broker_keys"),
        redis_url,
    )
    first = live(account_label=label).snapshot()
    assert live(account_label=label).snapshot().fetched_at == first.fetched_at
    assert len(alpaca.calls(ACCOUNT_PATH)) == 1
    value_key = f"{os.environ['FRIREN_REDIS_PREFIX']}account:{label}:value"
    stored = redis.Redis.from_url(redis_url).hget(value_key, "account")
    assert stored is not None and BrokerAccount.from_json(stored).equity == first.equity


def test_recorded_account_is_healthy_and_a_high_floor_is_not(backend: str, label: str) -> None:
    assert live(account_label=label).is_account_healthy().reason == "ok"
    health = live(account_label=label, equity_floor="150000").is_account_healthy()
    assert not health and "equity 103820.56 USD is under the floor of 150000 USD" in health.reason


def test_pattern_day_trader_flag_makes_the_account_unhealthy(
    backend: str, alpaca: FakeHttpServer, label: str
) -> None:
    body = {**recorded("alpaca/trading_v2_account.json"), "pattern_day_trader": True}
    alpaca.route("GET", ACCOUNT_PATH, Reply(body=body))
    assert live(account_label=label).is_account_healthy().reasons == ("flagged pattern day trader",)


def test_unreachable_account_is_unhealthy_with_the_refresh_error(
    backend: str, alpaca: FakeHttpServer, label: str
) -> None:
    alpaca.route("GET", ACCOUNT_PATH, Reply(503, {"message": "maintenance"}))
    health = live(account_label=label).is_account_healthy()
    assert not health and "HTTP 503" in health.reason


def test_without_keys_the_resource_says_which_variables_to_set(friren_env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="ALPACA_API_KEY_ID and ALPACA_API_SECRET_KEY"):
        live(account_label="no-keys").snapshot()


class FixedDemoAccount(LiveAccount):
    def default_label(self) -> str:
        return f"demo-{id(self)}"

    def account_fetcher(self) -> AccountFetcher:
        return lambda: ACCOUNT


def test_a_subclass_serves_a_demo_account_without_broker_or_keys(
    friren_env: dict[str, str],
) -> None:
    snapshot = FixedDemoAccount().snapshot()
    assert snapshot.equity == ACCOUNT.equity and not snapshot.stale


def test_asset_metadata_carries_statistics_and_never_a_key(
    backend: str,
    label: str,
    broker_keys: BrokerKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)

    @dg.asset
    def account_equity(live_account: LiveAccount) -> dg.MaterializeResult:
        return dg.MaterializeResult(
            metadata={
                "equity_usd": float(live_account.equity()),
                **live_account.statistics().as_metadata(),
            }
        )

    result = dg.materialize(
        [account_equity],
        resources={"live_account": live_account(load_settings(), account_label=label)},
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("account_equity")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["equity_usd"] == pytest.approx(103820.56)
    assert metadata["broker_calls"] == 1 and metadata["requests"] == 1
    resource = live_account(load_settings(), account_label=label)
    everything = repr(metadata) + repr(resource.model_dump())
    everything += "".join(str(event) for event in result.all_events)
    everything += "".join(record.getMessage() for record in caplog.records)
    assert not broker_keys.appear_in(everything)
