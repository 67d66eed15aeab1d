"""`friren account`: snapshot, age, health and statistics; exit status 1 when unavailable."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from friren_pipelines.account.cli import account
from friren_pipelines_tests.account.conftest import ACCOUNT_PATH, BrokerKeys
from friren_pipelines_tests.fakes.http import FakeHttpServer, Reply


@pytest.fixture
def env(
    friren_env: dict[str, str], alpaca: FakeHttpServer, broker_keys: BrokerKeys, redis_url: str
) -> dict[str, str]:
    return {
        "ALPACA_API_KEY_ID": broker_keys.key_id,
        "ALPACA_API_SECRET_KEY": broker_keys.secret_key,
        "ALPACA_URL_OVERRIDE": alpaca.url,
        "FRIREN_REDIS_URL": redis_url,
    }


def test_prints_the_snapshot_its_age_health_and_statistics(
    env: dict[str, str], broker_keys: BrokerKeys
) -> None:
    result = CliRunner().invoke(account, env=env)
    assert result.exit_code == 0, result.output
    assert "portfolio value                 103820.56 USD" in result.output
    assert "day P&L                            291.32 USD (+0.2814 %)" in result.output
    assert "s, fresh" in result.output and "health                   ok" in result.output
    assert "broker_calls             1" in result.output and "hit_ratio" in result.output
    assert not broker_keys.appear_in(result.output)


def test_unavailable_account_exits_1_with_the_reason(
    env: dict[str, str], alpaca: FakeHttpServer
) -> None:
    alpaca.route("GET", ACCOUNT_PATH, Reply(500, {"message": "internal"}))
    result = CliRunner().invoke(account, env=env)
    assert result.exit_code == 1
    assert "account unavailable: no account value for 'alpaca-paper' yet" in result.output
    assert "HTTP 500" in result.output and "unanswered               1" in result.output
