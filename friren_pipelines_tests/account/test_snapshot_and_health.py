"""Snapshot arithmetic (Decimal, exact) and the health verdict."""

from __future__ import annotations

import dataclasses
import time
from decimal import Decimal

import pytest

from friren_pipelines.account.health import is_account_healthy
from friren_pipelines.account.snapshot import AccountSnapshot, BrokerAccount

ACCOUNT = BrokerAccount(
    portfolio_value=Decimal("103820.56"),
    cash=Decimal("-23140.2"),
    buying_power=Decimal("262113.632"),
    equity=Decimal("103820.56"),
    daytrading_buying_power=Decimal("262113.632"),
    last_equity=Decimal("103529.24"),
    long_market_value=Decimal("126960.76"),
    short_market_value=Decimal("0"),
    status="ACTIVE",
    account_blocked=False,
    trading_blocked=False,
    pattern_day_trader=False,
)


def snapshot_of(
    account: BrokerAccount = ACCOUNT, age: float = 1.0, ttl: float = 30.0
) -> AccountSnapshot:
    now = time.time()
    return AccountSnapshot.of(account, now - age, now, ttl)


def test_json_round_trip_keeps_every_decimal_exact() -> None:
    assert BrokerAccount.from_json(ACCOUNT.to_json()) == ACCOUNT
    assert BrokerAccount.from_json(ACCOUNT.to_json()).buying_power.as_tuple().exponent == -3


def test_day_pl_is_equity_minus_last_equity_in_usd_and_percent() -> None:
    snapshot = snapshot_of()
    assert snapshot.day_pl == Decimal("291.32")
    assert snapshot.day_pl_pct == Decimal("0.2814")  # 291.32 / 103529.24 = 0.281389 %


def test_day_pl_pct_is_none_without_a_previous_close() -> None:
    assert snapshot_of(dataclasses.replace(ACCOUNT, last_equity=Decimal(0))).day_pl_pct is None


def test_snapshot_is_stale_only_past_the_ttl() -> None:
    assert not snapshot_of(age=29.9).stale
    older = snapshot_of(age=30.5)
    assert older.stale and older.age_seconds == pytest.approx(30.5, abs=0.01)


def test_recorded_account_above_the_floor_is_healthy() -> None:
    health = is_account_healthy(snapshot_of(), equity_floor=Decimal(25000), max_age_seconds=60)
    assert health and health.reason == "ok"


@pytest.mark.parametrize(
    ("change", "age", "reason"),
    [
        ({"account_blocked": True}, 1.0, "account blocked"),
        ({"trading_blocked": True}, 1.0, "trading blocked"),
        ({"pattern_day_trader": True}, 1.0, "flagged pattern day trader"),
        ({"status": "ACCOUNT_UPDATED"}, 1.0, "account status is ACCOUNT_UPDATED, not ACTIVE"),
        (
            {"equity": Decimal("24999.99")},
            1.0,
            "equity 24999.99 USD is under the floor of 25000 USD",
        ),
        ({}, 61.0, "account data is 61.0 s old (at most 60 s)"),
    ],
    ids=["account-blocked", "trading-blocked", "pdt", "status", "equity-floor", "too-old"],
)
def test_each_problem_makes_the_account_unhealthy_with_its_reason(
    change: dict[str, object], age: float, reason: str
) -> None:
    snapshot = snapshot_of(dataclasses.replace(ACCOUNT, **change), age=age, ttl=90)  # type: ignore[arg-type]
    health = is_account_healthy(snapshot, equity_floor=Decimal(25000), max_age_seconds=60)
    assert not health and health.reasons == (reason,)


def test_every_reason_is_reported_together() -> None:
    blocked = dataclasses.replace(ACCOUNT, trading_blocked=True, pattern_day_trader=True)
    health = is_account_healthy(
        snapshot_of(blocked), equity_floor=Decimal(25000), max_age_seconds=60
    )
    assert health.reason == "trading blocked; flagged pattern day trader"
